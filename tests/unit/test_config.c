/*
 * test_config.c: the settings table and its sources. Precedence (flag > env >
 * file > default, with the source of each value reported), every kind of bad
 * value from every source naming the key, unknown keys and variables, flag
 * syntax, the dump reading back as a config file, and docs/CONFIG.md being
 * exactly what the table generates.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "config/settings.h"
#include "testutil.h"

static char tmpdir[64];

static void make_tmpdir(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ig_test_config_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void remove_tmpdir(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(config, .init = make_tmpdir, .fini = remove_tmpdir);

/* Write `text` to tmpdir/name; the path is returned (static per name slot). */
static const char *write_file(const char *name, const char *text) {
    static char path[4][256];
    static int slot;
    char *p = path[slot++ % 4];
    snprintf(p, 256, "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    return p;
}

static ig_config *fresh(void) {
    ig_config *cfg = ig_config_new_defaults();
    cr_assert_not_null(cfg);
    return cfg;
}

/* Resolve with an explicit argv (copied: getopt permutes it) and environment. */
static ig_status resolve(ig_config *cfg, const char *const *args, const char *const *envp,
                         ig_error *err) {
    char *argv[32];
    int argc = 0;
    argv[argc++] = "ignis";
    for (; args && args[argc - 1]; argc++) argv[argc] = (char *)args[argc - 1];
    argv[argc] = NULL;
    static const char *const no_env[] = {NULL};
    return ig_config_resolve(cfg, argc, argv, envp ? envp : no_env, NULL, err);
}

static void expect_fail(ig_status got, ig_status want, const ig_error *err, const char *msg) {
    cr_assert_eq(got, want, "got %s (%s), want %s", ig_errname(got), err->message,
                 ig_errname(want));
    cr_assert(strstr(err->message, msg), "message '%s' should contain '%s'", err->message, msg);
}

Test(config, table_is_consistent) {
    const ig_setting *all = ig_settings();
    size_t n = ig_settings_count();
    cr_assert_gt(n, 20);
    for (size_t i = 0; i < n; i++) {
        const ig_setting *s = &all[i];
        char name[128];
        snprintf(name, sizeof name, "%s.%s", s->section, s->key);
        cr_assert_str_eq(s->name, name);
        cr_assert(s->help && strlen(s->help) > 10, "%s has no help", s->name);
        cr_assert(s->env && !strncmp(s->env, "IGNIS_", 6), "%s: env %s", s->name, s->env);
        cr_assert(s->def, "%s has no default", s->name);
        if (s->type == IG_SETTING_TYPE_INT) cr_assert_leq(s->min, s->max);
        if (s->type == IG_SETTING_TYPE_ENUM) cr_assert_not_null(s->choices);
        cr_assert_eq(ig_setting_find(s->name), s);
        for (size_t j = 0; j < i; j++) {
            cr_assert_str_neq(all[j].name, s->name);
            cr_assert_str_neq(all[j].env, s->env);
            if (s->flag && all[j].flag) cr_assert_str_neq(all[j].flag, s->flag);
            if (s->short_flag) cr_assert_neq(all[j].short_flag, s->short_flag);
        }
        const char *const *o = ig_config_other_env();
        for (size_t k = 0; o[k]; k += 2) cr_assert_str_neq(o[k], s->env);
    }
    cr_assert_null(ig_setting_find("server.nope"));
}

Test(config, defaults) {
    ig_config *cfg = fresh();
    cr_assert_str_eq(ig_config_get_string(cfg, "server.host"), "127.0.0.1");
    cr_assert_eq(ig_config_get_int(cfg, "server.port"), 8080);
    cr_assert_eq(ig_config_get_int(cfg, "cache.block_size"), 16);
    cr_assert_eq(ig_config_get_int(cfg, "model.context"), 0);
    cr_assert_eq(ig_config_get_int(cfg, "model.threads"), 0);
    cr_assert_str_eq(ig_config_get_string(cfg, "cache.eviction_policy"), "lru");
    cr_assert_eq(ig_config_get_enum(cfg, "cache.eviction_policy"), 0);
    cr_assert(ig_config_get_bool(cfg, "cache.prefix_caching"));
    cr_assert(!ig_config_get_bool(cfg, "scheduler.adaptive_budget"));
    cr_assert_float_eq(ig_config_get_float(cfg, "scheduler.target_itl_ms"), 50.0, 1e-12);
    cr_assert_str_eq(ig_config_get_string(cfg, "log.level"), "info");
    cr_assert_str_eq(ig_config_get_string(cfg, "log.format"), "json");
    size_t n = 99;
    ig_config_get_list(cfg, "server.api_keys", &n);
    cr_assert_eq(n, 0);
    for (size_t i = 0; i < ig_settings_count(); i++) {
        cr_assert_eq(ig_config_source(cfg, ig_settings()[i].name), IG_CONFIG_SRC_DEFAULT);
        cr_assert_str_eq(ig_config_origin(cfg, ig_settings()[i].name), "");
    }
    cr_assert_null(ig_config_file(cfg));
    ig_config_free(cfg);
}

Test(config, precedence_flag_env_file_default) {
    const char *path =
        write_file("ignis.toml", "# test\n[server]\nport = 1001\nhost = \"0.0.0.0\"\n"
                                 "[cache]\nblock_size = 32\n");
    char cfg_env[300];
    snprintf(cfg_env, sizeof cfg_env, "IGNIS_CONFIG=%s", path);
    const char *env[] = {cfg_env, "IGNIS_PORT=1002", "IGNIS_BLOCK_SIZE=64", "HOME=/x", NULL};
    ig_error err = {0};

    /* The same key in all three: the flag wins. */
    ig_config *cfg = fresh();
    const char *args[] = {"--port", "1003", NULL};
    cr_assert_eq(resolve(cfg, args, env, &err), IG_OK, "%s", err.message);
    cr_assert_eq(ig_config_get_int(cfg, "server.port"), 1003);
    cr_assert_eq(ig_config_source(cfg, "server.port"), IG_CONFIG_SRC_FLAG);
    cr_assert_str_eq(ig_config_origin(cfg, "server.port"), "--port");
    /* Env over file. */
    cr_assert_eq(ig_config_get_int(cfg, "cache.block_size"), 64);
    cr_assert_eq(ig_config_source(cfg, "cache.block_size"), IG_CONFIG_SRC_ENV);
    cr_assert_str_eq(ig_config_origin(cfg, "cache.block_size"), "IGNIS_BLOCK_SIZE");
    /* File over default. */
    cr_assert_str_eq(ig_config_get_string(cfg, "server.host"), "0.0.0.0");
    cr_assert_eq(ig_config_source(cfg, "server.host"), IG_CONFIG_SRC_FILE);
    char origin[300];
    snprintf(origin, sizeof origin, "%s:4", path);
    cr_assert_str_eq(ig_config_origin(cfg, "server.host"), origin);
    cr_assert_str_eq(ig_config_file(cfg), path);
    /* Untouched: default. */
    cr_assert_eq(ig_config_source(cfg, "model.threads"), IG_CONFIG_SRC_DEFAULT);
    ig_config_free(cfg);

    /* No flag: env wins over the file. */
    cfg = fresh();
    cr_assert_eq(resolve(cfg, NULL, env, &err), IG_OK, "%s", err.message);
    cr_assert_eq(ig_config_get_int(cfg, "server.port"), 1002);
    cr_assert_eq(ig_config_source(cfg, "server.port"), IG_CONFIG_SRC_ENV);
    ig_config_free(cfg);

    /* Neither: the file's value. */
    const char *env_file_only[] = {cfg_env, NULL};
    cfg = fresh();
    cr_assert_eq(resolve(cfg, NULL, env_file_only, &err), IG_OK, "%s", err.message);
    cr_assert_eq(ig_config_get_int(cfg, "server.port"), 1001);
    cr_assert_eq(ig_config_source(cfg, "server.port"), IG_CONFIG_SRC_FILE);
    snprintf(origin, sizeof origin, "%s:3", path);
    cr_assert_str_eq(ig_config_origin(cfg, "server.port"), origin);
    ig_config_free(cfg);

    /* No file named anywhere: nothing is read. */
    cfg = fresh();
    cr_assert_eq(resolve(cfg, NULL, NULL, &err), IG_OK, "%s", err.message);
    cr_assert_eq(ig_config_get_int(cfg, "server.port"), 8080);
    cr_assert_null(ig_config_file(cfg));
    ig_config_free(cfg);
}

Test(config, config_flag_beats_ignis_config) {
    const char *a = write_file("a.toml", "[server]\nport = 1\n");
    const char *b = write_file("b.toml", "[server]\nport = 2\n");
    char cfg_env[300];
    snprintf(cfg_env, sizeof cfg_env, "IGNIS_CONFIG=%s", a);
    const char *env[] = {cfg_env, NULL};
    const char *args[] = {"--config", b, NULL};
    ig_error err = {0};
    ig_config *cfg = fresh();
    cr_assert_eq(resolve(cfg, args, env, &err), IG_OK, "%s", err.message);
    cr_assert_eq(ig_config_get_int(cfg, "server.port"), 2);
    cr_assert_str_eq(ig_config_file(cfg), b);
    ig_config_free(cfg);
    /* A named file that does not exist is an error. */
    const char *missing[] = {"--config", "/nonexistent/ignis.toml", NULL};
    cfg = fresh();
    expect_fail(resolve(cfg, missing, NULL, &err), IG_EIO, &err,
                "cannot open config file '/nonexistent/ignis.toml'");
    ig_config_free(cfg);
}

Test(config, lists_from_each_source) {
    const char *path = write_file("l.toml", "[server]\napi_keys = [\"a\", \"b\",]\n"
                                            "cors_origins = []\n");
    ig_error err = {0};
    ig_config *cfg = fresh();
    cr_assert_eq(ig_config_load_file(cfg, path, &err), IG_OK, "%s", err.message);
    size_t n;
    const char *const *k = ig_config_get_list(cfg, "server.api_keys", &n);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(k[0], "a");
    cr_assert_str_eq(k[1], "b");
    const char *env[] = {"IGNIS_API_KEYS= c , d,,", "IGNIS_CORS_ORIGINS=*", NULL};
    cr_assert_eq(ig_config_apply_env(cfg, env, &err), IG_OK, "%s", err.message);
    k = ig_config_get_list(cfg, "server.api_keys", &n);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(k[0], "c");
    cr_assert_str_eq(k[1], "d");
    k = ig_config_get_list(cfg, "server.cors_origins", &n);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(k[0], "*");
    /* Repeated flags build one list, which replaces the env's. */
    char *argv[] = {"x", "--api-key", "e", "--api-key=f,g", NULL};
    cr_assert_eq(ig_config_apply_flags(cfg, 4, argv, NULL, &err), IG_OK, "%s", err.message);
    k = ig_config_get_list(cfg, "server.api_keys", &n);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(k[0], "e");
    cr_assert_str_eq(k[1], "f,g"); /* a flag's value is one item, commas and all */
    cr_assert_eq(ig_config_source(cfg, "server.api_keys"), IG_CONFIG_SRC_FLAG);
    ig_config_free(cfg);
}

Test(config, booleans_enums_floats) {
    ig_error err = {0};
    ig_config *cfg = fresh();
    char *a1[] = {"x",
                  "--no-prefix-caching",
                  "--adaptive-budget",
                  "--log-level=WARN",
                  "--eviction-policy",
                  "fifo",
                  "--target-itl-ms",
                  "12.5",
                  NULL};
    cr_assert_eq(ig_config_apply_flags(cfg, 8, a1, NULL, &err), IG_OK, "%s", err.message);
    cr_assert(!ig_config_get_bool(cfg, "cache.prefix_caching"));
    cr_assert_str_eq(ig_config_origin(cfg, "cache.prefix_caching"), "--no-prefix-caching");
    cr_assert(ig_config_get_bool(cfg, "scheduler.adaptive_budget"));
    cr_assert_str_eq(ig_config_get_string(cfg, "log.level"), "warn");
    cr_assert_eq(ig_config_get_enum(cfg, "log.level"), 2);
    cr_assert_eq(ig_config_get_enum(cfg, "cache.eviction_policy"), 2);
    cr_assert_float_eq(ig_config_get_float(cfg, "scheduler.target_itl_ms"), 12.5, 1e-12);
    char *a2[] = {"x", "--prefix-caching=true", "--adaptive-budget=false", NULL};
    cr_assert_eq(ig_config_apply_flags(cfg, 3, a2, NULL, &err), IG_OK, "%s", err.message);
    cr_assert(ig_config_get_bool(cfg, "cache.prefix_caching"));
    cr_assert(!ig_config_get_bool(cfg, "scheduler.adaptive_budget"));
    const char *words[][2] = {{"1", "t"},  {"0", "f"},   {"yes", "t"},  {"NO", "f"},
                              {"on", "t"}, {"off", "f"}, {"True", "t"}, {"false", "f"}};
    for (size_t i = 0; i < 8; i++) {
        char e[64];
        snprintf(e, sizeof e, "IGNIS_PREFIX_CACHING=%s", words[i][0]);
        const char *env[] = {e, NULL};
        cr_assert_eq(ig_config_apply_env(cfg, env, &err), IG_OK, "%s", err.message);
        cr_assert_eq(ig_config_get_bool(cfg, "cache.prefix_caching"), words[i][1][0] == 't', "%s",
                     words[i][0]);
    }
    /* A float setting takes an integer in the file. */
    cr_assert_eq(
        ig_config_load_string(cfg, "[scheduler]\ntarget_itl_ms = 20\n", 31, "f.toml", NULL, &err),
        IG_OK, "%s", err.message);
    cr_assert_float_eq(ig_config_get_float(cfg, "scheduler.target_itl_ms"), 20.0, 1e-12);
    ig_config_free(cfg);
}

static ig_status load(ig_config *cfg, const char *text, ig_error *err) {
    memset(err, 0, sizeof *err);
    return ig_config_load_string(cfg, text, strlen(text), "ignis.toml", NULL, err);
}

Test(config, bad_values_in_the_file_name_the_key) {
    ig_config *cfg = fresh();
    ig_error err;
    expect_fail(load(cfg, "[cache]\n\n# c\nblock_size = 0\n", &err), IG_ERANGE, &err,
                "ignis.toml:4: [cache] block_size: 0 is out of range [1, 256]");
    expect_fail(load(cfg, "[server]\nport = \"8080\"\n", &err), IG_ETYPE, &err,
                "ignis.toml:2: [server] port: expected an integer, got a string");
    expect_fail(load(cfg, "[server]\nport = 80.5\n", &err), IG_ETYPE, &err,
                "ignis.toml:2: [server] port: expected an integer, got a float");
    expect_fail(load(cfg, "[server]\nhost = 1\n", &err), IG_ETYPE, &err,
                "ignis.toml:2: [server] host: expected a string, got an integer");
    expect_fail(load(cfg, "[cache]\nprefix_caching = \"yes\"\n", &err), IG_ETYPE, &err,
                "ignis.toml:2: [cache] prefix_caching: expected true or false, got a string");
    expect_fail(load(cfg, "[cache]\neviction_policy = \"random\"\n", &err), IG_EINVAL, &err,
                "ignis.toml:2: [cache] eviction_policy: 'random' is not one of lru, lfu, fifo");
    expect_fail(load(cfg, "[server]\napi_keys = \"k\"\n", &err), IG_ETYPE, &err,
                "ignis.toml:2: [server] api_keys: expected an array of strings, got a string");
    expect_fail(load(cfg, "[server]\napi_keys = [\"k\", 2]\n", &err), IG_ETYPE, &err,
                "ignis.toml:2: [server] api_keys: item 2 is an integer, expected a string");
    expect_fail(load(cfg, "[scheduler]\ntarget_itl_ms = 0.5\n", &err), IG_ERANGE, &err,
                "ignis.toml:2: [scheduler] target_itl_ms: 0.5 is out of range [1, 10000]");
    expect_fail(load(cfg, "[scheduler]\ntarget_itl_ms = nan\n", &err), IG_ERANGE, &err,
                "[scheduler] target_itl_ms: nan is not a finite number");
    expect_fail(load(cfg, "[server]\nmax_connections = -1\n", &err), IG_ERANGE, &err,
                "[server] max_connections: -1 is out of range [1, 65536]");
    expect_fail(load(cfg, "[server]\nport = 1\n  port = 2\n", &err), IG_EFORMAT, &err,
                "ignis.toml:3:3: duplicate key server.port (first defined at line 2)");
    expect_fail(load(cfg, "[server]\nport = \n", &err), IG_EFORMAT, &err,
                "ignis.toml:2:8: expected a value, found end of line");
    /* None of the failures changed anything. */
    for (size_t i = 0; i < ig_settings_count(); i++)
        cr_assert_eq(ig_config_source(cfg, ig_settings()[i].name), IG_CONFIG_SRC_DEFAULT);
    ig_config_free(cfg);
}

Test(config, unknown_keys_and_sections_in_the_file) {
    ig_config *cfg = fresh();
    ig_error err;
    expect_fail(load(cfg, "[server]\nprot = 1\n", &err), IG_ENOTFOUND, &err,
                "ignis.toml:2: unknown key [server] prot (did you mean port?)");
    expect_fail(load(cfg, "[server]\nfrobnicate = 1\n", &err), IG_ENOTFOUND, &err,
                "ignis.toml:2: unknown key [server] frobnicate");
    expect_fail(load(cfg, "[server]\nblock_size = 1\n", &err), IG_ENOTFOUND, &err,
                "ignis.toml:2: unknown key [server] block_size (it belongs in [cache])");
    expect_fail(load(cfg, "[sever]\nport = 1\n", &err), IG_ENOTFOUND, &err,
                "ignis.toml:1: unknown section [sever] (did you mean [server]?)");
    expect_fail(load(cfg, "[extras]\n", &err), IG_ENOTFOUND, &err,
                "ignis.toml:1: unknown section [extras]");
    expect_fail(load(cfg, "\nport = 1\n", &err), IG_ENOTFOUND, &err,
                "ignis.toml:2: unknown key port outside any section (did you mean [server] port?)");
    expect_fail(load(cfg, "server = 1\n", &err), IG_ETYPE, &err,
                "ignis.toml:1: server must be a section ([server]), not an integer");
    expect_fail(load(cfg, "[server.tls]\ncert = 'x'\n", &err), IG_ENOTFOUND, &err,
                "unknown key [server] tls");
    /* Dotted keys and inline tables are the same settings. */
    cr_assert_eq(load(cfg, "server.port = 9\ncache = { block_size = 8 }\n", &err), IG_OK, "%s",
                 err.message);
    cr_assert_eq(ig_config_get_int(cfg, "server.port"), 9);
    cr_assert_eq(ig_config_get_int(cfg, "cache.block_size"), 8);
    ig_config_free(cfg);
}

Test(config, bad_values_in_env_and_flags_name_the_source) {
    ig_config *cfg = fresh();
    ig_error err = {0};
    struct {
        const char *env;
        ig_status st;
        const char *msg;
    } env_cases[] = {
        {"IGNIS_PORT=abc", IG_ETYPE, "IGNIS_PORT: 'abc' is not an integer"},
        {"IGNIS_PORT=", IG_ETYPE, "IGNIS_PORT: '' is not an integer"},
        {"IGNIS_PORT=80x", IG_ETYPE, "IGNIS_PORT: '80x' is not an integer"},
        {"IGNIS_PORT=70000", IG_ERANGE, "IGNIS_PORT: 70000 is out of range [0, 65535]"},
        {"IGNIS_PORT=99999999999999999999", IG_ERANGE, "IGNIS_PORT: 99999999999999999999 is out"},
        {"IGNIS_LOG_LEVEL=verbose", IG_EINVAL,
         "IGNIS_LOG_LEVEL: 'verbose' is not one of debug, info, warn, error"},
        {"IGNIS_PREFIX_CACHING=maybe", IG_ETYPE,
         "IGNIS_PREFIX_CACHING: 'maybe' is not a boolean (true or false)"},
        {"IGNIS_TARGET_ITL_MS=fast", IG_ETYPE, "IGNIS_TARGET_ITL_MS: 'fast' is not a number"},
        {"IGNIS_TARGET_ITL_MS=inf", IG_ETYPE, "IGNIS_TARGET_ITL_MS: 'inf' is not a number"},
        {"IGNIS_TARGET_ITL_MS=1e9", IG_ERANGE,
         "IGNIS_TARGET_ITL_MS: 1e9 is out of range [1, 10000]"},
    };
    for (size_t i = 0; i < sizeof env_cases / sizeof env_cases[0]; i++) {
        const char *env[] = {env_cases[i].env, NULL};
        memset(&err, 0, sizeof err);
        expect_fail(ig_config_apply_env(cfg, env, &err), env_cases[i].st, &err, env_cases[i].msg);
    }
    struct {
        const char *a, *b;
        ig_status st;
        const char *msg;
    } flag_cases[] = {
        {"--port", "70000", IG_ERANGE, "--port: 70000 is out of range [0, 65535]"},
        {"--port=-1", NULL, IG_ERANGE, "--port: -1 is out of range [0, 65535]"},
        {"-t", "many", IG_ETYPE, "-t: 'many' is not an integer"},
        {"--kv-cache-mb", "0", IG_ERANGE, "--kv-cache-mb: 0 is out of range [1, 1048576]"},
        {"--log-format", "xml", IG_EINVAL, "--log-format: 'xml' is not one of json, text"},
        {"--prefix-caching=perhaps", NULL, IG_ETYPE,
         "--prefix-caching: 'perhaps' is not a boolean"},
        {"--prot", "1", IG_EINVAL, "unknown option '--prot' (did you mean --port?)"},
        {"--whatever", NULL, IG_EINVAL, "unknown option '--whatever'"},
        {"-z", NULL, IG_EINVAL, "unknown option '-z'"},
        {"--port", NULL, IG_EINVAL, "option '--port' needs a value"},
        {"-t", NULL, IG_EINVAL, "option '-t' needs a value"},
        {"--no-prefix-caching=1", NULL, IG_EINVAL, "unknown option '--no-prefix-caching'"},
    };
    for (size_t i = 0; i < sizeof flag_cases / sizeof flag_cases[0]; i++) {
        char *argv[] = {"x", (char *)flag_cases[i].a, (char *)flag_cases[i].b, NULL};
        memset(&err, 0, sizeof err);
        expect_fail(ig_config_apply_flags(cfg, flag_cases[i].b ? 3 : 2, argv, NULL, &err),
                    flag_cases[i].st, &err, flag_cases[i].msg);
    }
    for (size_t i = 0; i < ig_settings_count(); i++)
        cr_assert_eq(ig_config_source(cfg, ig_settings()[i].name), IG_CONFIG_SRC_DEFAULT);
    ig_config_free(cfg);
}

Test(config, unknown_env_variables_warn) {
    ig_config *cfg = fresh();
    ig_error err = {0};
    const char *env[] = {"PATH=/bin",
                         "IGNIS_MODEL=/m.gguf",
                         "IGNIS_TEST_DATA=/d",
                         "IGNIS_CPU=avx2",
                         "IGNIS_BIN=/b",
                         "IGNIS_CONFIG=",
                         "IGNIS_PROT=1",
                         "IGNIS_SOMETHING=else",
                         "IGNIS_THREADS=3",
                         "IGNIS_THREADS=5",
                         NULL};
    cr_assert_eq(ig_config_apply_env(cfg, env, &err), IG_OK, "%s", err.message);
    cr_assert_eq(ig_config_n_warnings(cfg), 2);
    cr_assert_str_eq(ig_config_warning(cfg, 0),
                     "IGNIS_PROT is not an Ignis setting (did you mean IGNIS_PORT?); ignored");
    cr_assert_str_eq(ig_config_warning(cfg, 1), "IGNIS_SOMETHING is not an Ignis setting; ignored");
    cr_assert_null(ig_config_warning(cfg, 2));
    cr_assert_eq(ig_config_get_int(cfg, "model.threads"), 3, "the first of repeated entries wins");
    ig_config_free(cfg);
}

Test(config, getenv_mode) {
    setenv("IGNIS_MAX_SEQS", "7", 1);
    ig_config *cfg = fresh();
    ig_error err = {0};
    cr_assert_eq(ig_config_apply_env(cfg, NULL, &err), IG_OK, "%s", err.message);
    cr_assert_eq(ig_config_get_int(cfg, "scheduler.max_seqs"), 7);
    cr_assert_eq(ig_config_source(cfg, "scheduler.max_seqs"), IG_CONFIG_SRC_ENV);
    unsetenv("IGNIS_MAX_SEQS");
    ig_config_free(cfg);
}

static int n_dump, n_help;
static ig_status on_extra(void *user, int id, const char *arg, ig_error *err) {
    (void)user;
    (void)err;
    if (id == 1) n_dump++;
    if (id == 2) {
        n_help++;
        cr_assert_null(arg);
    }
    if (id == 3) return ig_errorf(err, IG_EINVAL, "--stop: %s", arg);
    return IG_OK;
}

Test(config, nonoptions_extra_options_and_double_dash) {
    char *argv[] = {"ignis",  "--port", "5",  "model.gguf", "-t", "2",
                    "--dump", "-h",     "--", "--port",     NULL};
    int argc = 10, first = -1;
    ig_config_option extra[] = {
        {"dump", 0, false, 1}, {"help", 'h', false, 2}, {"stop", 0, true, 3}};
    ig_error err = {0};
    ig_config *cfg = fresh();
    cr_assert_eq(ig_config_resolve_ex(cfg, argc, argv, (const char *const[]){NULL}, extra, 3,
                                      on_extra, NULL, &first, &err),
                 IG_OK, "%s", err.message);
    cr_assert_eq(ig_config_get_int(cfg, "server.port"), 5);
    cr_assert_eq(ig_config_get_int(cfg, "model.threads"), 2);
    cr_assert_eq(n_dump, 1);
    cr_assert_eq(n_help, 1);
    cr_assert_eq(argc - first, 2, "two arguments are not options");
    cr_assert_str_eq(argv[first], "model.gguf");
    cr_assert_str_eq(argv[first + 1], "--port");
    /* A callback's error stops the parse. */
    char *argv2[] = {"ignis", "--stop", "now", NULL};
    memset(&err, 0, sizeof err);
    expect_fail(ig_config_apply_flags_ex(cfg, 3, argv2, extra, 3, on_extra, NULL, NULL, &err),
                IG_EINVAL, &err, "--stop: now");
    /* Without the extras, they are unknown. */
    char *argv3[] = {"ignis", "--dump", NULL};
    memset(&err, 0, sizeof err);
    expect_fail(ig_config_apply_flags(cfg, 2, argv3, NULL, &err), IG_EINVAL, &err,
                "unknown option '--dump'");
    ig_config_free(cfg);
}

Test(config, relative_paths_follow_the_file) {
    char sub[128];
    snprintf(sub, sizeof sub, "%s/conf", tmpdir);
    cr_assert_eq(mkdir(sub, 0700), 0);
    char path[256];
    snprintf(path, sizeof path, "%s/ignis.toml", sub);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("[model]\npath = \"models/m.gguf\"\n[log]\nfile = \"/var/log/ignis.log\"\n"
          "[server]\napi_key_file = \"~/keys\"\n",
          f);
    fclose(f);
    setenv("HOME", "/home/someone", 1);
    ig_config *cfg = fresh();
    ig_error err = {0};
    cr_assert_eq(ig_config_load_file(cfg, path, &err), IG_OK, "%s", err.message);
    char want[300];
    snprintf(want, sizeof want, "%s/models/m.gguf", sub);
    cr_assert_str_eq(ig_config_get_string(cfg, "model.path"), want);
    cr_assert_str_eq(ig_config_get_string(cfg, "log.file"), "/var/log/ignis.log");
    cr_assert_str_eq(ig_config_get_string(cfg, "server.api_key_file"), "/home/someone/keys");
    /* From a flag, relative stays relative (to the working directory). */
    char *argv[] = {"x", "-m", "rel.gguf", NULL};
    cr_assert_eq(ig_config_apply_flags(cfg, 3, argv, NULL, &err), IG_OK, "%s", err.message);
    cr_assert_str_eq(ig_config_get_string(cfg, "model.path"), "rel.gguf");
    ig_config_free(cfg);
}

Test(config, dump_reads_back) {
    ig_config *cfg = fresh();
    ig_error err = {0};
    char *argv[] = {"x",           "--host",    "::1",       "--api-key",
                    "k\"1\\",      "--api-key", "k2",        "--target-itl-ms",
                    "0.1e2",       "--alias",   "tab\there", "--no-prefix-caching",
                    "--log-level", "error",     NULL};
    cr_assert_eq(ig_config_apply_flags(cfg, 14, argv, NULL, &err), IG_OK, "%s", err.message);
    char *dump = ig_config_dump(cfg);
    cr_assert_not_null(dump);
    cr_assert(strstr(dump, "port = 8080"), "%s", dump);
    cr_assert(strstr(dump, "# default\n"), "%s", dump);
    cr_assert(strstr(dump, "# flag --host\n"), "%s", dump);
    cr_assert(strstr(dump, "# flag --no-prefix-caching\n"), "%s", dump);
    ig_config *back = fresh();
    cr_assert_eq(ig_config_load_string(back, dump, strlen(dump), "dump", NULL, &err), IG_OK,
                 "%s\n%s", err.message, dump);
    for (size_t i = 0; i < ig_settings_count(); i++) {
        const ig_setting *s = &ig_settings()[i];
        switch (s->type) {
        case IG_SETTING_TYPE_INT:
            cr_assert_eq(ig_config_get_int(back, s->name), ig_config_get_int(cfg, s->name));
            break;
        case IG_SETTING_TYPE_FLOAT:
            cr_assert_eq(ig_config_get_float(back, s->name), ig_config_get_float(cfg, s->name));
            break;
        case IG_SETTING_TYPE_BOOL:
            cr_assert_eq(ig_config_get_bool(back, s->name), ig_config_get_bool(cfg, s->name));
            break;
        case IG_SETTING_TYPE_LIST: {
            size_t na, nb;
            const char *const *la = ig_config_get_list(cfg, s->name, &na);
            const char *const *lb = ig_config_get_list(back, s->name, &nb);
            cr_assert_eq(na, nb, "%s", s->name);
            for (size_t k = 0; k < na; k++) cr_assert_str_eq(la[k], lb[k]);
            break;
        }
        default:
            cr_assert_str_eq(ig_config_get_string(back, s->name),
                             ig_config_get_string(cfg, s->name), "%s", s->name);
        }
        cr_assert_eq(ig_config_source(back, s->name), IG_CONFIG_SRC_FILE);
    }
    cr_assert_str_eq(ig_config_get_string(back, "model.name"), "tab\there");
    free(dump);
    ig_config_free(back);
    ig_config_free(cfg);
}

Test(config, set_by_name) {
    ig_config *cfg = fresh();
    ig_error err = {0};
    cr_assert_eq(ig_config_set(cfg, "server.port", "81", IG_CONFIG_SRC_FLAG, "test", &err), IG_OK);
    cr_assert_eq(ig_config_get_int(cfg, "server.port"), 81);
    cr_assert_str_eq(ig_config_origin(cfg, "server.port"), "test");
    expect_fail(ig_config_set(cfg, "server.nope", "1", IG_CONFIG_SRC_FLAG, NULL, &err),
                IG_ENOTFOUND, &err, "no setting named 'server.nope'");
    memset(&err, 0, sizeof err);
    expect_fail(ig_config_set(cfg, "server.port", "x", IG_CONFIG_SRC_FLAG, NULL, &err), IG_ETYPE,
                &err, "server.port: 'x' is not an integer");
    ig_config_free(cfg);
}

Test(config, docs_match_the_table) {
    /* docs/CONFIG.md sits two directories above this file's. */
    char path[4096];
    snprintf(path, sizeof path, "%s", __FILE__);
    char *slash = strrchr(path, '/');
    cr_assert_not_null(slash, "__FILE__ is not a path: %s", __FILE__);
    *slash = '\0';
    strncat(path, "/../../docs/CONFIG.md", sizeof path - strlen(path) - 1);
    char *committed = ig_test_read_file(path, NULL);
    cr_assert_not_null(committed, "cannot read %s", path);
    char *generated = ig_config_markdown();
    cr_assert_not_null(generated);
    cr_assert_str_eq(committed, generated,
                     "docs/CONFIG.md is out of date: run `build/ignis config --markdown > "
                     "docs/CONFIG.md`");
    /* And it names every setting, flag and variable. */
    for (size_t i = 0; i < ig_settings_count(); i++) {
        const ig_setting *s = &ig_settings()[i];
        char k[128];
        snprintf(k, sizeof k, "| `%s` |", s->key);
        cr_assert(strstr(generated, k), "%s missing", s->name);
        cr_assert(strstr(generated, s->env), "%s missing", s->env);
        if (s->flag) {
            snprintf(k, sizeof k, "--%s", s->flag);
            cr_assert(strstr(generated, k), "%s missing", k);
        }
    }
    free(generated);
    free(committed);
}

Test(config, help_lists_every_flag) {
    char *help = ig_config_help();
    cr_assert_not_null(help);
    for (size_t i = 0; i < ig_settings_count(); i++) {
        const ig_setting *s = &ig_settings()[i];
        char k[128];
        snprintf(k, sizeof k, "--%s", s->flag);
        cr_assert(strstr(help, k), "%s missing from help", k);
    }
    free(help);
}
