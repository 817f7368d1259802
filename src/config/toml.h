/*
 * toml.h: a TOML reader for configuration files.
 *
 * Model of use
 * ------------
 * ig_toml_parse() reads a whole document from memory into a tree of
 * ig_toml_value nodes and hands back the root table; ig_toml_free() releases
 * the whole tree. The tree is plain data: read the fields below directly (or
 * through the small helpers), never modify it. Nothing here keeps a pointer
 * to the input text. No global state: any thread may parse, and a tree may be
 * read by several threads at once.
 *
 * What is accepted (TOML 1.0, the subset configuration files need)
 * ----------------------------------------------------------------
 * - Comments (`# ...`), blank lines, LF or CRLF line ends; the text must be
 *   UTF-8 (checked).
 * - Tables `[a]`, `[a.b]`, `["quoted key".c]`; key/value pairs `k = v` with
 *   bare keys (A-Z a-z 0-9 _ -), quoted keys ("..." and '...') and dotted
 *   keys (`a.b = 1`, which creates table `a`).
 * - Strings: basic "..." with escapes \b \t \n \f \r \" \\ \uXXXX \UXXXXXXXX
 *   (Unicode scalar values only), literal '...', multi-line basic """...""" (a
 *   newline right after the opening quotes is dropped; a backslash at the end
 *   of a line joins it to the next non-blank text) and multi-line literal
 *   '''...'''. Strings may hold U+0000 (\u0000): use `len`.
 * - Integers: decimal with optional sign, 0x / 0o / 0b, `_` between digits,
 *   no leading zeros; 64-bit signed (larger is an error).
 * - Floats: fraction and/or exponent (`1.5`, `-2e-3`, `6.626e-34`), `_`
 *   between digits, `inf`, `nan` with optional sign.
 * - Booleans `true` / `false`.
 * - Arrays `[1, "two", [3]]`: any types mixed, spread over lines, comments
 *   inside, a trailing comma.
 * - Inline tables `{ a = 1, b.c = "x" }` (on one line, no trailing comma,
 *   closed: nothing may add keys to them later).
 *
 * Not accepted (each is an error saying so): arrays of tables `[[a]]`, dates
 * and times.
 *
 * Errors
 * ------
 * A duplicate key, a table header given twice, a key/value or header that
 * reopens a table defined another way, and every syntax error fail the whole
 * parse with IG_EFORMAT (IG_ENOMEM when memory runs out) and a message
 * "NAME:LINE:COL: reason" (1-based line and column; the column counts
 * characters, not bytes). The first error is the one reported.
 */
#ifndef IG_CONFIG_TOML_H
#define IG_CONFIG_TOML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ignis.h"

typedef enum ig_toml_type {
    IG_TOML_TYPE_STRING = 1,
    IG_TOML_TYPE_INTEGER,
    IG_TOML_TYPE_FLOAT,
    IG_TOML_TYPE_BOOL,
    IG_TOML_TYPE_ARRAY,
    IG_TOML_TYPE_TABLE,
} ig_toml_type;

typedef struct ig_toml_value ig_toml_value;

/* One key of a table, in the order the document gave them. */
typedef struct ig_toml_entry {
    char *key;            /* NUL-terminated (a key holding U+0000 ends early: use key_len) */
    size_t key_len;       /* bytes */
    int line, col;        /* where the key (its last part, for dotted keys) was written */
    ig_toml_value *value; /* owned by the tree */
} ig_toml_entry;

struct ig_toml_value {
    ig_toml_type type;
    int line, col; /* where the value starts (a table: its header or first key) */
    union {
        struct {
            char *ptr;  /* NUL-terminated UTF-8 */
            size_t len; /* bytes, without the terminating NUL */
        } str;
        int64_t integer;
        double real;
        bool boolean;
        struct {
            ig_toml_value **items; /* [n] */
            size_t n, cap;
        } array;
        struct {
            ig_toml_entry *items; /* [n] in document order */
            size_t n, cap;
            uint32_t *index;  /* private: hash index over items (NULL while small) */
            size_t index_cap; /* private: slots in index (a power of two) */
            unsigned kind;    /* private: how the table was defined */
        } table;
    } u;
};

/*
 * Parse `len` bytes of `text` (need not be NUL-terminated; NUL bytes are an
 * error). `name` is used in error messages ("ignis.toml"; NULL: "<input>").
 * On success *out_root is a new table owned by the caller (ig_toml_free). On
 * failure *out_root is untouched and err says where and why.
 */
ig_status ig_toml_parse(const char *text, size_t len, const char *name, ig_toml_value **out_root,
                        ig_error *err);

/* Release a tree from ig_toml_parse (NULL is fine). */
void ig_toml_free(ig_toml_value *root);

/* The value of `key` (one part, no dots) in `table`, or NULL when absent or
 * when `table` is not a table. Borrowed from the tree. */
const ig_toml_value *ig_toml_get(const ig_toml_value *table, const char *key);

/* "string", "integer", "float", "boolean", "array", "table". */
const char *ig_toml_type_name(ig_toml_type type);

#endif
