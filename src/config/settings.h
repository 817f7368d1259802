/*
 * settings.h: Ignis's settings, from one table, and their resolved values.
 *
 * Model of use
 * ------------
 * Every setting is one row of a table in settings.c: its section and key (the
 * TOML name `[server] port`, known in code as "server.port"), its type and
 * limits, its default, its command-line flag (`--port`), its environment
 * variable (`IGNIS_PORT`) and its help text. The flags, the environment
 * variables, the TOML keys, `--help` text and docs/CONFIG.md all come from
 * that table.
 *
 * An ig_config holds one value per setting and where that value came from.
 * ig_config_new_defaults() fills in the defaults; then sources are applied in
 * increasing precedence, each overwriting what it sets:
 *
 *     default < file (ig_config_load_file) < environment (ig_config_apply_env)
 *             < flags (ig_config_apply_flags)
 *
 * ig_config_resolve() does all of it in that order; the file is the one named
 * by `--config FILE`, else by $IGNIS_CONFIG, else none.
 *
 * Values are checked as they are applied: a wrong type, a number out of range
 * or a word not among an enum's choices is an error naming the key and its
 * source ("ignis.toml:12: [cache] block_size: 0 is out of range [1, 256]",
 * "IGNIS_PORT: 'abc' is not an integer", "--port: 70000 is out of range
 * [0, 65535]"). An unknown key or section in the file is an error too; an
 * unknown IGNIS_* environment variable is only a warning (ig_config_warning),
 * since other tools share the prefix (IGNIS_MODEL, IGNIS_TEST_DATA, ... are
 * known and ignored).
 *
 * Paths given in a file that are relative are taken relative to the file's
 * directory; from flags and the environment, relative to the working
 * directory. A leading `~/` is the home directory ($HOME).
 *
 * Ownership and threads: an ig_config owns all its strings; getters return
 * borrowed pointers valid until the setting changes or the config is freed.
 * A config may be read from several threads once no one writes it. The
 * settings table is constant. ig_config_apply_flags and ig_config_resolve use
 * getopt_long, whose state is global: call them from one thread at a time.
 *
 * Failure leaves the config usable: the settings applied before the failing
 * one keep their new values, the failing one keeps its old value.
 */
#ifndef IG_CONFIG_SETTINGS_H
#define IG_CONFIG_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ignis.h"

typedef enum ig_setting_type {
    IG_SETTING_TYPE_STRING = 1, /* any text */
    IG_SETTING_TYPE_PATH,       /* a file path ("" = none); see the note on relative paths */
    IG_SETTING_TYPE_INT,        /* integer in [min, max] */
    IG_SETTING_TYPE_FLOAT,      /* number in [fmin, fmax] */
    IG_SETTING_TYPE_BOOL,       /* true / false */
    IG_SETTING_TYPE_ENUM,       /* one word of `choices` */
    IG_SETTING_TYPE_LIST,       /* list of strings */
} ig_setting_type;

/* One row of the settings table. */
typedef struct ig_setting {
    const char *section; /* TOML table: "server" */
    const char *key;     /* TOML key: "port" */
    const char *name;    /* "server.port" (section.key), used by the getters */
    ig_setting_type type;
    const char *def;            /* default, written as a flag value would be ("8080",
                                   "lru", "true", a list comma-separated, "" = empty) */
    int64_t min, max;           /* INT: inclusive range */
    double fmin, fmax;          /* FLOAT: inclusive range */
    const char *const *choices; /* ENUM: NULL-terminated words */
    const char *flag;           /* long option without dashes: "port" */
    char short_flag;            /* single-letter option, or 0 */
    const char *env;            /* environment variable: "IGNIS_PORT" */
    const char *metavar;        /* the value's name in --help: "PORT" */
    const char *help;           /* one or two sentences */
} ig_setting;

/* The table: ig_settings()[0 .. ig_settings_count()-1], in documentation order. */
const ig_setting *ig_settings(void);
size_t ig_settings_count(void);
/* The row named "section.key", or NULL. */
const ig_setting *ig_setting_find(const char *name);

/* IGNIS_* variables that are not settings (and so cause no warning), with
 * what they are for; NULL-terminated pairs {name, description}. */
const char *const *ig_config_other_env(void);

/* Where a value came from. */
typedef enum ig_config_src {
    IG_CONFIG_SRC_DEFAULT = 0,
    IG_CONFIG_SRC_FILE,
    IG_CONFIG_SRC_ENV,
    IG_CONFIG_SRC_FLAG,
} ig_config_src;

/* "default", "file", "env", "flag". */
const char *ig_config_src_name(ig_config_src src);

typedef struct ig_config ig_config;

/* A config holding every default. NULL only when memory runs out. */
ig_config *ig_config_new_defaults(void);
void ig_config_free(ig_config *cfg);

/*
 * Read the TOML file at `path` and apply every setting it holds (source
 * IG_CONFIG_SRC_FILE). Errors: IG_EIO (cannot read), IG_EFORMAT (not TOML:
 * "path:line:col: reason"), IG_ENOTFOUND (an unknown section or key:
 * "path:line: unknown key [server] prot (did you mean port?)"), IG_ETYPE (a
 * value of the wrong type), IG_ERANGE (a number out of range), IG_EINVAL (a
 * word not among an enum's choices), each "path:line: [section] key: reason";
 * IG_ENOMEM.
 */
ig_status ig_config_load_file(ig_config *cfg, const char *path, ig_error *err);
/* The same from text in memory; `name` stands for the file in messages and
 * `dir` (may be NULL: the working directory) anchors relative paths. */
ig_status ig_config_load_string(ig_config *cfg, const char *text, size_t len, const char *name,
                                const char *dir, ig_error *err);

/*
 * Apply the settings' environment variables (source IG_CONFIG_SRC_ENV) found in `envp`, a
 * NULL-terminated "NAME=value" array like `environ`; NULL: use getenv() for
 * each setting's variable (and skip the unknown-variable check). Lists are
 * comma-separated; booleans are true/false/1/0/yes/no/on/off. An IGNIS_*
 * variable that is neither a setting nor a known other variable adds a
 * warning. Errors as for the file: "IGNIS_PORT: 'abc' is not an integer".
 */
ig_status ig_config_apply_env(ig_config *cfg, const char *const *envp, ig_error *err);

/* An option a command handles itself beside the settings (--help, --dump). */
typedef struct ig_config_option {
    const char *name; /* long name without dashes */
    char short_name;  /* 0: none */
    bool has_arg;     /* takes a value */
    int id;           /* handed to the callback */
} ig_config_option;

/* Called for each extra option in command-line order; `arg` is its value or
 * NULL. A non-OK return stops the parse and is returned (fill err). */
typedef ig_status (*ig_config_option_fn)(void *user, int id, const char *arg, ig_error *err);

/*
 * Apply the settings' flags in argv[1..argc-1] (source IG_CONFIG_SRC_FLAG): `--port 9000`,
 * `--port=9000`, `-t 4`; booleans as `--prefix-caching`,
 * `--no-prefix-caching` or `--prefix-caching=false`; list flags repeat
 * (`--api-key A --api-key B`), and given on the command line they replace the
 * list from other sources. `--config FILE` is accepted and skipped here
 * (ig_config_resolve reads it). Options stop at `--`. argv is permuted
 * (getopt_long) so that the non-option arguments end up at
 * argv[*first_nonoption .. argc-1] (first_nonoption may be NULL). Errors:
 * IG_EINVAL for an unknown option or a missing value ("unknown option
 * '--prot'"), and the value errors ("--port: 70000 is out of range
 * [0, 65535]").
 */
ig_status ig_config_apply_flags(ig_config *cfg, int argc, char **argv, int *first_nonoption,
                                ig_error *err);
/* The same, also accepting the command's own options `extra` [n_extra],
 * handed to `fn`. */
ig_status ig_config_apply_flags_ex(ig_config *cfg, int argc, char **argv,
                                   const ig_config_option *extra, size_t n_extra,
                                   ig_config_option_fn fn, void *user, int *first_nonoption,
                                   ig_error *err);

/*
 * Everything in order of precedence: read the flags (and the command's own
 * options) first, so that `--config FILE` is known and syntax errors come
 * early; load the file (from --config, else $IGNIS_CONFIG from envp or
 * getenv when envp is NULL; none if neither); apply the environment; apply
 * the flags. Errors: any of the above.
 */
ig_status ig_config_resolve(ig_config *cfg, int argc, char **argv, const char *const *envp,
                            int *first_nonoption, ig_error *err);
ig_status ig_config_resolve_ex(ig_config *cfg, int argc, char **argv, const char *const *envp,
                               const ig_config_option *extra, size_t n_extra,
                               ig_config_option_fn fn, void *user, int *first_nonoption,
                               ig_error *err);

/*
 * Set one setting from text as a flag value would give it ("9000", "a,b" for
 * a list), recording `src` and `origin` (what the dump shows: "--port",
 * "IGNIS_PORT", "ignis.toml:3"; may be NULL). Errors: IG_ENOTFOUND (no such
 * setting), the value errors, prefixed by `origin`.
 */
ig_status ig_config_set(ig_config *cfg, const char *name, const char *text, ig_config_src src,
                        const char *origin, ig_error *err);

/*
 * Typed getters by name ("server.port"). Asking for a name that is not in
 * the table, or with the wrong type, is a bug in the caller and aborts.
 * ENUM settings read as their word through get_string, or as the word's index
 * in `choices` through get_enum. PATH settings read through get_string.
 */
int64_t ig_config_get_int(const ig_config *cfg, const char *name);
double ig_config_get_float(const ig_config *cfg, const char *name);
bool ig_config_get_bool(const ig_config *cfg, const char *name);
const char *ig_config_get_string(const ig_config *cfg, const char *name);
int ig_config_get_enum(const ig_config *cfg, const char *name);
/* The list's strings [*n]; borrowed. */
const char *const *ig_config_get_list(const ig_config *cfg, const char *name, size_t *n);

/* Where the value of `name` came from, and the detail ("ignis.toml:3",
 * "IGNIS_PORT", "--port"; "" for defaults). */
ig_config_src ig_config_source(const ig_config *cfg, const char *name);
const char *ig_config_origin(const ig_config *cfg, const char *name);
/* The config file that was loaded, or NULL. */
const char *ig_config_file(const ig_config *cfg);

/* Warnings collected so far (unknown IGNIS_* variables): [0, n). */
size_t ig_config_n_warnings(const ig_config *cfg);
const char *ig_config_warning(const ig_config *cfg, size_t i);

/*
 * Text renderings, each a new NUL-terminated string the caller frees (NULL
 * only when memory runs out):
 *  - dump: the effective configuration as TOML (it reads back as a config
 *    file), each line ending with a comment saying its source;
 *  - markdown: docs/CONFIG.md, every setting with its flag, variable, type,
 *    default and help;
 *  - help: the options part of a command's --help, from the table.
 */
char *ig_config_dump(const ig_config *cfg);
char *ig_config_markdown(void);
char *ig_config_help(void);

#endif
