/* cmd_tokenize.c: `ignis tokenize`: print the token ids of a text. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "format/gguf.h"
#include "tokenizer/vocab.h"

static const char HELP[] =
    "usage: ignis tokenize [-m MODEL] (TEXT | --file F) [--no-bos] [--parse-special] [--pieces]\n"
    "\n"
    "Print the token ids of TEXT (or of the contents of file F), separated by spaces.\n"
    "  -m, --model MODEL   GGUF model or vocab file (default: $IGNIS_MODEL or stories260K)\n"
    "  -f, --file F        read the text from F instead of the command line\n"
    "      --no-bos        add no BOS/EOS tokens\n"
    "      --parse-special treat special-token text (e.g. <s>) as those tokens\n"
    "      --pieces        print one 'id piece' per line\n"
    "  -h, --help          this help\n";

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) break;
        char *nb = realloc(buf, cap *= 2);
        if (!nb) {
            free(buf);
            buf = NULL;
        } else
            buf = nb;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

int ig_cli_tokenize(int argc, char **argv) {
    enum { OPT_NO_BOS = 256, OPT_PARSE_SPECIAL, OPT_PIECES };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},   {"file", required_argument, 0, 'f'},
        {"no-bos", no_argument, 0, OPT_NO_BOS}, {"parse-special", no_argument, 0, OPT_PARSE_SPECIAL},
        {"pieces", no_argument, 0, OPT_PIECES}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *model = NULL, *file = NULL;
    int no_bos = 0, parse_special = 0, pieces = 0, c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":m:f:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'f': file = optarg; break;
        case OPT_NO_BOS: no_bos = 1; break;
        case OPT_PARSE_SPECIAL: parse_special = 1; break;
        case OPT_PIECES: pieces = 1; break;
        case 'h': fputs(HELP, stdout); return 0;
        case ':': ig_cli_fail("tokenize: option '%s' needs a value", argv[optind - 1]); return 2;
        default: ig_cli_fail("tokenize: unknown option '%s' (try --help)", argv[optind - 1]); return 2;
        }
    }
    int n_pos = argc - optind;
    if ((file && n_pos != 0) || (!file && n_pos != 1)) {
        ig_cli_fail("tokenize: give exactly one TEXT or --file F (try --help)");
        return 2;
    }
    if (!model) model = ig_cli_default_model();

    char *text = NULL;
    size_t len = 0;
    if (file) {
        text = read_all(file, &len);
        if (!text) {
            ig_cli_fail("tokenize: cannot read '%s'", file);
            return 1;
        }
    } else {
        len = strlen(argv[optind]);
        text = malloc(len + 1);
        if (!text) return 1;
        memcpy(text, argv[optind], len + 1);
    }

    int rc = 1;
    ig_error err = {0};
    ig_gguf *g = NULL;
    ig_vocab *v = NULL;
    ig_tokens toks = {0};
    if (ig_gguf_open(model, &g, &err) != IG_OK || ig_vocab_load(g, &v, &err) != IG_OK) {
        ig_cli_fail("tokenize: %s", err.message);
        goto done;
    }
    ig_tokenize_opts to = {.add_special = !no_bos, .parse_special = parse_special != 0};
    if (ig_tokenize(v, text, len, to, &toks, &err) != IG_OK) {
        ig_cli_fail("tokenize: %s", err.message);
        goto done;
    }
    for (size_t i = 0; i < toks.n; i++) {
        if (pieces) {
            char piece[256];
            size_t n = ig_token_to_piece(v, toks.ids[i], true, piece, sizeof piece);
            if (n > sizeof piece) n = sizeof piece;
            printf("%d '%.*s'\n", toks.ids[i], (int)n, piece);
        } else {
            printf(i ? " %d" : "%d", toks.ids[i]);
        }
    }
    if (!pieces) putchar('\n');
    rc = 0;
done:
    ig_tokens_free(&toks);
    ig_vocab_free(v);
    ig_gguf_free(g);
    free(text);
    return rc;
}
