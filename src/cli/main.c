/*
 * main.c: the `ignis` program. Dispatches to a subcommand; every subcommand
 * answers --help, and a wrong argument is one clear line on stderr and a
 * non-zero exit.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const char USAGE[] =
    "usage: ignis <command> [options]\n"
    "\n"
    "commands:\n"
    "  run        generate text from a prompt\n"
    "  serve      serve the OpenAI-compatible HTTP API\n"
    "  tokenize   print the token ids of a text\n"
    "  info       describe a model file\n"
    "  bench      measure prompt and generation speed (and memory bandwidth)\n"
    "  gen-model  write a random-weight model in a real shape (for benchmarks)\n"
    "  config     print the effective configuration, or docs/CONFIG.md\n"
    "\n"
    "`ignis <command> --help` describes each command's options.\n";

void ig_cli_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("ignis: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int ig_cli_parse_int(const char *opt, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0') {
        ig_cli_fail("%s: '%s' is not a whole number", opt, s);
        return 0;
    }
    if (v < lo || v > hi) {
        ig_cli_fail("%s: %ld is out of range [%ld, %ld]", opt, v, lo, hi);
        return 0;
    }
    *out = v;
    return 1;
}

int ig_cli_parse_float(const char *opt, const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || isnan(v)) {
        ig_cli_fail("%s: '%s' is not a number", opt, s);
        return 0;
    }
    if (v < lo || v > hi) {
        ig_cli_fail("%s: %g is out of range [%g, %g]", opt, v, lo, hi);
        return 0;
    }
    *out = v;
    return 1;
}

const char *ig_cli_default_model(void) {
    static char buf[4096];
    const char *m = getenv("IGNIS_MODEL");
    if (m && *m) return m;
    const char *root = getenv("IGNIS_TEST_DATA");
    snprintf(buf, sizeof buf, "%s/models/stories260K.gguf", root && *root ? root : "../shared");
    return buf;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fputs(USAGE, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(USAGE, stdout);
        return 0;
    }
    if (!strcmp(cmd, "run")) return ig_cli_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "serve")) return ig_cli_serve(argc - 1, argv + 1);
    if (!strcmp(cmd, "tokenize")) return ig_cli_tokenize(argc - 1, argv + 1);
    if (!strcmp(cmd, "info")) return ig_cli_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench")) return ig_cli_bench(argc - 1, argv + 1);
    if (!strcmp(cmd, "gen-model")) return ig_cli_gen_model(argc - 1, argv + 1);
    if (!strcmp(cmd, "config")) return ig_cli_config(argc - 1, argv + 1);
    ig_cli_fail("unknown command '%s' (try `ignis --help`)", cmd);
    return 2;
}
