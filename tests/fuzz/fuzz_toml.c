/*
 * fuzz_toml.c: libFuzzer driver for the TOML reader and the config file
 * loader.
 *
 * Any input must either fail with IG_EFORMAT and a message "fuzz.toml:L:C:
 * reason", or parse into a tree that can be walked completely, where every
 * string and key is valid UTF-8 of the length it claims and every position
 * is 1-based. The same bytes are then applied as a config file, which must
 * succeed or fail with a message, never crash or leak.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/settings.h"
#include "config/toml.h"

static void check_utf8(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        size_t k = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
        if (!k || i + k > n) abort();
        for (size_t j = 1; j < k; j++)
            if ((p[i + j] & 0xC0) != 0x80) abort();
        i += k;
    }
    if (s[n] != '\0') abort();
}

static void walk(const ig_toml_value *v, int depth) {
    if (depth > 1000 || v->line < 1 || v->col < 1) abort();
    switch (v->type) {
    case IG_TOML_TYPE_STRING: check_utf8(v->u.str.ptr, v->u.str.len); break;
    case IG_TOML_TYPE_ARRAY:
        for (size_t i = 0; i < v->u.array.n; i++) walk(v->u.array.items[i], depth + 1);
        break;
    case IG_TOML_TYPE_TABLE:
        for (size_t i = 0; i < v->u.table.n; i++) {
            const ig_toml_entry *e = &v->u.table.items[i];
            check_utf8(e->key, e->key_len);
            if (e->key_len == strlen(e->key) && ig_toml_get(v, e->key) != e->value) abort();
            walk(e->value, depth + 1);
        }
        break;
    case IG_TOML_TYPE_INTEGER:
    case IG_TOML_TYPE_FLOAT:
    case IG_TOML_TYPE_BOOL: break;
    default: abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ig_toml_value *root = NULL;
    ig_error err = {0};
    ig_status st = ig_toml_parse((const char *)data, size, "fuzz.toml", &root, &err);
    if (st == IG_OK) {
        if (!root || root->type != IG_TOML_TYPE_TABLE) abort();
        walk(root, 0);
        ig_toml_free(root);
    } else {
        if (root || (st != IG_EFORMAT && st != IG_ENOMEM)) abort();
        if (strncmp(err.message, "fuzz.toml:", 10)) abort();
    }
    ig_config *cfg = ig_config_new_defaults();
    if (!cfg) return 0;
    ig_error err2 = {0};
    st = ig_config_load_string(cfg, (const char *)data, size, "fuzz.toml", "/base", &err2);
    if (st != IG_OK && err2.message[0] == '\0') abort();
    char *dump = ig_config_dump(cfg);
    free(dump);
    ig_config_free(cfg);
    return 0;
}
