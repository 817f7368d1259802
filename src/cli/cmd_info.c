/* cmd_info.c: `ignis info`: describe a model file. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "model/model.h"
#include "tensor/types.h"

static const char HELP[] =
    "usage: ignis info [-m MODEL]\n"
    "\n"
    "Print a model's architecture, sizes, weight types, vocabulary and context.\n"
    "  -m, --model MODEL   GGUF model file (default: $IGNIS_MODEL or stories260K)\n"
    "  -h, --help          this help\n";

static const char *vocab_type_name(ig_vocab_type t) {
    switch (t) {
    case IG_VOCAB_SPM: return "SentencePiece BPE (llama)";
    case IG_VOCAB_BPE: return "byte-level BPE (gpt2)";
    case IG_VOCAB_WPM: return "WordPiece (bert)";
    }
    return "?";
}

int ig_cli_info(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *path = NULL;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":m:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': path = optarg; break;
        case 'h': fputs(HELP, stdout); return 0;
        case ':': ig_cli_fail("info: option '%s' needs a value", argv[optind - 1]); return 2;
        default: ig_cli_fail("info: unknown option '%s' (try --help)", argv[optind - 1]); return 2;
        }
    }
    if (optind != argc) {
        ig_cli_fail("info: unexpected argument '%s' (try --help)", argv[optind]);
        return 2;
    }
    if (!path) path = ig_cli_default_model();
    ig_error err = {0};
    ig_model *m = NULL;
    if (ig_model_load(path, &m, &err) != IG_OK) {
        ig_cli_fail("info: %s", err.message);
        return 1;
    }
    const ig_model_desc *d = &m->desc;
    printf("file:          %s\n", path);
    printf("gguf version:  %u\n", ig_gguf_version(m->gguf));
    printf("name:          %s\n", d->name);
    printf("architecture:  %s\n", d->arch);
    printf("parameters:    %lld (%.2f M)\n", (long long)d->n_params, d->n_params / 1e6);
    printf("weight bytes:  %zu (%.2f MiB)\n", d->weight_bytes, d->weight_bytes / 1048576.0);
    printf("layers:        %d\n", d->n_layer);
    printf("embedding:     %d\n", d->n_embd);
    printf("feed-forward:  %d\n", d->n_ff);
    printf("heads:         %d (kv %d, head size %d)\n", d->n_head, d->n_head_kv, d->head_dim);
    printf("context:       %d\n", d->n_ctx_train);
    /* weight types: count tensors per type */
    int counts[IG_TYPE_COUNT] = {0};
    for (int64_t i = 0; i < ig_gguf_n_tensors(m->gguf); i++) {
        uint32_t t = ig_gguf_tensor_at(m->gguf, i)->type;
        if (t < IG_TYPE_COUNT) counts[t]++;
    }
    printf("tensor types: ");
    for (int t = 0; t < IG_TYPE_COUNT; t++)
        if (counts[t]) printf(" %s x%d", ig_type_name((uint32_t)t), counts[t]);
    printf("\n");
    const ig_vocab *v = m->vocab;
    printf("vocab:         %d tokens, %s, pre-tokenizer '%s'\n", v->n_tokens,
           vocab_type_name(v->type), v->pre);
    printf("special:       bos %d, eos %d, unk %d, add_bos %s\n", v->bos_id, v->eos_id, v->unk_id,
           v->add_bos ? "yes" : "no");
    ig_model_free(m);
    return 0;
}
