/*
 * test_toml.c: the TOML reader. Valid documents covering every value form
 * (expected values written by hand from the TOML 1.0 specification), and
 * invalid ones, each of which must fail with IG_EFORMAT and a message giving
 * the right line:column and reason.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/toml.h"

static ig_toml_value *parse_ok(const char *text) {
    ig_toml_value *root = NULL;
    ig_error err = {0};
    ig_status st = ig_toml_parse(text, strlen(text), "t.toml", &root, &err);
    cr_assert_eq(st, IG_OK, "parse failed: %s\n--- input:\n%s", err.message, text);
    cr_assert_not_null(root);
    cr_assert_eq(root->type, IG_TOML_TYPE_TABLE);
    return root;
}

/* Parse must fail; the message must start with "t.toml:LINE:COL: " and hold
 * `reason`. */
static void parse_bad_n(const char *text, size_t len, int line, int col, const char *reason) {
    ig_toml_value *root = NULL;
    ig_error err = {0};
    ig_status st = ig_toml_parse(text, len, "t.toml", &root, &err);
    cr_assert_eq(st, IG_EFORMAT, "expected a format error for:\n%s\n(got %s: %s)", text,
                 ig_errname(st), err.message);
    cr_assert_null(root);
    char where[64];
    snprintf(where, sizeof where, "t.toml:%d:%d: ", line, col);
    cr_assert(!strncmp(err.message, where, strlen(where)), "message '%s' should start with '%s'",
              err.message, where);
    cr_assert(strstr(err.message, reason), "message '%s' should contain '%s'", err.message, reason);
}

static void parse_bad(const char *text, int line, int col, const char *reason) {
    parse_bad_n(text, strlen(text), line, col, reason);
}

/* Follow a dotted path of plain keys ("a.b.c") from the root. */
static const ig_toml_value *at(const ig_toml_value *root, const char *path) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const ig_toml_value *v = root;
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save)) {
        v = ig_toml_get(v, k);
        cr_assert_not_null(v, "no key '%s' (in path %s)", k, path);
    }
    return v;
}

static void is_str(const ig_toml_value *root, const char *path, const char *want) {
    const ig_toml_value *v = at(root, path);
    cr_assert_eq(v->type, IG_TOML_TYPE_STRING, "%s is a %s", path, ig_toml_type_name(v->type));
    cr_assert_eq(v->u.str.len, strlen(want), "%s: length %zu, want %zu ('%s' vs '%s')", path,
                 v->u.str.len, strlen(want), v->u.str.ptr, want);
    cr_assert_str_eq(v->u.str.ptr, want, "%s", path);
}

static void is_int(const ig_toml_value *root, const char *path, int64_t want) {
    const ig_toml_value *v = at(root, path);
    cr_assert_eq(v->type, IG_TOML_TYPE_INTEGER, "%s is a %s", path, ig_toml_type_name(v->type));
    cr_assert_eq(v->u.integer, want, "%s = %lld, want %lld", path, (long long)v->u.integer,
                 (long long)want);
}

static void is_float(const ig_toml_value *root, const char *path, double want) {
    const ig_toml_value *v = at(root, path);
    cr_assert_eq(v->type, IG_TOML_TYPE_FLOAT, "%s is a %s", path, ig_toml_type_name(v->type));
    cr_assert(v->u.real == want, "%s = %.17g, want %.17g", path, v->u.real, want);
}

Test(toml, strings) {
    ig_toml_value *r = parse_ok(
        "basic = \"I'm a string. \\\"You can quote me\\\". Tab\\tNew\\nline\"\n"
        "escapes = \"\\b\\f\\r\\\\\"\n"
        "unicode = \"caf\\u00E9 \\U0001F600 \\u20ac\"\n"
        "raw_utf8 = \"ünïcödé 日本\"\n"
        "tab = \"a\tb\"\n"
        "literal = 'C:\\Users\\nodejs\\templates'\n"
        "literal_quote = 'Tom \"Dubs\" Preston'\n"
        "empty = \"\"\n"
        "empty_lit = ''\n"
        "ml = \"\"\"\nRoses are red\nViolets are blue\"\"\"\n"
        "ml_join = \"\"\"\\\n  The quick \\\n\n    brown fox.\\\n  \"\"\"\n"
        "ml_quotes = \"\"\"Here are two quotes: \"\". Five: \"\"\"\"\"\n"
        "ml_lit = '''\nThe first newline is\ntrimmed in raw strings.\n   All other whitespace\n   "
        "is preserved. \\n'''\n"
        "ml_lit_quotes = ''''That,' she said, 'is still pointless.''''\n"
        "crlf = \"\"\"a\r\nb\"\"\"\n"
        "nul = \"a\\u0000b\"\n");
    is_str(r, "basic", "I'm a string. \"You can quote me\". Tab\tNew\nline");
    is_str(r, "escapes", "\b\f\r\\");
    is_str(r, "unicode", "caf\xC3\xA9 \xF0\x9F\x98\x80 \xE2\x82\xAC");
    is_str(r, "raw_utf8", "ünïcödé 日本");
    is_str(r, "tab", "a\tb");
    is_str(r, "literal", "C:\\Users\\nodejs\\templates");
    is_str(r, "literal_quote", "Tom \"Dubs\" Preston");
    is_str(r, "empty", "");
    is_str(r, "empty_lit", "");
    is_str(r, "ml", "Roses are red\nViolets are blue");
    is_str(r, "ml_join", "The quick brown fox.");
    is_str(r, "ml_quotes", "Here are two quotes: \"\". Five: \"\"");
    is_str(r, "ml_lit",
           "The first newline is\ntrimmed in raw strings.\n   All other whitespace\n   is "
           "preserved. \\n");
    is_str(r, "ml_lit_quotes", "'That,' she said, 'is still pointless.'");
    is_str(r, "crlf", "a\nb");
    const ig_toml_value *nul = at(r, "nul");
    cr_assert_eq(nul->u.str.len, 3);
    cr_assert(!memcmp(nul->u.str.ptr, "a\0b", 3));
    ig_toml_free(r);
}

Test(toml, integers) {
    ig_toml_value *r = parse_ok("a = +99\nb = 42\nc = 0\nd = -17\ne = 1_000\nf = 5_349_221\n"
                                "g = 0xDEADBEEF\nh = 0xdead_beef\ni = 0o01234567\nj = 0o755\n"
                                "k = 0b11010110\nl = 9223372036854775807\n"
                                "m = -9223372036854775808\nn = -0\no = 0x7FFFFFFFFFFFFFFF\n");
    is_int(r, "a", 99);
    is_int(r, "b", 42);
    is_int(r, "c", 0);
    is_int(r, "d", -17);
    is_int(r, "e", 1000);
    is_int(r, "f", 5349221);
    is_int(r, "g", 0xDEADBEEF);
    is_int(r, "h", 0xDEADBEEF);
    is_int(r, "i", 01234567);
    is_int(r, "j", 0755);
    is_int(r, "k", 214);
    is_int(r, "l", INT64_MAX);
    is_int(r, "m", INT64_MIN);
    is_int(r, "n", 0);
    is_int(r, "o", INT64_MAX);
    ig_toml_free(r);
}

Test(toml, floats) {
    ig_toml_value *r = parse_ok("a = +1.0\nb = 3.1415\nc = -0.01\nd = 5e+22\ne = 1e06\n"
                                "f = -2E-2\ng = 6.626e-34\nh = 224_617.445_991_228\n"
                                "i = inf\nj = +inf\nk = -inf\nl = nan\nm = -nan\nn = 0.0\n"
                                "o = 1e-400\n");
    is_float(r, "a", 1.0);
    is_float(r, "b", 3.1415);
    is_float(r, "c", -0.01);
    is_float(r, "d", 5e22);
    is_float(r, "e", 1e6);
    is_float(r, "f", -2e-2);
    is_float(r, "g", 6.626e-34);
    is_float(r, "h", 224617.445991228);
    is_float(r, "i", INFINITY);
    is_float(r, "j", INFINITY);
    is_float(r, "k", -INFINITY);
    cr_assert(isnan(at(r, "l")->u.real));
    cr_assert(isnan(at(r, "m")->u.real));
    is_float(r, "n", 0.0);
    is_float(r, "o", 0.0); /* underflow rounds to zero */
    ig_toml_free(r);
}

Test(toml, booleans_arrays_inline_tables) {
    ig_toml_value *r = parse_ok("t = true\nf = false\n"
                                "empty = []\n"
                                "nums = [ 1, 2, 3 ]\n"
                                "mixed = [ \"a\", 'b', 1.5, [1, [2]], {x = 1} ]\n"
                                "multi = [\n  \"one\", # first\n\n  # a comment line\n"
                                "  \"two\",\n]\n"
                                "point = { x = 1, y = 2 }\n"
                                "nested = { a.b = \"deep\", c = { d = true } }\n"
                                "blank = {}\n");
    const ig_toml_value *v = at(r, "t");
    cr_assert(v->type == IG_TOML_TYPE_BOOL && v->u.boolean);
    v = at(r, "f");
    cr_assert(v->type == IG_TOML_TYPE_BOOL && !v->u.boolean);
    cr_assert_eq(at(r, "empty")->type, IG_TOML_TYPE_ARRAY);
    cr_assert_eq(at(r, "empty")->u.array.n, 0);
    v = at(r, "nums");
    cr_assert_eq(v->u.array.n, 3);
    cr_assert_eq(v->u.array.items[2]->u.integer, 3);
    v = at(r, "mixed");
    cr_assert_eq(v->u.array.n, 5);
    cr_assert_str_eq(v->u.array.items[1]->u.str.ptr, "b");
    cr_assert_eq(v->u.array.items[2]->u.real, 1.5);
    cr_assert_eq(v->u.array.items[3]->u.array.items[1]->u.array.items[0]->u.integer, 2);
    cr_assert_eq(ig_toml_get(v->u.array.items[4], "x")->u.integer, 1);
    v = at(r, "multi");
    cr_assert_eq(v->u.array.n, 2);
    cr_assert_str_eq(v->u.array.items[1]->u.str.ptr, "two");
    is_int(r, "point.y", 2);
    is_str(r, "nested.a.b", "deep");
    cr_assert(at(r, "nested.c.d")->u.boolean);
    cr_assert_eq(at(r, "blank")->type, IG_TOML_TYPE_TABLE);
    cr_assert_eq(at(r, "blank")->u.table.n, 0);
    ig_toml_free(r);
}

Test(toml, tables_keys_comments_positions) {
    ig_toml_value *r = parse_ok("# a comment\n"
                                "title = \"x\" # trailing comment\n"
                                "\n"
                                "[server]\n"
                                "port = 8080\n"
                                "  [server.tls]  # indented header\n"
                                "  cert = 'c.pem'\n"
                                "[ dotted . \"quoted key\" ]\n"
                                "k = 1\n"
                                "[a.b.c]\n"
                                "[a]\n"
                                "x.y = 2\n"
                                "x.z = 3\n"
                                "\"\" = 'empty key'\n"
                                "1234 = 'bare digits'\n"
                                "bare-key_2 = 5\n"
                                "[crlf]\r\nk = 1\r\n");
    is_str(r, "title", "x");
    is_int(r, "server.port", 8080);
    is_str(r, "server.tls.cert", "c.pem");
    const ig_toml_value *d = at(r, "dotted");
    cr_assert_eq(ig_toml_get(ig_toml_get(d, "quoted key"), "k")->u.integer, 1);
    cr_assert_eq(at(r, "a.b.c")->type, IG_TOML_TYPE_TABLE);
    is_int(r, "a.x.y", 2);
    is_int(r, "a.x.z", 3);
    is_str(r, "a.1234", "bare digits");
    is_int(r, "a.bare-key_2", 5);
    cr_assert_str_eq(ig_toml_get(at(r, "a"), "")->u.str.ptr, "empty key");
    is_int(r, "crlf.k", 1);
    /* Keys keep document order; positions are 1-based line:column. */
    cr_assert_str_eq(r->u.table.items[0].key, "title");
    cr_assert_str_eq(r->u.table.items[1].key, "server");
    const ig_toml_value *port = at(r, "server.port");
    cr_assert_eq(port->line, 5);
    cr_assert_eq(port->col, 8);
    const ig_toml_value *cert = at(r, "server.tls.cert");
    cr_assert_eq(cert->line, 7);
    cr_assert_eq(cert->col, 10);
    cr_assert_eq(at(r, "server.tls")->line, 6);
    ig_toml_free(r);
}

Test(toml, many_keys_use_the_index) {
    /* Enough keys to need the hash index; every one must still be found. */
    size_t cap = 64 * 1024, o = 0;
    char *text = malloc(cap);
    cr_assert_not_null(text);
    for (int i = 0; i < 2000; i++) o += (size_t)snprintf(text + o, cap - o, "k%d = %d\n", i, i);
    ig_toml_value *r = NULL;
    ig_error err = {0};
    cr_assert_eq(ig_toml_parse(text, o, "t.toml", &r, &err), IG_OK, "%s", err.message);
    for (int i = 0; i < 2000; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        cr_assert_eq(ig_toml_get(r, k)->u.integer, i);
    }
    cr_assert_null(ig_toml_get(r, "k2000"));
    ig_toml_free(r);
    /* ... and a duplicate among them is still caught. */
    o += (size_t)snprintf(text + o, cap - o, "k1234 = 0\n");
    cr_assert_eq(ig_toml_parse(text, o, "t.toml", &r, &err), IG_EFORMAT);
    cr_assert(
        strstr(err.message, "t.toml:2001:1: duplicate key k1234 (first defined at line 1235)"),
        "%s", err.message);
    free(text);
}

Test(toml, empty_document_and_bom) {
    ig_toml_value *r = parse_ok("");
    cr_assert_eq(r->u.table.n, 0);
    ig_toml_free(r);
    r = parse_ok("\xEF\xBB\xBFk = 1\n");
    is_int(r, "k", 1);
    ig_toml_free(r);
    r = parse_ok("k = 1"); /* no final newline */
    is_int(r, "k", 1);
    ig_toml_free(r);
}

Test(toml, invalid_syntax) {
    parse_bad("a = \n", 1, 5, "expected a value, found end of line");
    parse_bad("a = 1\nb\n", 2, 2, "expected '=' after the key b, found end of line");
    parse_bad("= 1\n", 1, 1, "expected a key, found '='");
    parse_bad("a = 1 b = 2\n", 1, 7, "expected the end of the line, found 'b'");
    parse_bad("[a\nx = 1\n", 1, 3, "expected ']' to close the table header");
    parse_bad("[]\n", 1, 2, "expected a key, found ']'");
    parse_bad("host = localhost\n", 1, 8, "'localhost' is not a value (strings need quotes)");
    parse_bad("a = truex\n", 1, 5, "'truex' is not a value");
    parse_bad("a = 1\rb = 2\n", 1, 6, "expected the end of the line, found U+000D");
    parse_bad("[[servers]]\n", 1, 1, "arrays of tables ([[...]]) are not supported");
    parse_bad("d = 1979-05-27\n", 1, 5, "dates and times are not supported");
    parse_bad("t = 07:32:00\n", 1, 5, "dates and times are not supported");
}

Test(toml, invalid_strings) {
    parse_bad("a = \"abc\n", 1, 5, "unterminated string");
    parse_bad("a = 'abc\n", 1, 5, "unterminated string");
    parse_bad("a = \"\"\"abc\n\n", 1, 5, "unterminated multi-line string");
    parse_bad("a = '''abc", 1, 5, "unterminated multi-line string");
    parse_bad("a = \"\\x41\"\n", 1, 6, "unknown escape '\\' followed by 'x'");
    parse_bad("a = \"\\u12\"\n", 1, 6, "\\u needs 4 hexadecimal digits");
    parse_bad("a = \"\\uD800\"\n", 1, 6, "\\uD800 is not a Unicode scalar value");
    parse_bad("a = \"\\U00110000\"\n", 1, 6, "is not a Unicode scalar value");
    parse_bad("a = \"x\x01y\"\n", 1, 7, "control character U+0001 in a string");
    parse_bad("a = 'x\x7fy'\n", 1, 7, "control character U+007F in a string");
    parse_bad("# ok\n# bad \x02 comment\n", 2, 7, "control character U+0002 in a comment");
    parse_bad("a = \"ab\xff\"\n", 1, 8, "invalid UTF-8 (byte 0xFF)");
    parse_bad("a = \"\xed\xa0\x80\"\n", 1, 6, "invalid UTF-8"); /* an encoded surrogate */
    parse_bad("a = \"\xc0\xaf\"\n", 1, 6, "invalid UTF-8");     /* overlong */
    parse_bad_n("a = \"x\0y\"\n", 10, 1, 7, "control character U+0000 in a string");
    parse_bad("\"\"\"k\"\"\" = 1\n", 1, 1, "a key cannot be a multi-line string");
    /* The column counts characters: 'é' is one. */
    parse_bad("s = \"é\" x\n", 1, 9, "expected the end of the line, found 'x'");
}

Test(toml, invalid_numbers) {
    parse_bad("a = 01\n", 1, 5, "leading zeros are not allowed");
    parse_bad("a = 1__0\n", 1, 5, "an underscore must stand between two digits");
    parse_bad("a = _1\n", 1, 5, "'_1' is not a valid number (an underscore must stand between");
    parse_bad("a = 1_\n", 1, 5, "an underscore must stand between two digits");
    parse_bad("a = 1.\n", 1, 5, "'1.' is not a valid number");
    parse_bad("a = .5\n", 1, 5, "expected a value, found '.'");
    parse_bad("a = 1e\n", 1, 5, "'1e' is not a valid number");
    parse_bad("a = 3.5e", 1, 5, "'3.5e' is not a valid number"); /* at the end of the input */
    parse_bad("a = 3.5e-", 1, 5, "'3.5e-' is not a valid number");
    parse_bad("a = 0x\n", 1, 5, "'0x' is not a valid base-16 integer");
    parse_bad("a = 0xG1\n", 1, 5, "is not a valid base-16 integer");
    parse_bad("a = 0b102\n", 1, 5, "is not a valid base-2 integer");
    parse_bad("a = +0x10\n", 1, 5, "a sign is not allowed on a 0x integer");
    parse_bad("a = 9223372036854775808\n", 1, 5, "does not fit in 64 bits");
    parse_bad("a = -9223372036854775809\n", 1, 5, "does not fit in 64 bits");
    parse_bad("a = 0x8000000000000000\n", 1, 5, "does not fit in 64 bits");
    parse_bad("a = 1e400\n", 1, 5, "float '1e400' is out of range");
    parse_bad("a = 1.2.3\n", 1, 5, "'1.2.3' is not a valid number");
    parse_bad("a = -\n", 1, 5, "'-' is not a valid number");
    parse_bad("a = Inf\n", 1, 5, "'Inf' is not a value");
}

Test(toml, invalid_arrays_and_inline_tables) {
    parse_bad("a = [1 2]\n", 1, 8, "expected ',' or ']' in an array, found '2'");
    parse_bad("a = [,]\n", 1, 6, "expected a value, found ','");
    parse_bad("a = [1,\n2,\n", 1, 5, "unterminated array");
    parse_bad("a = {x = 1,}\n", 1, 12, "a trailing comma is not allowed in an inline table");
    parse_bad("a = {x = 1\n}\n", 1, 11, "unterminated inline table");
    parse_bad("a = {x = 1 y = 2}\n", 1, 12, "expected ',' or '}' in an inline table");
    parse_bad("a = {x = 1, x = 2}\n", 1, 13, "duplicate key x");
    /* Nesting beyond the limit is refused, not a stack overflow. */
    char deep[400];
    size_t o = (size_t)snprintf(deep, sizeof deep, "a = ");
    for (int i = 0; i < 100; i++) deep[o++] = '[';
    deep[o] = '\0';
    parse_bad(deep, 1, 69, "arrays and inline tables nest more than 64 deep");
}

Test(toml, redefinitions) {
    parse_bad("a = 1\na = 2\n", 2, 1, "duplicate key a (first defined at line 1)");
    parse_bad("[s]\nport = 1\n\n[s]\n", 4, 1,
              "table [s] is defined twice (first by its [header], line 1)");
    parse_bad("[s]\nx = 1\n[s.x]\n", 3, 4,
              "s.x is already a value of type integer (line 2), not a table");
    parse_bad("a = 1\na.b = 2\n", 2, 1,
              "a is already a value of type integer (line 1), not a table");
    parse_bad("a.b = 1\n[a]\n", 2, 1, "table [a] is defined twice (first by dotted keys, line 1)");
    parse_bad("[a]\nb.c = 1\n[a.b]\n", 3, 1, "table [a.b] is defined twice (first by dotted keys");
    parse_bad("[a.b]\nz = 1\n[a]\nb.y = 2\n", 4, 1,
              "cannot add keys with a dotted key to table a.b, defined by its [header] (line 1)");
    parse_bad("a = {x = 1}\na.y = 2\n", 2, 1,
              "cannot add keys with a dotted key to table a, defined as an inline table");
    parse_bad("a = {x = 1}\n[a.b]\n", 2, 2, "cannot add to a, an inline table (line 1)");
    parse_bad("a = {x = 1}\n[a]\n", 2, 1, "table [a] is defined twice (first as an inline table");
    parse_bad("a = {b = {c = 1}}\n[a.b.d]\n", 2, 2, "cannot add to a, an inline table");
    parse_bad("x = {a.b = 1}\n[x.a.c]\n", 2, 2, "cannot add to x, an inline table");
    /* Allowed: a header for a table that so far exists only as a parent, and
     * sub-tables below tables made by dotted keys. */
    ig_toml_value *r = parse_ok("[a.b]\nx = 1\n[a]\ny = 2\n[f]\ng.h = 1\n[f.g.i]\nj = 2\n");
    is_int(r, "a.b.x", 1);
    is_int(r, "a.y", 2);
    is_int(r, "f.g.i.j", 2);
    ig_toml_free(r);
}

Test(toml, name_and_null_input) {
    ig_toml_value *r = NULL;
    ig_error err = {0};
    cr_assert_eq(ig_toml_parse("a =", 3, NULL, &r, &err), IG_EFORMAT);
    cr_assert(!strncmp(err.message, "<input>:1:4: ", 13), "%s", err.message);
    cr_assert_eq(ig_toml_parse(NULL, 0, "x", &r, NULL), IG_OK);
    cr_assert_eq(r->u.table.n, 0);
    ig_toml_free(r);
    ig_toml_free(NULL);
    cr_assert_null(ig_toml_get(NULL, "a"));
}
