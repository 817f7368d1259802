/*
 * flags.c: command-line flags generated from the settings table, and
 * ig_config_resolve (every source in order of precedence).
 *
 * Flags are read in two steps. collect() runs getopt_long over argv with an
 * option array built from the table (plus `--config` and the command's own
 * options), checks the syntax (unknown options, missing values) and records
 * each setting's text; apply() then sets the values. ig_config_resolve puts
 * the file and the environment between the two, which is how flags win over
 * both while `--config FILE` is known before the file is read.
 *
 * getopt_long keeps global state (optind, optarg): not thread-safe, and it is
 * reset here (optind = 0, glibc's full reinitialisation) before each parse.
 */
#include "config/config_internal.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    VAL_SETTING = 1000, /* + setting index: --flag [VALUE] */
    VAL_NEGATED = 3000, /* + setting index: --no-flag (booleans) */
    VAL_CONFIG = 5000,  /* --config FILE */
    VAL_EXTRA = 6000,   /* + index into extra[] */
};

/* One flag given on the command line, in order. */
typedef struct flag_use {
    int idx;          /* setting */
    const char *text; /* value (borrowed from argv or a literal) */
    char origin[64];  /* "--port", "-t", "--no-prefix-caching" */
} flag_use;

typedef struct flag_set {
    flag_use *uses; /* [n] */
    size_t n;
    const char *config; /* --config FILE, or NULL */
} flag_set;

static ig_status collect(int argc, char **argv, const ig_config_option *extra, size_t n_extra,
                         ig_config_option_fn fn, void *user, flag_set *out, int *first_nonoption,
                         ig_error *err) {
    const ig_setting *all = ig_settings();
    size_t n_settings = ig_settings_count();
    ig_status st = IG_OK;
    size_t n_opts = 0, cap_opts = 2 * n_settings + n_extra + 2;
    struct option *opts = calloc(cap_opts, sizeof *opts);
    char **neg_names = calloc(n_settings, sizeof *neg_names);
    char *shorts = malloc(3 * (n_settings + n_extra) + 2);
    flag_use *uses = calloc(argc > 0 ? (size_t)argc : 1, sizeof *uses);
    size_t n_uses = 0;
    if (!opts || !neg_names || !shorts || !uses) {
        st = ig_errorf(err, IG_ENOMEM, "out of memory");
        goto cleanup;
    }
    size_t ns = 0;
    shorts[ns++] = ':'; /* report a missing value as ':' */
    for (size_t i = 0; i < n_settings; i++) {
        const ig_setting *s = &all[i];
        if (!s->flag) continue;
        bool is_bool = s->type == IG_SETTING_TYPE_BOOL;
        opts[n_opts++] = (struct option){s->flag, is_bool ? optional_argument : required_argument,
                                         NULL, VAL_SETTING + (int)i};
        if (is_bool) {
            if (asprintf(&neg_names[i], "no-%s", s->flag) < 0) {
                neg_names[i] = NULL;
                st = ig_errorf(err, IG_ENOMEM, "out of memory");
                goto cleanup;
            }
            opts[n_opts++] = (struct option){neg_names[i], no_argument, NULL, VAL_NEGATED + (int)i};
        }
        if (s->short_flag) {
            shorts[ns++] = s->short_flag;
            if (!is_bool) shorts[ns++] = ':';
        }
    }
    opts[n_opts++] = (struct option){"config", required_argument, NULL, VAL_CONFIG};
    for (size_t k = 0; k < n_extra; k++) {
        opts[n_opts++] =
            (struct option){extra[k].name, extra[k].has_arg ? required_argument : no_argument, NULL,
                            VAL_EXTRA + (int)k};
        if (extra[k].short_name) {
            shorts[ns++] = extra[k].short_name;
            if (extra[k].has_arg) shorts[ns++] = ':';
        }
    }
    shorts[ns] = '\0';
    opts[n_opts] = (struct option){0, 0, 0, 0};

    opterr = 0;
    optind = 0;
    int c, li;
    while (st == IG_OK && (c = getopt_long(argc, argv, shorts, opts, &li)) != -1) {
        if (c == '?' || c == ':') {
            const char *bad = optind - 1 < argc && optind > 0 ? argv[optind - 1] : "?";
            char opt[80];
            if (strncmp(bad, "--", 2) && optopt > 0 && optopt < 256)
                snprintf(opt, sizeof opt, "-%c", optopt); /* a short one, maybe grouped */
            else
                snprintf(opt, sizeof opt, "%.*s", (int)strcspn(bad, "="), bad);
            if (c == ':') {
                st = ig_errorf(err, IG_EINVAL, "option '%s' needs a value", opt);
                break;
            }
            const char *names[256];
            size_t m = 0;
            for (size_t i = 0; i < n_opts && m < 256; i++) names[m++] = opts[i].name;
            const char *near = strncmp(opt, "--", 2) ? NULL : ig__config_suggest(opt + 2, names, m);
            if (near)
                st = ig_errorf(err, IG_EINVAL, "unknown option '%s' (did you mean --%s?)", opt,
                               near);
            else
                st = ig_errorf(err, IG_EINVAL, "unknown option '%s'", opt);
            break;
        }
        int idx = -1;
        const char *text = optarg;
        char origin[64];
        if (c >= VAL_EXTRA) {
            if (fn) st = fn(user, extra[c - VAL_EXTRA].id, optarg, err);
            continue;
        }
        if (c == VAL_CONFIG) {
            out->config = optarg;
            continue;
        }
        if (c >= VAL_NEGATED) {
            idx = c - VAL_NEGATED;
            text = "false";
            snprintf(origin, sizeof origin, "--%s", neg_names[idx]);
        } else if (c >= VAL_SETTING) {
            idx = c - VAL_SETTING;
            if (!text) text = "true"; /* a boolean given bare */
            snprintf(origin, sizeof origin, "--%s", all[idx].flag);
        } else {
            for (size_t i = 0; i < n_settings && idx < 0; i++)
                if (all[i].short_flag == c) idx = (int)i;
            for (size_t k = 0; k < n_extra && idx < 0; k++) {
                if (extra[k].short_name == c) {
                    if (fn) st = fn(user, extra[k].id, optarg, err);
                    break;
                }
            }
            if (idx < 0) continue;
            if (!text) text = "true";
            snprintf(origin, sizeof origin, "-%c", c);
        }
        flag_use *u = &uses[n_uses++];
        u->idx = idx;
        u->text = text;
        memcpy(u->origin, origin, sizeof origin);
    }
    if (st == IG_OK) {
        if (first_nonoption) *first_nonoption = optind;
        out->uses = uses;
        out->n = n_uses;
        uses = NULL;
    }
cleanup:
    free(uses);
    if (neg_names)
        for (size_t i = 0; i < n_settings; i++) free(neg_names[i]);
    free(neg_names);
    free(shorts);
    free(opts);
    return st;
}

/* Set the collected flags: scalars in command-line order (the last of a
 * repeated one wins), then each list from all its uses together. */
static ig_status apply(ig_config *cfg, const flag_set *fs, ig_error *err) {
    const ig_setting *all = ig_settings();
    ig_status st = IG_OK;
    for (size_t k = 0; k < fs->n && st == IG_OK; k++) {
        const flag_use *u = &fs->uses[k];
        if (all[u->idx].type == IG_SETTING_TYPE_LIST) continue;
        st = ig__config_set_text(cfg, (size_t)u->idx, u->text, IG_CONFIG_SRC_FLAG, u->origin,
                                 u->origin, NULL, err);
    }
    if (st != IG_OK || fs->n == 0) return st;
    const char **items = calloc(fs->n, sizeof *items);
    if (!items) return ig_errorf(err, IG_ENOMEM, "out of memory");
    for (size_t i = 0; i < ig_settings_count() && st == IG_OK; i++) {
        if (all[i].type != IG_SETTING_TYPE_LIST) continue;
        size_t n = 0;
        const char *origin = NULL;
        for (size_t k = 0; k < fs->n; k++) {
            if (fs->uses[k].idx != (int)i) continue;
            items[n++] = fs->uses[k].text;
            origin = fs->uses[k].origin;
        }
        if (n) st = ig__config_set_list(cfg, i, items, n, IG_CONFIG_SRC_FLAG, origin, err);
    }
    free(items);
    return st;
}

ig_status ig_config_apply_flags_ex(ig_config *cfg, int argc, char **argv,
                                   const ig_config_option *extra, size_t n_extra,
                                   ig_config_option_fn fn, void *user, int *first_nonoption,
                                   ig_error *err) {
    IG_ASSERT(cfg && (argc == 0 || argv));
    flag_set fs = {0};
    ig_status st = collect(argc, argv, extra, n_extra, fn, user, &fs, first_nonoption, err);
    if (st == IG_OK) st = apply(cfg, &fs, err);
    free(fs.uses);
    return st;
}

ig_status ig_config_apply_flags(ig_config *cfg, int argc, char **argv, int *first_nonoption,
                                ig_error *err) {
    return ig_config_apply_flags_ex(cfg, argc, argv, NULL, 0, NULL, NULL, first_nonoption, err);
}

static const char *env_lookup(const char *const *envp, const char *name) {
    if (!envp) return getenv(name);
    size_t n = strlen(name);
    for (size_t k = 0; envp[k]; k++)
        if (!strncmp(envp[k], name, n) && envp[k][n] == '=') return envp[k] + n + 1;
    return NULL;
}

ig_status ig_config_resolve_ex(ig_config *cfg, int argc, char **argv, const char *const *envp,
                               const ig_config_option *extra, size_t n_extra,
                               ig_config_option_fn fn, void *user, int *first_nonoption,
                               ig_error *err) {
    IG_ASSERT(cfg && (argc == 0 || argv));
    flag_set fs = {0};
    ig_status st = collect(argc, argv, extra, n_extra, fn, user, &fs, first_nonoption, err);
    if (st != IG_OK) goto cleanup;
    const char *file = fs.config;
    if (file && !*file) {
        st = ig_errorf(err, IG_EINVAL, "--config: needs a file name");
        goto cleanup;
    }
    if (!file) {
        file = env_lookup(envp, "IGNIS_CONFIG");
        if (file && !*file) file = NULL;
    }
    if (file) {
        st = ig_config_load_file(cfg, file, err);
        if (st != IG_OK) goto cleanup;
    }
    st = ig_config_apply_env(cfg, envp, err);
    if (st != IG_OK) goto cleanup;
    st = apply(cfg, &fs, err);
cleanup:
    free(fs.uses);
    return st;
}

ig_status ig_config_resolve(ig_config *cfg, int argc, char **argv, const char *const *envp,
                            int *first_nonoption, ig_error *err) {
    return ig_config_resolve_ex(cfg, argc, argv, envp, NULL, 0, NULL, NULL, first_nonoption, err);
}
