/*
 * file.c: applying a TOML configuration file to an ig_config.
 *
 * The file's top level holds only sections ([server], [model], ...), each
 * holding only known keys; anything else is an error that names it and, when
 * a known name is close, suggests it. Each value must have its setting's TOML
 * type (an integer for an integer, a string for a path or an enum word, an
 * array of strings for a list; a float setting also takes an integer); it is
 * then checked exactly as a flag's value would be, so the range and choice
 * messages are the same whatever the source.
 */
#include "config/config_internal.h"
#include "config/toml.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Copy a key for a message, printable bytes only. */
static void safe_key(const ig_toml_entry *e, char out[96]) {
    size_t o = 0;
    for (size_t i = 0; i < e->key_len && o + 4 < 96; i++) {
        unsigned char c = (unsigned char)e->key[i];
        out[o++] = (c >= 0x20 && c != 0x7f) ? (char)c : '?';
    }
    if (e->key_len > 0 && o + 4 >= 96) {
        memcpy(out + o - 3, "...", 3);
    }
    out[o] = '\0';
}

/* "integer" → "an integer", for messages. */
static const char *a_type(ig_toml_type t) {
    switch (t) {
    case IG_TOML_TYPE_STRING:
        return "a string";
    case IG_TOML_TYPE_INTEGER:
        return "an integer";
    case IG_TOML_TYPE_FLOAT:
        return "a float";
    case IG_TOML_TYPE_BOOL:
        return "a boolean";
    case IG_TOML_TYPE_ARRAY:
        return "an array";
    case IG_TOML_TYPE_TABLE:
        return "a table";
    }
    return "a value";
}

static const char *expected(ig_setting_type t) {
    switch (t) {
    case IG_SETTING_TYPE_STRING:
        return "a string";
    case IG_SETTING_TYPE_PATH:
        return "a string (a path)";
    case IG_SETTING_TYPE_INT:
        return "an integer";
    case IG_SETTING_TYPE_FLOAT:
        return "a number";
    case IG_SETTING_TYPE_BOOL:
        return "true or false";
    case IG_SETTING_TYPE_ENUM:
        return "a string";
    case IG_SETTING_TYPE_LIST:
        return "an array of strings";
    }
    return "a value";
}

/* Apply one value `v` to setting idx. */
static ig_status apply_value(ig_config *cfg, size_t idx, const ig_toml_value *v, const char *name,
                             const char *dir, ig_error *err) {
    const ig_setting *s = &ig_settings()[idx];
    char prefix[256], origin[200], text[64];
    snprintf(origin, sizeof origin, "%s:%d", name, v->line);
    snprintf(prefix, sizeof prefix, "%s: [%s] %s", origin, s->section, s->key);
    const char *t = NULL;
    switch (s->type) {
    case IG_SETTING_TYPE_INT:
        if (v->type != IG_TOML_TYPE_INTEGER) break;
        snprintf(text, sizeof text, "%" PRId64, v->u.integer);
        t = text;
        break;
    case IG_SETTING_TYPE_FLOAT:
        if (v->type == IG_TOML_TYPE_INTEGER) {
            snprintf(text, sizeof text, "%" PRId64, v->u.integer);
        } else if (v->type == IG_TOML_TYPE_FLOAT) {
            if (!isfinite(v->u.real))
                return ig_errorf(err, IG_ERANGE, "%s: %g is not a finite number", prefix,
                                 v->u.real);
            snprintf(text, sizeof text, "%.17g", v->u.real);
        } else {
            break;
        }
        t = text;
        break;
    case IG_SETTING_TYPE_BOOL:
        if (v->type == IG_TOML_TYPE_BOOL) t = v->u.boolean ? "true" : "false";
        break;
    case IG_SETTING_TYPE_STRING:
    case IG_SETTING_TYPE_PATH:
    case IG_SETTING_TYPE_ENUM:
        if (v->type != IG_TOML_TYPE_STRING) break;
        if (strlen(v->u.str.ptr) != v->u.str.len)
            return ig_errorf(err, IG_EINVAL, "%s: the string holds a NUL character", prefix);
        t = v->u.str.ptr;
        break;
    case IG_SETTING_TYPE_LIST: {
        if (v->type != IG_TOML_TYPE_ARRAY) break;
        size_t n = v->u.array.n;
        const char **items = calloc(n ? n : 1, sizeof *items);
        if (!items) return ig_errorf(err, IG_ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
            const ig_toml_value *it = v->u.array.items[i];
            if (it->type != IG_TOML_TYPE_STRING || strlen(it->u.str.ptr) != it->u.str.len) {
                free(items);
                return ig_errorf(
                    err, IG_ETYPE, "%s: item %zu is %s, expected a string", prefix, i + 1,
                    it->type == IG_TOML_TYPE_STRING ? "a string holding NUL" : a_type(it->type));
            }
            items[i] = it->u.str.ptr;
        }
        ig_status st = ig__config_set_list(cfg, idx, items, n, IG_CONFIG_SRC_FILE, origin, err);
        free(items);
        return st;
    }
    }
    if (!t)
        return ig_errorf(err, IG_ETYPE, "%s: expected %s, got %s", prefix, expected(s->type),
                         a_type(v->type));
    return ig__config_set_text(cfg, idx, t, IG_CONFIG_SRC_FILE, origin, prefix, dir, err);
}

/* The distinct section names of the table, in order. */
static size_t sections(const char *out[], size_t cap) {
    size_t n = 0;
    for (size_t i = 0; i < ig_settings_count(); i++) {
        const char *sec = ig_settings()[i].section;
        if (n == 0 || strcmp(out[n - 1], sec)) {
            if (n < cap) out[n++] = sec;
        }
    }
    return n;
}

static ig_status apply_section(ig_config *cfg, const char *sec, const ig_toml_value *t,
                               const char *name, const char *dir, ig_error *err) {
    const ig_setting *all = ig_settings();
    const char *keys[64];
    size_t n_keys = 0;
    for (size_t i = 0; i < ig_settings_count() && n_keys < 64; i++)
        if (!strcmp(all[i].section, sec)) keys[n_keys++] = all[i].key;
    for (size_t i = 0; i < t->u.table.n; i++) {
        const ig_toml_entry *e = &t->u.table.items[i];
        char key[96], full[200];
        safe_key(e, key);
        snprintf(full, sizeof full, "%s.%s", sec, key);
        int idx = e->key_len == strlen(e->key) ? ig__setting_index(full) : -1;
        if (idx < 0) {
            const char *near = ig__config_suggest(key, keys, n_keys);
            const char *elsewhere = NULL;
            for (size_t j = 0; j < ig_settings_count() && !near; j++)
                if (!strcmp(all[j].key, key)) elsewhere = all[j].section;
            if (near)
                return ig_errorf(err, IG_ENOTFOUND, "%s:%d: unknown key [%s] %s (did you mean %s?)",
                                 name, e->line, sec, key, near);
            if (elsewhere)
                return ig_errorf(err, IG_ENOTFOUND,
                                 "%s:%d: unknown key [%s] %s (it belongs in [%s])", name, e->line,
                                 sec, key, elsewhere);
            return ig_errorf(err, IG_ENOTFOUND, "%s:%d: unknown key [%s] %s", name, e->line, sec,
                             key);
        }
        ig_status st = apply_value(cfg, (size_t)idx, e->value, name, dir, err);
        if (st != IG_OK) return st;
    }
    return IG_OK;
}

ig_status ig_config_load_string(ig_config *cfg, const char *text, size_t len, const char *name,
                                const char *dir, ig_error *err) {
    IG_ASSERT(cfg);
    if (!name) name = "<config>";
    ig_toml_value *root = NULL;
    ig_status st = ig_toml_parse(text, len, name, &root, err);
    if (st != IG_OK) return st;
    const char *secs[32];
    size_t n_secs = sections(secs, 32);
    for (size_t i = 0; i < root->u.table.n && st == IG_OK; i++) {
        const ig_toml_entry *e = &root->u.table.items[i];
        char key[96];
        safe_key(e, key);
        bool known = false;
        for (size_t j = 0; j < n_secs; j++) known |= !strcmp(secs[j], key);
        if (known && e->key_len == strlen(e->key) && e->value->type == IG_TOML_TYPE_TABLE) {
            st = apply_section(cfg, key, e->value, name, dir, err);
            continue;
        }
        if (e->value->type == IG_TOML_TYPE_TABLE) {
            const char *near = ig__config_suggest(key, secs, n_secs);
            if (near)
                st =
                    ig_errorf(err, IG_ENOTFOUND, "%s:%d: unknown section [%s] (did you mean [%s]?)",
                              name, e->value->line, key, near);
            else
                st = ig_errorf(err, IG_ENOTFOUND, "%s:%d: unknown section [%s]", name,
                               e->value->line, key);
            continue;
        }
        if (known) {
            st = ig_errorf(err, IG_ETYPE, "%s:%d: %s must be a section ([%s]), not %s", name,
                           e->line, key, key, a_type(e->value->type));
            continue;
        }
        const char *sec = NULL;
        for (size_t j = 0; j < ig_settings_count() && !sec; j++)
            if (!strcmp(ig_settings()[j].key, key)) sec = ig_settings()[j].section;
        if (sec)
            st = ig_errorf(err, IG_ENOTFOUND,
                           "%s:%d: unknown key %s outside any section (did you mean [%s] %s?)",
                           name, e->line, key, sec, key);
        else
            st = ig_errorf(err, IG_ENOTFOUND, "%s:%d: unknown key %s outside any section", name,
                           e->line, key);
    }
    ig_toml_free(root);
    return st;
}

ig_status ig_config_load_file(ig_config *cfg, const char *path, ig_error *err) {
    IG_ASSERT(cfg && path);
    ig_status st = IG_OK;
    char *text = NULL, *dir = NULL;
    size_t len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        st = ig_errorf(err, IG_EIO, "cannot open config file '%s': %s", path, strerror(errno));
        goto cleanup;
    }
    size_t cap = 4096;
    text = malloc(cap);
    if (!text) {
        st = ig_errorf(err, IG_ENOMEM, "out of memory");
        goto cleanup;
    }
    for (;;) {
        if (len == cap) {
            if (cap >= (size_t)64 << 20) {
                st = ig_errorf(err, IG_EINVAL, "config file '%s' is larger than 64 MiB", path);
                goto cleanup;
            }
            char *t = realloc(text, cap * 2);
            if (!t) {
                st = ig_errorf(err, IG_ENOMEM, "out of memory");
                goto cleanup;
            }
            text = t;
            cap *= 2;
        }
        size_t got = fread(text + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        st = ig_errorf(err, IG_EIO, "cannot read config file '%s': %s", path, strerror(errno));
        goto cleanup;
    }
    /* Relative paths inside the file are relative to the file's directory. */
    const char *slash = strrchr(path, '/');
    dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : NULL;
    if (slash && !dir) {
        st = ig_errorf(err, IG_ENOMEM, "out of memory");
        goto cleanup;
    }
    st = ig_config_load_string(cfg, text, len, path, dir, err);
    if (st != IG_OK) goto cleanup;
    free(cfg->file);
    cfg->file = ig__config_strdup(path);
    if (!cfg->file) st = ig_errorf(err, IG_ENOMEM, "out of memory");
cleanup:
    free(dir);
    free(text);
    if (f) fclose(f);
    return st;
}
