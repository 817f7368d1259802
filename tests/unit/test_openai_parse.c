/*
 * test_openai_parse.c: OpenAI request parsing and validation
 * (server/openai.c), the error JSON, the UTF-8 sanitizer and the writers.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "server/auth.h"
#include "server/openai.h"

#define NV 512

static ig_status parse(ig_oai_kind k, const char *body, ig_oai_request *r, ig_oai_error *e) {
    memset(r, 0, sizeof *r);
    memset(e, 0, sizeof *e);
    return ig_oai_parse(k, body, strlen(body), NV, r, e);
}

Test(openai, completion_fields) {
    ig_oai_request r;
    ig_oai_error e;
    cr_assert_eq(parse(IG_OAI_KIND_COMPLETION,
                       "{\"model\":\"m\",\"prompt\":\"hi\",\"max_tokens\":7,\"temperature\":0.5,"
                       "\"top_p\":0.9,\"top_k\":40,\"min_p\":0.1,\"n\":2,\"seed\":42,"
                       "\"stop\":[\"a\",\"\",\"b\"],\"logit_bias\":{\"5\":-100,\"7\":3.5},"
                       "\"presence_penalty\":1,\"frequency_penalty\":-1,\"repetition_penalty\":1.1,"
                       "\"logprobs\":2,\"echo\":true,\"priority\":3,\"user\":\"u\","
                       "\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                       "\"unknown\":[1,2,{}]}",
                       &r, &e),
                 IG_OK, "%s", e.message);
    cr_assert_str_eq(r.model, "m");
    cr_assert_str_eq(r.prompt, "hi");
    cr_assert_eq(r.max_tokens, 7);
    cr_assert(r.has_max_tokens);
    cr_assert_float_eq(r.sampling.temperature, 0.5f, 1e-6);
    cr_assert_float_eq(r.sampling.top_p, 0.9f, 1e-6);
    cr_assert_eq(r.sampling.top_k, 40);
    cr_assert_eq(r.n, 2);
    cr_assert(r.has_seed);
    cr_assert_eq(r.sampling.seed, 42);
    cr_assert_eq(r.n_stop, 2); /* the empty stop string is dropped */
    cr_assert_str_eq(r.stop[1], "b");
    cr_assert_eq(r.sampling.n_logit_bias, 2);
    cr_assert_eq(r.bias[0].token, 5);
    cr_assert_float_eq(r.bias[1].bias, 3.5f, 1e-6);
    cr_assert(r.logprobs);
    cr_assert_eq(r.top_logprobs, 2);
    cr_assert(r.echo && r.stream && r.include_usage);
    cr_assert_eq(r.priority, 3);
    ig_oai_request_free(&r);
    cr_assert_null(r.model);
}

Test(openai, defaults) {
    ig_oai_request r;
    ig_oai_error e;
    cr_assert_eq(parse(IG_OAI_KIND_COMPLETION, "{\"prompt\":\"x\"}", &r, &e), IG_OK);
    cr_assert_eq(r.max_tokens, 16); /* OpenAI's completions default */
    cr_assert(!r.has_max_tokens);
    cr_assert_eq(r.n, 1);
    cr_assert_float_eq(r.sampling.temperature, 1.0f, 1e-6);
    ig_oai_request_free(&r);
    cr_assert_eq(
        parse(IG_OAI_KIND_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", &r, &e),
        IG_OK);
    cr_assert_eq(r.max_tokens, 0); /* chat: until the context is full */
    ig_oai_request_free(&r);
}

Test(openai, max_completion_tokens_wins) {
    ig_oai_request r;
    ig_oai_error e;
    cr_assert_eq(parse(IG_OAI_KIND_CHAT,
                       "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":5,"
                       "\"max_completion_tokens\":9}",
                       &r, &e),
                 IG_OK);
    cr_assert_eq(r.max_tokens, 9);
    ig_oai_request_free(&r);
}

Test(openai, chat_content_parts_are_joined) {
    ig_oai_request r;
    ig_oai_error e;
    cr_assert_eq(parse(IG_OAI_KIND_CHAT,
                       "{\"messages\":[{\"role\":\"system\",\"content\":null},"
                       "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
                       "{\"type\":\"text\",\"text\":\"bc\"}],\"name\":\"n\"}]}",
                       &r, &e),
                 IG_OK, "%s", e.message);
    cr_assert_eq(json_array_size(r.messages), 2);
    json_t *m0 = json_array_get(r.messages, 0), *m1 = json_array_get(r.messages, 1);
    cr_assert_str_eq(json_string_value(json_object_get(m0, "content")), "");
    cr_assert_str_eq(json_string_value(json_object_get(m1, "content")), "abc");
    cr_assert_str_eq(json_string_value(json_object_get(m1, "name")), "n");
    ig_oai_request_free(&r);
}

Test(openai, token_prompts) {
    ig_oai_request r;
    ig_oai_error e;
    cr_assert_eq(parse(IG_OAI_KIND_COMPLETION, "{\"prompt\":[[1,2,3]]}", &r, &e), IG_OK);
    cr_assert_eq(r.n_prompt_ids, 3);
    cr_assert_eq(r.prompt_ids[2], 3);
    ig_oai_request_free(&r);
    cr_assert_eq(parse(IG_OAI_KIND_COMPLETION, "{\"prompt\":[\"one\"]}", &r, &e), IG_OK);
    cr_assert_str_eq(r.prompt, "one");
    ig_oai_request_free(&r);
}

/* Each bad body is a 400 naming `param` ("" = none). */
static const struct {
    ig_oai_kind kind;
    const char *body, *param;
} BAD[] = {
    {IG_OAI_KIND_COMPLETION, "{", ""},
    {IG_OAI_KIND_COMPLETION, "[]", ""},
    {IG_OAI_KIND_COMPLETION, "", ""},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":\"x\"} trailing", ""},
    {IG_OAI_KIND_COMPLETION, "{}", "prompt"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":3}", "prompt"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":[]}", "prompt"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":[\"a\",\"b\"]}", "prompt"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":[1,512]}", "prompt"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":[1,-1]}", "prompt"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":\"x\",\"max_tokens\":\"5\"}", "max_tokens"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":\"x\",\"max_tokens\":-3}", "max_tokens"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":\"x\",\"max_tokens\":0}", "max_tokens"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":\"x\",\"max_tokens\":1.5}", "max_tokens"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":\"x\",\"max_tokens\":1e300}", "max_tokens"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":\"x\",\"max_tokens\":4294967296}", "max_tokens"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":\"x\",\"temperature\":2.5}", "temperature"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":\"x\",\"temperature\":-0.1}", "temperature"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":\"x\",\"temperature\":true}", "temperature"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":\"x\",\"top_p\":1.01}", "top_p"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":\"x\",\"top_k\":-2}", "top_k"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":\"x\",\"min_p\":2}", "min_p"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":\"x\",\"repetition_penalty\":0}", "repetition_penalty"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":\"x\",\"presence_penalty\":2.1}", "presence_penalty"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":\"x\",\"frequency_penalty\":\"no\"}",
     "frequency_penalty"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":\"x\",\"n\":0}", "n"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":\"x\",\"n\":17}", "n"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":\"x\",\"best_of\":3}", "best_of"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":\"x\",\"seed\":\"s\"}", "seed"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":\"x\",\"stop\":{}}", "stop"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":\"x\",\"stop\":[null]}", "stop"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":\"x\",\"logit_bias\":[1]}", "logit_bias"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":\"x\",\"logit_bias\":{\"512\":1}}", "logit_bias"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":\"x\",\"logit_bias\":{\"1x\":1}}", "logit_bias"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":\"x\",\"logit_bias\":{\"1\":101}}", "logit_bias"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":\"x\",\"logit_bias\":{\"1\":\"a\"}}", "logit_bias"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":\"x\",\"logprobs\":21}", "logprobs"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":\"x\",\"echo\":1}", "echo"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":\"x\",\"suffix\":\"s\"}", "suffix"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":\"x\",\"stream\":\"true\"}", "stream"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":\"x\",\"stream_options\":{\"include_usage\":true}}",
     "stream_options"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":\"x\",\"stream\":true,\"stream_options\":[]}",
     "stream_options"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":\"x\",\"model\":7}", "model"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":\"x\",\"user\":[]}", "user"},
    {IG_OAI_KIND_COMPLETION, "{\"prompt\":\"x\",\"response_format\":{\"type\":\"json_object\"}}",
     "response_format"},
    {IG_OAI_KIND_CHAT, "{}", "messages"},
    {IG_OAI_KIND_CHAT, "{\"messages\":[]}", "messages"},
    {IG_OAI_KIND_CHAT, "{\"messages\":{}}", "messages"},
    {IG_OAI_KIND_CHAT, "{\"messages\":[1]}", "messages"},
    {IG_OAI_KIND_CHAT, "{\"messages\":[{\"content\":\"x\"}]}", "messages"},
    {IG_OAI_KIND_CHAT, "{\"messages\":[{\"role\":\"bot\",\"content\":\"x\"}]}", "messages"},
    {IG_OAI_KIND_CHAT, "{\"messages\":[{\"role\":\"user\"}]}", "messages"},
    {IG_OAI_KIND_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":1}]}", "messages"},
    {IG_OAI_KIND_CHAT,
     "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}", "messages"},
    {IG_OAI_KIND_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_logprobs\":2}",
     "top_logprobs"},
    {IG_OAI_KIND_CHAT,
     "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":true,\"top_logprobs\":21}",
     "top_logprobs"},
    {IG_OAI_KIND_CHAT,
     "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\"}]}",
     "tools"},
};

Test(openai, bad_input_table) {
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        ig_oai_request r;
        ig_oai_error e;
        ig_status st = parse(BAD[i].kind, BAD[i].body, &r, &e);
        cr_expect_eq(st, IG_EINVAL, "accepted: %s", BAD[i].body);
        cr_expect_eq(e.http_status, 400, "%s", BAD[i].body);
        cr_expect_str_eq(e.param, BAD[i].param, "%s -> param '%s' (%s)", BAD[i].body, e.param,
                         e.message);
        cr_expect(e.message[0] != '\0');
        cr_expect_null(r.model);
        cr_expect_null(r.messages);
    }
}

Test(openai, error_json_shape) {
    ig_oai_error e;
    ig_oai_fail(&e, 404, "model", "model_not_found", "no model `%s` \xff", "x");
    char *s = ig_oai_error_json(&e);
    cr_assert_not_null(s);
    json_error_t je;
    json_t *j = json_loads(s, 0, &je);
    cr_assert_not_null(j, "%s", s);
    json_t *err = json_object_get(j, "error");
    cr_assert_str_eq(json_string_value(json_object_get(err, "type")), "not_found_error");
    cr_assert_str_eq(json_string_value(json_object_get(err, "param")), "model");
    cr_assert_str_eq(json_string_value(json_object_get(err, "code")), "model_not_found");
    cr_assert_str_eq(json_string_value(json_object_get(err, "message")),
                     "no model `x` \xEF\xBF\xBD");
    json_decref(j);
    free(s);
    ig_oai_fail(&e, 400, NULL, NULL, "x");
    s = ig_oai_error_json(&e);
    cr_assert(strstr(s, "\"param\":null") && strstr(s, "\"code\":null"), "%s", s);
    free(s);
}

/* Replacement per maximal invalid subpart (Unicode 15, section 3.9, table 3-8). */
Test(openai, utf8_sanitize) {
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"abc", "abc"},
        {"\xC3\xA9", "\xC3\xA9"},
        {"\xF0\x9F\x98\x80", "\xF0\x9F\x98\x80"},
        {"\xFF", "\xEF\xBF\xBD"},
        {"a\x80"
         "b",
         "a\xEF\xBF\xBD"
         "b"},
        {"\xE2\x82", "\xEF\xBF\xBD"},                             /* truncated: one U+FFFD */
        {"\xC0\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD"},                 /* overlong lead: two */
        {"\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* surrogate: three */
        {"\xF4\x90\x80\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},
        {"\xE1\x80\x41", "\xEF\xBF\xBD"
                         "A"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n;
        char *s = ig_oai_utf8_sanitize(cases[i].in, strlen(cases[i].in), &n);
        cr_assert_not_null(s);
        cr_expect_eq(n, strlen(cases[i].want), "case %zu", i);
        cr_expect_str_eq(s, cases[i].want, "case %zu", i);
        free(s);
    }
}

static size_t piece(void *user, int32_t tok, char *buf, size_t cap) {
    (void)user;
    const char *p = tok == 1 ? "He" : "\xE2"; /* token 2: a lone lead byte */
    size_t n = strlen(p);
    memcpy(buf, p, n < cap ? n : cap);
    return n;
}

Test(openai, logprobs_shapes) {
    ig_oai_logprob lp[2] = {{.token = 1, .logprob = -0.5f, .n_top = 1, .top = {{1, -0.5f}}},
                            {.token = 2, .logprob = -INFINITY, .n_top = 0}};
    json_t *chat = ig_oai_logprobs_json(IG_OAI_KIND_CHAT, lp, 2, piece, NULL, 0);
    json_t *c = json_object_get(chat, "content");
    cr_assert_eq(json_array_size(c), 2);
    json_t *c1 = json_array_get(c, 1);
    cr_assert_str_eq(json_string_value(json_object_get(c1, "token")), "\xEF\xBF\xBD");
    cr_assert_eq(json_integer_value(json_array_get(json_object_get(c1, "bytes"), 0)), 0xE2);
    cr_assert_float_eq(json_real_value(json_object_get(c1, "logprob")), -9999.0, 1e-9);
    cr_assert_eq(json_array_size(json_object_get(json_array_get(c, 0), "top_logprobs")), 1);
    json_decref(chat);
    json_t *cmp = ig_oai_logprobs_json(IG_OAI_KIND_COMPLETION, lp, 2, piece, NULL, 10);
    cr_assert_eq(json_integer_value(json_array_get(json_object_get(cmp, "text_offset"), 1)), 12);
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(cmp, "tokens"), 0)), "He");
    json_decref(cmp);
}

Test(openai, usage_and_finish) {
    json_t *u = ig_oai_usage_json(5, 7, 2);
    cr_assert_eq(json_integer_value(json_object_get(u, "total_tokens")), 12);
    cr_assert_eq(json_integer_value(
                     json_object_get(json_object_get(u, "prompt_tokens_details"), "cached_tokens")),
                 2);
    json_decref(u);
    cr_assert_str_eq(ig_oai_finish_reason(IG_FINISH_KIND_STOP), "stop");
    cr_assert_str_eq(ig_oai_finish_reason(IG_FINISH_KIND_LENGTH), "length");
    cr_assert_str_eq(ig_oai_finish_reason(IG_FINISH_KIND_CANCELLED), "abort");
    cr_assert_null(ig_oai_finish_reason(IG_FINISH_KIND_NONE));
}

Test(auth, keys) {
    const char *keys[] = {"alpha", "beta-key"};
    ig_auth *a = NULL;
    cr_assert_eq(ig_auth_new(keys, 2, &a, NULL), IG_OK);
    cr_assert(ig_auth_check(a, "Bearer alpha"));
    cr_assert(ig_auth_check(a, "bearer beta-key"));
    cr_assert(!ig_auth_check(a, "Bearer alph"));
    cr_assert(!ig_auth_check(a, "Bearer alphaa"));
    cr_assert(!ig_auth_check(a, "alpha"));
    cr_assert(!ig_auth_check(a, NULL));
    cr_assert(!ig_auth_check(a, "Bearer "));
    ig_auth_free(a);
    cr_assert_eq(ig_auth_new(NULL, 0, &a, NULL), IG_OK);
    cr_assert(ig_auth_check(a, NULL)); /* no keys: open */
    ig_auth_free(a);
    const char *empty[] = {""};
    ig_error err = {0};
    cr_assert_eq(ig_auth_new(empty, 1, &a, &err), IG_EINVAL);
}
