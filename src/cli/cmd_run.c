/*
 * cmd_run.c: `ignis run`: the prompt, then the generated text, streamed to
 * stdout (and nothing else there); speed figures go to stderr at the end.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/threadpool.h"
#include "cli/cli.h"
#include "engine/generate.h"
#include "model/model.h"

static const char HELP[] =
    "usage: ignis run [-m MODEL] -p PROMPT [options]\n"
    "\n"
    "Generate text: writes the prompt and then the continuation to stdout, streamed;\n"
    "prompt and generation speed go to stderr at the end.\n"
    "  -m, --model MODEL      GGUF model file (default: $IGNIS_MODEL or stories260K)\n"
    "  -p, --prompt TEXT      the prompt (may be empty: generation starts from BOS)\n"
    "  -n, --n-predict N      most tokens to generate (default 128; -1: until the context is full)\n"
    "  -c, --ctx-size N       context length (default: the model's)\n"
    "      --temp T           temperature (default 0.8; 0 = greedy)\n"
    "      --top-k K          keep the K most likely tokens (default 40; 0 = off)\n"
    "      --top-p P          nucleus sampling mass (default 0.95; 1 = off)\n"
    "      --min-p P          drop tokens below P x the best one's probability (default 0.05)\n"
    "      --repeat-penalty R penalise the last --repeat-last-n tokens (default 1 = off)\n"
    "      --repeat-last-n N  window for --repeat-penalty (default 64)\n"
    "      --presence-penalty X, --frequency-penalty X   OpenAI-style penalties (default 0)\n"
    "      --seed S           random seed (default: random; printed on stderr)\n"
    "      --stop TEXT        stop when TEXT is generated (repeatable)\n"
    "      --parse-special    parse special-token text in the prompt (e.g. <s>)\n"
    "  -t, --threads N        worker threads (default: all cores)\n"
    "  -h, --help             this help\n";

static bool write_text(void *user, const char *text, size_t len) {
    (void)user;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return true;
}

int ig_cli_run(int argc, char **argv) {
    enum {
        OPT_TEMP = 256, OPT_TOP_K, OPT_TOP_P, OPT_MIN_P, OPT_REPEAT, OPT_REPEAT_N, OPT_PRESENCE,
        OPT_FREQUENCY, OPT_SEED, OPT_STOP, OPT_PARSE_SPECIAL
    };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},
        {"prompt", required_argument, 0, 'p'},
        {"n-predict", required_argument, 0, 'n'},
        {"ctx-size", required_argument, 0, 'c'},
        {"threads", required_argument, 0, 't'},
        {"temp", required_argument, 0, OPT_TEMP},
        {"top-k", required_argument, 0, OPT_TOP_K},
        {"top-p", required_argument, 0, OPT_TOP_P},
        {"min-p", required_argument, 0, OPT_MIN_P},
        {"repeat-penalty", required_argument, 0, OPT_REPEAT},
        {"repeat-last-n", required_argument, 0, OPT_REPEAT_N},
        {"presence-penalty", required_argument, 0, OPT_PRESENCE},
        {"frequency-penalty", required_argument, 0, OPT_FREQUENCY},
        {"seed", required_argument, 0, OPT_SEED},
        {"stop", required_argument, 0, OPT_STOP},
        {"parse-special", no_argument, 0, OPT_PARSE_SPECIAL},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *path = NULL, *prompt = NULL;
    const char **stops = NULL;
    size_t n_stop = 0;
    long n_threads = 0, lv;
    double dv;
    bool parse_special = false;
    ig_gen_params gp = ig_gen_params_default();
    gp.sampling.temperature = 0.8f;
    gp.sampling.top_k = 40;
    gp.sampling.top_p = 0.95f;
    gp.sampling.min_p = 0.05f;
    int c, rc = 2;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":m:p:n:c:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': path = optarg; break;
        case 'p': prompt = optarg; break;
        case 'n':
            if (!ig_cli_parse_int("--n-predict", optarg, -1, 1 << 30, &lv)) goto out;
            gp.n_predict = (int32_t)lv;
            break;
        case 'c':
            if (!ig_cli_parse_int("--ctx-size", optarg, 0, 1 << 24, &lv)) goto out;
            gp.n_ctx = (int32_t)lv;
            break;
        case 't':
            if (!ig_cli_parse_int("--threads", optarg, 1, 512, &n_threads)) goto out;
            break;
        case OPT_TEMP:
            if (!ig_cli_parse_float("--temp", optarg, 0, 1e6, &dv)) goto out;
            gp.sampling.temperature = (float)dv;
            break;
        case OPT_TOP_K:
            if (!ig_cli_parse_int("--top-k", optarg, 0, 1 << 30, &lv)) goto out;
            gp.sampling.top_k = (int32_t)lv;
            break;
        case OPT_TOP_P:
            if (!ig_cli_parse_float("--top-p", optarg, 1e-9, 1, &dv)) goto out;
            gp.sampling.top_p = (float)dv;
            break;
        case OPT_MIN_P:
            if (!ig_cli_parse_float("--min-p", optarg, 0, 1, &dv)) goto out;
            gp.sampling.min_p = (float)dv;
            break;
        case OPT_REPEAT:
            if (!ig_cli_parse_float("--repeat-penalty", optarg, 1e-6, 1e6, &dv)) goto out;
            gp.sampling.repeat_penalty = (float)dv;
            break;
        case OPT_REPEAT_N:
            if (!ig_cli_parse_int("--repeat-last-n", optarg, 0, IG_SAMPLER_MAX_LAST_N, &lv)) goto out;
            gp.sampling.repeat_last_n = (int32_t)lv;
            break;
        case OPT_PRESENCE:
            if (!ig_cli_parse_float("--presence-penalty", optarg, -100, 100, &dv)) goto out;
            gp.sampling.presence_penalty = (float)dv;
            break;
        case OPT_FREQUENCY:
            if (!ig_cli_parse_float("--frequency-penalty", optarg, -100, 100, &dv)) goto out;
            gp.sampling.frequency_penalty = (float)dv;
            break;
        case OPT_SEED: {
            char *end;
            unsigned long long s = strtoull(optarg, &end, 10);
            if (end == optarg || *end || optarg[0] == '-') {
                ig_cli_fail("--seed: '%s' is not a non-negative whole number", optarg);
                goto out;
            }
            gp.sampling.seed = (uint64_t)s;
            break;
        }
        case OPT_STOP: {
            if (!optarg[0]) {
                ig_cli_fail("--stop: the stop string is empty");
                goto out;
            }
            const char **ns = realloc(stops, (n_stop + 1) * sizeof *ns);
            if (!ns) goto out;
            stops = ns;
            stops[n_stop++] = optarg;
            break;
        }
        case OPT_PARSE_SPECIAL: parse_special = true; break;
        case 'h': fputs(HELP, stdout); rc = 0; goto out;
        case ':': ig_cli_fail("run: option '%s' needs a value", argv[optind - 1]); goto out;
        default: ig_cli_fail("run: unknown option '%s' (try --help)", argv[optind - 1]); goto out;
        }
    }
    if (optind != argc) {
        ig_cli_fail("run: unexpected argument '%s' (try --help)", argv[optind]);
        goto out;
    }
    if (!prompt) {
        ig_cli_fail("run: no prompt: pass -p PROMPT (try --help)");
        goto out;
    }
    if (!path) path = ig_cli_default_model();
    gp.stop = stops;
    gp.n_stop = n_stop;

    rc = 1;
    ig_error err = {0};
    ig_model *m = NULL;
    ig_pool *pool = NULL;
    ig_tokens toks = {0};
    if (ig_model_load(path, &m, &err) != IG_OK || ig_pool_new((int)n_threads, &pool, &err) != IG_OK) {
        ig_cli_fail("run: %s", err.message);
        goto cleanup;
    }
    ig_tokenize_opts to = {.add_special = true, .parse_special = parse_special};
    if (ig_tokenize(m->vocab, prompt, strlen(prompt), to, &toks, &err) != IG_OK) {
        ig_cli_fail("run: %s", err.message);
        goto cleanup;
    }
    if (toks.n == 0 && m->vocab->bos_id >= 0) ig_tokens_push(&toks, m->vocab->bos_id);
    fputs(prompt, stdout);
    fflush(stdout);
    ig_gen_result res;
    ig_status st = ig_generate(m, pool, toks.ids, toks.n, &gp, write_text, NULL, &res, &err);
    putchar('\n');
    fflush(stdout);
    if (st != IG_OK) {
        ig_cli_fail("run: %s", err.message);
        goto cleanup;
    }
    fprintf(stderr,
            "\nignis: prompt %d tokens in %.1f ms (%.1f tokens/s); generated %d tokens in %.1f ms "
            "(%.1f tokens/s); %d threads, seed %llu, stopped by %s\n",
            res.n_prompt, res.prompt_ms, res.prompt_ms > 0 ? res.n_prompt * 1e3 / res.prompt_ms : 0.0,
            res.n_gen, res.gen_ms, res.gen_ms > 0 ? res.n_gen * 1e3 / res.gen_ms : 0.0,
            ig_pool_size(pool), (unsigned long long)res.seed,
            res.finish == IG_FINISH_STOP ? "end of text" : "length limit");
    rc = 0;
cleanup:
    ig_tokens_free(&toks);
    ig_pool_free(pool);
    ig_model_free(m);
out:
    free(stops);
    return rc;
}
