/*
 * config_internal.h: what the files of src/config share (the value store and
 * the one function that checks and sets a value). Not for other modules.
 */
#ifndef IG_CONFIG_INTERNAL_H
#define IG_CONFIG_INTERNAL_H

#include "base/error.h"
#include "config/settings.h"

/* One setting's value; which field is used follows the setting's type. */
typedef struct ig__config_value {
    int64_t i;     /* INT */
    double f;      /* FLOAT */
    bool b;        /* BOOL */
    int e;         /* ENUM: index into choices */
    char *s;       /* STRING, PATH, ENUM (the word): owned, never NULL once set */
    char **list;   /* LIST: [n_list] owned strings */
    size_t n_list; /* LIST: items */
    ig_config_src src;
    char *origin; /* owned: "ignis.toml:3", "IGNIS_PORT", "--port"; "" for defaults */
} ig__config_value;

struct ig_config {
    ig__config_value *vals; /* [ig_settings_count()], in table order */
    char *file;             /* the config file loaded, or NULL */
    char **warnings;        /* [n_warnings] owned messages */
    size_t n_warnings;
};

/* Index of the setting "section.key" in the table, or -1. */
int ig__setting_index(const char *name);

/*
 * Check `text` against setting `idx` and, if good, make it the value with its
 * source and origin. Lists are comma-separated (items trimmed, empty ones
 * dropped). `prefix` starts any error message ("IGNIS_PORT",
 * "ignis.toml:3: [server] port"); `base_dir` (may be NULL) anchors a relative
 * PATH. On error the old value stays.
 */
ig_status ig__config_set_text(ig_config *cfg, size_t idx, const char *text, ig_config_src src,
                              const char *origin, const char *prefix, const char *base_dir,
                              ig_error *err);

/* The same for a LIST setting from separate items (taken as they are). */
ig_status ig__config_set_list(ig_config *cfg, size_t idx, const char *const *items, size_t n,
                              ig_config_src src, const char *origin, ig_error *err);

/* Add a warning (printf-style); IG_ENOMEM if it cannot be stored. */
ig_status ig__config_warn(ig_config *cfg, const char *fmt, ...) IG_PRINTF(2, 3);

/* The known setting name closest to `word` among `candidates` [n] (at most
 * 2 edits, and at most half the word's length), or NULL. */
const char *ig__config_suggest(const char *word, const char *const *candidates, size_t n);

/* malloc'd copy; NULL when memory runs out. */
char *ig__config_strdup(const char *s);

#endif
