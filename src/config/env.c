/*
 * env.c: applying IGNIS_* environment variables to an ig_config.
 *
 * Each setting names its variable in the table. The value is checked as a
 * flag's would be (lists comma-separated). An IGNIS_* variable that is neither
 * a setting nor one of the known others (ig_config_other_env) is a warning,
 * not an error: scripts and other tools share the prefix, and a variable left
 * over from another version must not stop a server from starting.
 */
#include "config/config_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The setting whose variable is name[0..n), or -1. */
static int by_env(const char *name, size_t n) {
    const ig_setting *all = ig_settings();
    for (size_t i = 0; i < ig_settings_count(); i++)
        if (all[i].env && strlen(all[i].env) == n && !memcmp(all[i].env, name, n)) return (int)i;
    return -1;
}

static bool is_other(const char *name, size_t n) {
    const char *const *o = ig_config_other_env();
    for (size_t i = 0; o[i]; i += 2)
        if (strlen(o[i]) == n && !memcmp(o[i], name, n)) return true;
    return false;
}

ig_status ig_config_apply_env(ig_config *cfg, const char *const *envp, ig_error *err) {
    IG_ASSERT(cfg);
    const ig_setting *all = ig_settings();
    size_t n_settings = ig_settings_count();
    if (!envp) {
        for (size_t i = 0; i < n_settings; i++) {
            const char *v = all[i].env ? getenv(all[i].env) : NULL;
            if (!v) continue;
            ig_status st = ig__config_set_text(cfg, i, v, IG_CONFIG_SRC_ENV, all[i].env, all[i].env,
                                               NULL, err);
            if (st != IG_OK) return st;
        }
        return IG_OK;
    }
    /* As getenv does, the first of repeated entries counts. */
    bool *seen = calloc(n_settings, sizeof *seen);
    if (!seen) return ig_errorf(err, IG_ENOMEM, "out of memory");
    ig_status st = IG_OK;
    for (size_t k = 0; envp[k] && st == IG_OK; k++) {
        const char *e = envp[k];
        if (strncmp(e, "IGNIS_", 6)) continue;
        const char *eq = strchr(e, '=');
        if (!eq) continue;
        size_t n = (size_t)(eq - e);
        int idx = by_env(e, n);
        if (idx >= 0) {
            if (seen[idx]) continue;
            seen[idx] = true;
            st = ig__config_set_text(cfg, (size_t)idx, eq + 1, IG_CONFIG_SRC_ENV, all[idx].env,
                                     all[idx].env, NULL, err);
            continue;
        }
        if (is_other(e, n)) continue;
        const char *names[128];
        size_t m = 0;
        for (size_t i = 0; i < n_settings && m < 128; i++)
            if (all[i].env) names[m++] = all[i].env;
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(n < 100 ? n : 100), e);
        const char *near = ig__config_suggest(name, names, m);
        ig_status w;
        if (near)
            w = ig__config_warn(cfg, "%s is not an Ignis setting (did you mean %s?); ignored", name,
                                near);
        else
            w = ig__config_warn(cfg, "%s is not an Ignis setting; ignored", name);
        if (w != IG_OK) st = ig_errorf(err, w, "out of memory");
    }
    free(seen);
    return st;
}
