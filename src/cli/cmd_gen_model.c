/* cmd_gen_model.c: `ignis gen-model`: write a random-weight model in a named shape. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/threadpool.h"
#include "cli/cli.h"
#include "model/gen_model.h"

static const char HELP[] =
    "usage: ignis gen-model --shape NAME --type TYPE [--vocab VOCAB.gguf] -o OUT.gguf [options]\n"
    "\n"
    "Write a GGUF v3 llama-architecture model with random weights (approximately\n"
    "N(0, 1/fan_in); norms about 1) in a real model's shape, for benchmarks: speed does not\n"
    "depend on the weights' values. The tokenizer (every tokenizer.* key) and the vocabulary\n"
    "size come from VOCAB.gguf, e.g. ../shared/vocab/ggml-vocab-llama-spm.gguf (32000 tokens).\n"
    "  -s, --shape NAME    model shape (below)\n"
    "      --type TYPE     f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k q4_k q5_k q6_k:\n"
    "                      every matrix in that type (norms stay f32); q4_k_m: llama.cpp's\n"
    "                      Q4_K_M mix (q4_K; q6_K for output.weight and for attn_v and ffn_down\n"
    "                      in the first and last eighth of the layers and every third between).\n"
    "                      k-quant rows that are not whole 256-blocks fall back as llama.cpp\n"
    "                      does (q4_K->q5_0, q5_K->q5_1, q6_K->q8_0, q2_K/q3_K->q4_0).\n"
    "      --vocab FILE    GGUF with the tokenizer (default: $IGNIS_TEST_DATA's stories260K,\n"
    "                      512 tokens)\n"
    "  -o, --output FILE   the model file to write (overwritten)\n"
    "      --seed N        PRNG seed (default 1); the file does not depend on -t\n"
    "      --exact         quantize every row with the reference quantizers (slow: minutes\n"
    "                      for TinyLlama); by default each block of a quantized matrix is\n"
    "                      picked at random from a pool of 128 Ki quantized random values\n"
    "  -t, --threads N     worker threads (default: all cores)\n"
    "  -h, --help          this help\n"
    "\n"
    "shapes:\n";

static void print_help(void) {
    fputs(HELP, stdout);
    for (size_t i = 0; i < ig_gen_shape_count(); i++) {
        const ig_gen_shape *s = ig_gen_shape_at(i);
        printf("  %-16s %s\n", s->name, s->about);
    }
    printf(
        "Every shape is written as architecture 'llama' (qwen2-0.5b too: Ignis runs llama only,\n"
        "so its attention biases are left out).\n");
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int ig_cli_gen_model(int argc, char **argv) {
    enum { OPT_TYPE = 256, OPT_VOCAB, OPT_SEED, OPT_EXACT };
    static const struct option opts[] = {
        {"shape", required_argument, 0, 's'},
        {"type", required_argument, 0, OPT_TYPE},
        {"vocab", required_argument, 0, OPT_VOCAB},
        {"output", required_argument, 0, 'o'},
        {"seed", required_argument, 0, OPT_SEED},
        {"threads", required_argument, 0, 't'},
        {"exact", no_argument, 0, OPT_EXACT},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *shape_name = NULL, *wtype = NULL, *vocab = NULL, *out = NULL;
    long n_threads = 0;
    uint64_t seed = 1;
    bool is_exact = false;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":s:o:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            shape_name = optarg;
            break;
        case OPT_TYPE:
            wtype = optarg;
            break;
        case OPT_VOCAB:
            vocab = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 't':
            if (!ig_cli_parse_int("--threads", optarg, 1, 512, &n_threads)) return 2;
            break;
        case OPT_SEED: {
            char *end;
            unsigned long long s = strtoull(optarg, &end, 10);
            if (end == optarg || *end || optarg[0] == '-') {
                ig_cli_fail("--seed: '%s' is not a non-negative whole number", optarg);
                return 2;
            }
            seed = (uint64_t)s;
            break;
        }
        case OPT_EXACT:
            is_exact = true;
            break;
        case 'h':
            print_help();
            return 0;
        case ':':
            ig_cli_fail("gen-model: option '%s' needs a value", argv[optind - 1]);
            return 2;
        default:
            ig_cli_fail("gen-model: unknown option '%s' (try --help)", argv[optind - 1]);
            return 2;
        }
    }
    if (optind != argc) {
        ig_cli_fail("gen-model: unexpected argument '%s' (try --help)", argv[optind]);
        return 2;
    }
    if (!shape_name) {
        ig_cli_fail("gen-model: no shape: pass --shape NAME (try --help)");
        return 2;
    }
    const ig_gen_shape *shape = ig_gen_shape_find(shape_name);
    if (!shape) {
        ig_cli_fail("gen-model: unknown shape '%s' (try --help)", shape_name);
        return 2;
    }
    if (!wtype) {
        ig_cli_fail("gen-model: no weight type: pass --type TYPE (try --help)");
        return 2;
    }
    if (!ig_gen_wtype_is_valid(wtype)) {
        ig_cli_fail("gen-model: unknown weight type '%s' (try --help)", wtype);
        return 2;
    }
    if (!out) {
        ig_cli_fail("gen-model: no output file: pass -o OUT.gguf");
        return 2;
    }
    static char default_vocab[4096];
    if (!vocab) {
        const char *root = getenv("IGNIS_TEST_DATA");
        snprintf(default_vocab, sizeof default_vocab, "%s/models/stories260K.gguf",
                 root && *root ? root : "../shared");
        vocab = default_vocab;
    }

    int rc = 1;
    ig_error err = {0};
    ig_pool *pool = NULL;
    if (ig_pool_new((int)n_threads, &pool, &err) != IG_OK) {
        ig_cli_fail("gen-model: %s", err.message);
        goto done;
    }
    double t0 = now_s();
    ig_gen_model_params p = {.shape = shape,
                             .wtype = wtype,
                             .vocab_path = vocab,
                             .out_path = out,
                             .seed = seed,
                             .is_exact = is_exact};
    if (ig_gen_model(&p, pool, &err) != IG_OK) {
        ig_cli_fail("gen-model: %s", err.message);
        goto done;
    }
    fprintf(stderr, "ignis: wrote %s (%s, %s) in %.1f s with %d threads\n", out, shape->name, wtype,
            now_s() - t0, ig_pool_size(pool));
    rc = 0;
done:
    ig_pool_free(pool);
    return rc;
}
