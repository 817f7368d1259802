/*
 * fuzz_chat_template.c: libFuzzer driver for the chat-template renderer.
 *
 * The input is a template. It must either fail to parse with a status and a
 * message, or parse and then render a fixed conversation (system, user with
 * unicode, assistant, user with content parts, tool message) to completion or
 * to a clean error, within tight limits so that each input stays fast. The
 * output must be NUL-terminated at the reported length.
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "tokenizer/chat_template.h"

static json_t *messages, *extra;

static const char conversation[] =
    "[{\"role\":\"system\",\"content\":\"Be brief.\"},"
    "{\"role\":\"user\",\"content\":\"h\\u00e9llo \\u4e16\\u754c \\ud83c\\udf89\"},"
    "{\"role\":\"assistant\",\"content\":\"<think>x</think>\\n\\nok\",\"tool_calls\":"
    "[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":{\"a\":1}}}]},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"part\"},{\"type\":\"image\"}]},"
    "{\"role\":\"tool\",\"content\":\"42\"}]";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!messages) {
        messages = json_loads(conversation, 0, NULL);
        extra = json_loads("{\"enable_thinking\": false, \"tools\": [{\"type\": \"function\","
                           "\"function\": {\"name\": \"f\", \"parameters\": {}}}]}",
                           0, NULL);
        if (!messages || !extra) abort();
    }
    ig_chat_template *t = NULL;
    ig_error err = {0};
    if (ig_chat_template_new((const char *)data, size, &t, &err) != IG_OK) {
        if (t || err.code == IG_OK || !err.message[0]) abort();
        return 0;
    }
    ig_chat_template_limits lim = {
        .max_output_len = 1 << 20, .max_memory = 64 << 20, .max_steps = 200000, .max_depth = 200};
    ig_chat_template_set_limits(t, &lim);
    ig_chat_template_set_time(t, 1700000000);
    for (int agp = 0; agp < 2; agp++) {
        char *out = NULL;
        size_t len = 0;
        ig_error_clear(&err);
        ig_status st = ig_chat_template_render(t, messages, agp, "<s>", "</s>", agp ? extra : NULL,
                                               &out, &len, &err);
        if (st == IG_OK) {
            if (!out || out[len] != '\0' || len > lim.max_output_len) abort();
            free(out);
        } else if (out || !err.message[0]) {
            abort();
        }
    }
    ig_chat_template_free(t);
    return 0;
}
