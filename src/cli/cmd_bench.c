/*
 * cmd_bench.c: `ignis bench`: prompt processing (pp) and generation (tg)
 * speed like llama-bench, the weight bytes a token reads, the achieved
 * bandwidth and its fraction of the machine's read bandwidth; `--membw`
 * measures that bandwidth alone. Tables go to stdout (markdown, or JSON with
 * -o json); nothing else goes there.
 */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/threadpool.h"
#include "cli/cli.h"
#include "engine/bench.h"
#include "model/model.h"
#include "tensor/types.h"

static const char HELP[] =
    "usage: ignis bench [-m MODEL]... [-p N,..] [-n N,..] [-t N,..] [-r N] [-o md|json]\n"
    "       ignis bench --membw [-t N,..] [-o md|json]\n"
    "       ignis bench [-m MODEL]... --parallel N,.. [-n N] [--prompt-len L] [--shared-prefix N]\n"
    "                   [--no-prefix-cache] [-t N,..] [-r N] [-o md|json]\n"
    "       ignis bench --url http://HOST:PORT [--parallel N,..] [...]   (HTTP load test;\n"
    "                   `ignis bench --url x --help` lists its options)\n"
    "\n"
    "Measure speed as llama-bench does. pp: one forward pass over N prompt tokens (BOS, then\n"
    "random ids) from an empty cache. tg: N single-token steps from an empty context, each\n"
    "computing logits. Each test runs -r times after a one-token warm-up; t/s is the mean\n"
    "and sample standard deviation over the runs. For each test the table also gives the\n"
    "weight bytes one forward pass reads, the weight bytes read per second (GB/s, 1e9 bytes)\n"
    "and that as a fraction of the machine's read bandwidth (for tg, the figure that matters:\n"
    "a generated token reads every weight once; the bandwidth is measured just before and\n"
    "just after each tg test's runs, and averaged, unless --membw-gbps is given).\n"
    "  -m, --model FILE       GGUF model (repeatable; default: $IGNIS_MODEL or stories260K)\n"
    "  -p, --n-prompt N,..    prompt lengths (default 512; 0 skips pp)\n"
    "  -n, --n-gen N,..       tokens to generate (default 128; 0 skips tg)\n"
    "  -t, --threads N,..     thread counts (default: all cores)\n"
    "  -r, --repetitions N    runs per test (default 5)\n"
    "  -o, --output FORMAT    md (markdown table, default) or json (llama-bench field names\n"
    "                         where they overlap; see docs/BENCHMARKS.md)\n"
    "      --membw            only measure the read bandwidth (per thread count) and print it\n"
    "      --membw-gbps X     take the bandwidth as X GB/s instead of measuring it\n"
    "      --membw-mib N      buffer for the bandwidth measurement (default 1024 MiB)\n"
    "      --no-warmup        skip the warm-up pass (or, with --parallel, the warm-up request)\n"
    "\n"
    "Serving engine (--parallel): for each level, start the engine (no HTTP), submit that many\n"
    "requests at once (greedy, end-of-generation banned, -n tokens each, default 64), poll\n"
    "their events until all finish. avg_ts: generated tokens of all requests / wall time;\n"
    "TTFT percentiles over the requests, ITL (inter-token gap) percentiles over all gaps.\n"
    "A warm-up request (the shared prefix plus one token) runs first on each engine: it\n"
    "touches the weights and, with the prefix cache on, caches the shared prefix. -r N runs\n"
    "each level N times (default 1) and reports the median of each figure.\n"
    "      --parallel N,..    concurrent sequences per level (e.g. 1,4,16,64)\n"
    "      --prompt-len L     prompt tokens per request (default 128, or shared prefix + 32)\n"
    "      --shared-prefix N  every prompt starts with the same N tokens (the rest random)\n"
    "      --no-prefix-cache  turn the engine's prefix cache off\n"
    "  -h, --help             this help\n"
    "\n"
    "The bandwidth figure is a multi-threaded streaming read: a buffer much larger than the\n"
    "caches, each thread summing its slice with 16-byte vector loads; best of 5 passes.\n";

#define MAX_LIST     32
#define MAX_MODELS   16
#define MEMBW_PASSES 5
#define MAX_REPS     64

typedef struct {
    long v[MAX_LIST];
    int n;
} num_list;

/* Parse "1,2,3" into l (replacing what it held); an empty element is an error. */
static int parse_list(const char *opt, const char *s, long lo, long hi, num_list *l) {
    char buf[32];
    l->n = 0;
    for (const char *p = s;;) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof buf) {
            ig_cli_fail("%s: '%s' is not a comma-separated list of numbers", opt, s);
            return 0;
        }
        if (l->n == MAX_LIST) {
            ig_cli_fail("%s: more than %d values", opt, MAX_LIST);
            return 0;
        }
        memcpy(buf, p, len);
        buf[len] = '\0';
        if (!ig_cli_parse_int(opt, buf, lo, hi, &l->v[l->n])) return 0;
        l->n++;
        if (p[len] == '\0') return 1;
        p += len + 1;
    }
}

/* One test's results. */
typedef struct {
    const char *path;
    char model_type[96]; /* "llama 1.1B Q4_K_M" */
    char arch_size[64];  /* "llama 1.1B" */
    char ftype[16];      /* "Q4_K_M" */
    uint64_t size, n_params, weight_bytes;
    int n_threads;
    int n_prompt, n_gen, n_runs;
    double ns[64]; /* per run, up to 64 kept */
    double membw;  /* GB/s */
} result;

static double mean(const double *x, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += x[i];
    return n ? s / n : 0;
}

/* Sample standard deviation (n - 1), 0 for fewer than two values, as llama-bench. */
static double stdev(const double *x, int n) {
    if (n < 2) return 0;
    double m = mean(x, n), s = 0;
    for (int i = 0; i < n; i++) s += (x[i] - m) * (x[i] - m);
    return sqrt(s / (n - 1));
}

static int n_tokens_of(const result *r) {
    return r->n_prompt > 0 ? r->n_prompt : r->n_gen;
}

static void samples_ts(const result *r, double *ts) {
    for (int i = 0; i < r->n_runs; i++) ts[i] = n_tokens_of(r) * 1e9 / r->ns[i];
}

/* llama.cpp's LLAMA_FTYPE numbers, short names. */
static const char *ftype_name(uint32_t ft) {
    switch (ft) {
    case 0:
        return "F32";
    case 1:
        return "F16";
    case 2:
        return "Q4_0";
    case 3:
        return "Q4_1";
    case 7:
        return "Q8_0";
    case 8:
        return "Q5_0";
    case 9:
        return "Q5_1";
    case 10:
        return "Q2_K";
    case 11:
        return "Q3_K_S";
    case 12:
        return "Q3_K_M";
    case 13:
        return "Q3_K_L";
    case 14:
        return "Q4_K_S";
    case 15:
        return "Q4_K_M";
    case 16:
        return "Q5_K_S";
    case 17:
        return "Q5_K_M";
    case 18:
        return "Q6_K";
    case 32:
        return "BF16";
    }
    return NULL;
}

/* Label a model like llama-bench's model_type: architecture, size, file type. */
static void describe(const ig_model *m, result *r) {
    const char *ft = ftype_name(m->desc.file_type);
    if (ft) {
        snprintf(r->ftype, sizeof r->ftype, "%s", ft);
    } else {
        /* the type holding the most bytes */
        uint64_t by[IG_TYPE_COUNT] = {0};
        for (int64_t i = 0; i < ig_gguf_n_tensors(m->gguf); i++) {
            const ig_gguf_tensor *t = ig_gguf_tensor_at(m->gguf, i);
            if (t->type < IG_TYPE_COUNT) by[t->type] += t->nbytes;
        }
        int best = 0;
        for (int t = 1; t < IG_TYPE_COUNT; t++)
            if (by[t] > by[best]) best = t;
        snprintf(r->ftype, sizeof r->ftype, "%s", ig_type_name((uint32_t)best));
        for (char *c = r->ftype; *c; c++)
            if (*c >= 'a' && *c <= 'z') *c = (char)(*c - 'a' + 'A');
    }
    double p = (double)r->n_params;
    char sz[32];
    if (p >= 1e9)
        snprintf(sz, sizeof sz, "%.1fB", p / 1e9);
    else if (p >= 1e6)
        snprintf(sz, sizeof sz, "%.0fM", p / 1e6);
    else
        snprintf(sz, sizeof sz, "%.0fK", p / 1e3);
    snprintf(r->arch_size, sizeof r->arch_size, "%s %s", m->desc.arch, sz);
    snprintf(r->model_type, sizeof r->model_type, "%s %s", r->arch_size, r->ftype);
}

static void fmt_size(uint64_t bytes, char *out, size_t n) {
    if (bytes >= (1u << 30))
        snprintf(out, n, "%.2f GiB", bytes / 1073741824.0);
    else if (bytes >= (1u << 20))
        snprintf(out, n, "%.2f MiB", bytes / 1048576.0);
    else
        snprintf(out, n, "%.2f KiB", bytes / 1024.0);
}

static void fmt_params(uint64_t n_params, char *out, size_t n) {
    if (n_params >= 1000000000u)
        snprintf(out, n, "%.2f B", n_params / 1e9);
    else if (n_params >= 1000000u)
        snprintf(out, n, "%.2f M", n_params / 1e6);
    else
        snprintf(out, n, "%.2f K", n_params / 1e3);
}

static void md_header(void) {
    printf("| %-24s | %10s | %9s | %-7s | %7s | %6s | %18s | %10s | %8s | %6s |\n", "model", "size",
           "params", "type", "threads", "test", "t/s", "weights/fw", "GB/s", "membw");
    printf("| %s | %s: | %s: | %s | %s: | %s: | %s: | %s: | %s: | %s: |\n",
           "------------------------", "---------", "--------", "-------", "------", "-----",
           "-----------------", "---------", "-------", "-----");
    fflush(stdout);
}

static double gb_per_s(const result *r, double avg_ns) {
    /* weights read per forward pass: one pass per tg token, one per pp run */
    double passes = r->n_prompt > 0 ? 1.0 : (double)r->n_gen;
    return avg_ns > 0 ? r->weight_bytes * passes / avg_ns : 0; /* bytes per ns = GB/s */
}

static void md_row(const result *r) {
    static bool has_header;
    if (!has_header) md_header();
    has_header = true;
    double ts[64];
    samples_ts(r, ts);
    char size[32], params[32], test[32], tps[48], wb[32];
    fmt_size(r->size, size, sizeof size);
    fmt_params(r->n_params, params, sizeof params);
    fmt_size(r->weight_bytes, wb, sizeof wb);
    snprintf(test, sizeof test, "%s%d", r->n_prompt > 0 ? "pp" : "tg", n_tokens_of(r));
    snprintf(tps, sizeof tps, "%.2f ± %.2f", mean(ts, r->n_runs), stdev(ts, r->n_runs));
    double gbs = gb_per_s(r, mean(r->ns, r->n_runs));
    printf("| %-24s | %10s | %9s | %-7s | %7d | %6s | %18s | %10s | %8.2f | %5.1f%% |\n",
           r->arch_size, size, params, r->ftype, r->n_threads, test, tps, wb, gbs,
           r->membw > 0 ? 100.0 * gbs / r->membw : 0.0);
    fflush(stdout);
}

static json_t *json_row(const result *r, const char *cpu, const char *when) {
    double ts[64];
    samples_ts(r, ts);
    double avg_ns = mean(r->ns, r->n_runs);
    char test[32];
    snprintf(test, sizeof test, "%s%d", r->n_prompt > 0 ? "pp" : "tg", n_tokens_of(r));
    json_t *sns = json_array(), *sts = json_array();
    for (int i = 0; i < r->n_runs; i++) {
        json_array_append_new(sns, json_integer((json_int_t)r->ns[i]));
        json_array_append_new(sts, json_real(ts[i]));
    }
    double gbs = gb_per_s(r, avg_ns);
    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:i, s:i, s:i, s:i, s:s, s:s, s:s, s:I, s:I, "
                     "s:f, s:f, s:o, s:o, s:I, s:f, s:f, s:f}",
                     "cpu_info", cpu, "model_filename", r->path, "model_type", r->model_type,
                     "model_size", (json_int_t)r->size, "model_n_params", (json_int_t)r->n_params,
                     "n_batch", r->n_prompt > 0 ? r->n_prompt : 1, "n_threads", r->n_threads,
                     "n_prompt", r->n_prompt, "n_gen", r->n_gen, "test", test, "test_type",
                     r->n_prompt > 0 ? "pp" : "tg", "test_time", when, "avg_ns",
                     (json_int_t)llround(avg_ns), "stddev_ns",
                     (json_int_t)llround(stdev(r->ns, r->n_runs)), "avg_ts", mean(ts, r->n_runs),
                     "stddev_ts", stdev(ts, r->n_runs), "samples_ns", sns, "samples_ts", sts,
                     "weight_bytes", (json_int_t)r->weight_bytes, "gb_per_s", gbs, "membw_gb_per_s",
                     r->membw, "bw_fraction", r->membw > 0 ? gbs / r->membw : 0.0);
}

/* "model name" from /proc/cpuinfo, or "unknown". */
static void cpu_name(char *out, size_t n) {
    snprintf(out, n, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        char *c = strchr(line, ':');
        if (!c) break;
        c++;
        while (*c == ' ' || *c == '\t') c++;
        c[strcspn(c, "\n")] = '\0';
        snprintf(out, n, "%s", c);
        break;
    }
    fclose(f);
}

/* Read bandwidth for each thread count, measured once each. */
typedef struct {
    int n_threads[MAX_LIST];
    double gbps[MAX_LIST];
    int n;
} membw_cache;

static int membw_for(membw_cache *c, ig_pool *pool, size_t bytes, double *out) {
    int nt = ig_pool_size(pool);
    for (int i = 0; i < c->n; i++)
        if (c->n_threads[i] == nt) {
            *out = c->gbps[i];
            return 1;
        }
    ig_error err = {0};
    double g = 0;
    if (ig_bench_membw(pool, bytes, MEMBW_PASSES, &g, &err) != IG_OK) {
        ig_cli_fail("bench: %s", err.message);
        return 0;
    }
    if (c->n < MAX_LIST) {
        c->n_threads[c->n] = nt;
        c->gbps[c->n++] = g;
    }
    *out = g;
    return 1;
}

/* ---- the serving engine (--parallel) ---- */

typedef struct {
    const char *model_path;
    const char *model_type;
    int n_threads;
    ig_bench_engine_params p;
    int n_runs;
    ig_bench_engine_result med; /* median of each figure over the runs */
    double samples_ts[MAX_REPS];
} engine_row;

static double median_of(const ig_bench_engine_result *rs, int n, size_t field_off) {
    double x[MAX_REPS];
    for (int i = 0; i < n; i++) x[i] = *(const double *)((const char *)&rs[i] + field_off);
    return ig_bench_percentile(x, (size_t)n, 50);
}

static void engine_median(const ig_bench_engine_result *rs, int n, ig_bench_engine_result *out) {
    *out = rs[0];
#define MED(f) out->f = median_of(rs, n, offsetof(ig_bench_engine_result, f))
    MED(wall_ms);
    MED(avg_ts);
    MED(ttft_ms_p50);
    MED(ttft_ms_p95);
    MED(ttft_ms_mean);
    MED(itl_ms_p50);
    MED(itl_ms_p95);
    MED(itl_ms_p99);
#undef MED
}

static void engine_md_row(const engine_row *r) {
    static bool has_header;
    if (!has_header) {
        printf("| %-24s | %7s | %8s | %6s | %6s | %6s | %5s | %10s | %9s | %9s | %8s | %8s | "
               "%8s |\n",
               "model", "threads", "parallel", "prompt", "shared", "cache", "n", "t/s", "TTFT p50",
               "TTFT p95", "ITL p50", "ITL p95", "ITL p99");
        printf(
            "| ------------------------ | ------: | -------: | -----: | -----: | ----- | ----: | "
            "---------: | --------: | --------: | -------: | -------: | -------: |\n");
        has_header = true;
    }
    printf("| %-24s | %7d | %8d | %6d | %6d | %-6s | %5d | %10.2f | %9.2f | %9.2f | %8.2f | "
           "%8.2f | %8.2f |\n",
           r->model_type, r->n_threads, r->p.n_parallel, r->p.prompt_len, r->p.shared_prefix,
           r->p.prefix_cache ? "on" : "off", r->p.n_gen, r->med.avg_ts, r->med.ttft_ms_p50,
           r->med.ttft_ms_p95, r->med.itl_ms_p50, r->med.itl_ms_p95, r->med.itl_ms_p99);
    fflush(stdout);
}

static json_t *engine_json_row(const engine_row *r, const char *cpu, const char *when) {
    json_t *sts = json_array();
    for (int i = 0; i < r->n_runs; i++) json_array_append_new(sts, json_real(r->samples_ts[i]));
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:b, s:i, s:I, s:I, s:f, s:f, s:f, "
        "s:f, s:f, s:f, s:f, s:f, s:o}",
        "cpu_info", cpu, "model_filename", r->model_path, "model_type", r->model_type, "test",
        "engine", "test_time", when, "n_threads", r->n_threads, "n_parallel", r->p.n_parallel,
        "n_prompt", r->p.prompt_len, "n_gen", r->p.n_gen, "shared_prefix", r->p.shared_prefix,
        "prefix_cache", r->p.prefix_cache, "repetitions", r->n_runs, "n_generated",
        (json_int_t)r->med.n_generated, "n_cached_tokens", (json_int_t)r->med.n_cached_tokens,
        "wall_ms", r->med.wall_ms, "avg_ts", r->med.avg_ts, "ttft_ms_p50", r->med.ttft_ms_p50,
        "ttft_ms_p95", r->med.ttft_ms_p95, "ttft_ms_mean", r->med.ttft_ms_mean, "itl_ms_p50",
        r->med.itl_ms_p50, "itl_ms_p95", r->med.itl_ms_p95, "itl_ms_p99", r->med.itl_ms_p99,
        "samples_ts", sts);
}

int ig_cli_bench(int argc, char **argv) {
    /* --url: the HTTP load generator (cmd_bench_http.c) takes every option. */
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
        if (!strcmp(argv[i], "--url") || !strncmp(argv[i], "--url=", 6))
            return ig_cli_bench_http(argc, argv);
    enum {
        OPT_MEMBW = 256,
        OPT_MEMBW_GBPS,
        OPT_MEMBW_MIB,
        OPT_NO_WARMUP,
        OPT_PARALLEL,
        OPT_PROMPT_LEN,
        OPT_SHARED_PREFIX,
        OPT_NO_PREFIX_CACHE
    };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},
        {"n-prompt", required_argument, 0, 'p'},
        {"n-gen", required_argument, 0, 'n'},
        {"threads", required_argument, 0, 't'},
        {"repetitions", required_argument, 0, 'r'},
        {"output", required_argument, 0, 'o'},
        {"membw", no_argument, 0, OPT_MEMBW},
        {"membw-gbps", required_argument, 0, OPT_MEMBW_GBPS},
        {"membw-mib", required_argument, 0, OPT_MEMBW_MIB},
        {"no-warmup", no_argument, 0, OPT_NO_WARMUP},
        {"parallel", required_argument, 0, OPT_PARALLEL},
        {"prompt-len", required_argument, 0, OPT_PROMPT_LEN},
        {"shared-prefix", required_argument, 0, OPT_SHARED_PREFIX},
        {"no-prefix-cache", no_argument, 0, OPT_NO_PREFIX_CACHE},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *models[MAX_MODELS];
    int n_models = 0;
    num_list np = {{512}, 1}, ng = {{128}, 1}, nt = {{0}, 1};
    num_list npar = {{0}, 0};
    long reps = 0, membw_mib = 1024, prompt_len = 0, shared_prefix = 0;
    double membw_given = 0;
    bool only_membw = false, warmup = true, json = false, prefix_cache = true, given_p = false,
         given_n = false;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":m:p:n:t:r:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            if (n_models == MAX_MODELS) {
                ig_cli_fail("bench: more than %d models", MAX_MODELS);
                return 2;
            }
            models[n_models++] = optarg;
            break;
        case 'p':
            if (!parse_list("--n-prompt", optarg, 0, 1 << 20, &np)) return 2;
            given_p = true;
            break;
        case 'n':
            if (!parse_list("--n-gen", optarg, 0, 1 << 20, &ng)) return 2;
            given_n = true;
            break;
        case 't':
            if (!parse_list("--threads", optarg, 1, 512, &nt)) return 2;
            break;
        case 'r':
            if (!ig_cli_parse_int("--repetitions", optarg, 1, MAX_REPS, &reps)) return 2;
            break;
        case 'o':
            if (!strcmp(optarg, "json"))
                json = true;
            else if (!strcmp(optarg, "md"))
                json = false;
            else {
                ig_cli_fail("--output: '%s' is not md or json", optarg);
                return 2;
            }
            break;
        case OPT_MEMBW:
            only_membw = true;
            break;
        case OPT_MEMBW_GBPS:
            if (!ig_cli_parse_float("--membw-gbps", optarg, 1e-3, 1e6, &membw_given)) return 2;
            break;
        case OPT_MEMBW_MIB:
            if (!ig_cli_parse_int("--membw-mib", optarg, 1, 1 << 20, &membw_mib)) return 2;
            break;
        case OPT_NO_WARMUP:
            warmup = false;
            break;
        case OPT_PARALLEL:
            if (!parse_list("--parallel", optarg, 1, 4096, &npar)) return 2;
            break;
        case OPT_PROMPT_LEN:
            if (!ig_cli_parse_int("--prompt-len", optarg, 1, 1 << 20, &prompt_len)) return 2;
            break;
        case OPT_SHARED_PREFIX:
            if (!ig_cli_parse_int("--shared-prefix", optarg, 1, 1 << 20, &shared_prefix)) return 2;
            break;
        case OPT_NO_PREFIX_CACHE:
            prefix_cache = false;
            break;
        case 'h':
            fputs(HELP, stdout);
            return 0;
        case ':':
            ig_cli_fail("bench: option '%s' needs a value", argv[optind - 1]);
            return 2;
        default:
            ig_cli_fail("bench: unknown option '%s' (try --help)", argv[optind - 1]);
            return 2;
        }
    }
    if (optind != argc) {
        ig_cli_fail("bench: unexpected argument '%s' (try --help)", argv[optind]);
        return 2;
    }
    if (only_membw && n_models) {
        ig_cli_fail("bench: --membw measures the machine, not a model: drop -m");
        return 2;
    }
    const bool engine_mode = npar.n > 0;
    if (!engine_mode && (prompt_len || shared_prefix || !prefix_cache)) {
        ig_cli_fail("bench: --prompt-len, --shared-prefix and --no-prefix-cache need --parallel");
        return 2;
    }
    if (engine_mode) {
        if (only_membw || given_p) {
            ig_cli_fail("bench: --parallel takes --prompt-len, not -p or --membw");
            return 2;
        }
        if (given_n && (ng.n != 1 || ng.v[0] < 1)) {
            ig_cli_fail("bench: with --parallel, -n is one number >= 1");
            return 2;
        }
        if (!given_n) ng.v[0] = 64;
        if (!prompt_len) prompt_len = shared_prefix ? shared_prefix + 32 : 128;
        if (shared_prefix >= prompt_len) {
            ig_cli_fail("bench: --shared-prefix (%ld) must be less than --prompt-len (%ld)",
                        shared_prefix, prompt_len);
            return 2;
        }
    }
    if (!reps) reps = engine_mode ? 1 : 5;
    if (!n_models) models[n_models++] = ig_cli_default_model();
    const size_t membw_bytes = (size_t)membw_mib << 20;

    int rc = 1;
    json_t *rows = json_array();
    membw_cache mc = {0};
    char cpu[256], when[32];
    cpu_name(cpu, sizeof cpu);
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));

    if (only_membw) {
        for (int ti = 0; ti < nt.n; ti++) {
            ig_error err = {0};
            ig_pool *pool = NULL;
            double g = 0;
            if (ig_pool_new((int)nt.v[ti], &pool, &err) != IG_OK) {
                ig_cli_fail("bench: %s", err.message);
                goto done;
            }
            int ok = membw_for(&mc, pool, membw_bytes, &g);
            int threads = ig_pool_size(pool);
            ig_pool_free(pool);
            if (!ok) goto done;
            if (json)
                json_array_append_new(rows,
                                      json_pack("{s:f, s:i, s:I, s:i}", "read_gb_per_s", g,
                                                "n_threads", threads, "buffer_bytes",
                                                (json_int_t)membw_bytes, "passes", MEMBW_PASSES));
            else
                printf(
                    "read bandwidth: %.2f GB/s (%d threads, %ld MiB buffer, best of %d passes)\n",
                    g, threads, membw_mib, MEMBW_PASSES);
        }
        if (json) {
            /* one thread count: the object itself; several: a list */
            json_t *out = json_array_size(rows) == 1 ? json_array_get(rows, 0) : rows;
            char *s = json_dumps(out, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
            if (s) puts(s);
            free(s);
        }
        rc = 0;
        goto done;
    }

    for (int mi = 0; engine_mode && mi < n_models; mi++) {
        ig_error err = {0};
        ig_model *m = NULL;
        if (ig_model_load(models[mi], &m, &err) != IG_OK) {
            ig_cli_fail("bench: %s", err.message);
            goto done;
        }
        result base = {.path = models[mi]};
        ig_bench_model_size(m, &base.size, &base.n_params);
        describe(m, &base);
        bool ok = true;
        for (int ti = 0; ok && ti < nt.n; ti++) {
            ig_pool *pool = NULL;
            if (ig_pool_new((int)nt.v[ti], &pool, &err) != IG_OK) {
                ig_cli_fail("bench: %s", err.message);
                ok = false;
                break;
            }
            for (int li = 0; ok && li < npar.n; li++) {
                engine_row r = {.model_path = models[mi],
                                .model_type = base.model_type,
                                .n_threads = ig_pool_size(pool)};
                r.p = (ig_bench_engine_params){.n_parallel = (int32_t)npar.v[li],
                                               .n_gen = (int32_t)ng.v[0],
                                               .prompt_len = (int32_t)prompt_len,
                                               .shared_prefix = (int32_t)shared_prefix,
                                               .prefix_cache = prefix_cache,
                                               .warmup = warmup,
                                               .seed = 1234};
                ig_bench_engine_result runs[MAX_REPS];
                for (int i = 0; ok && i < reps; i++) {
                    r.p.seed = 1234 + 7919u * (uint64_t)i;
                    if (ig_bench_engine(m, pool, &r.p, &runs[i], &err) != IG_OK) {
                        ig_cli_fail("bench: %s", err.message);
                        ok = false;
                        break;
                    }
                    r.samples_ts[r.n_runs++] = runs[i].avg_ts;
                }
                if (!ok) break;
                engine_median(runs, r.n_runs, &r.med);
                if (json)
                    json_array_append_new(rows, engine_json_row(&r, cpu, when));
                else
                    engine_md_row(&r);
            }
            ig_pool_free(pool);
        }
        ig_model_free(m);
        if (!ok) goto done;
    }
    if (engine_mode) {
        if (json) {
            char *s = json_dumps(rows, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
            if (s) puts(s);
            free(s);
        } else {
            printf("\nt/s: generated tokens of all requests per second of wall time; TTFT and ITL "
                   "in ms; median of %ld run(s)\ncpu: %s\n",
                   reps, cpu);
        }
        rc = 0;
        goto done;
    }

    for (int mi = 0; mi < n_models; mi++) {
        ig_error err = {0};
        ig_model *m = NULL;
        if (ig_model_load(models[mi], &m, &err) != IG_OK) {
            ig_cli_fail("bench: %s", err.message);
            goto done;
        }
        result base = {.path = models[mi]};
        ig_bench_model_size(m, &base.size, &base.n_params);
        base.weight_bytes = ig_bench_weight_bytes_per_token(m);
        describe(m, &base);
        for (int ti = 0; ti < nt.n; ti++) {
            ig_pool *pool = NULL;
            if (ig_pool_new((int)nt.v[ti], &pool, &err) != IG_OK) {
                ig_cli_fail("bench: %s", err.message);
                ig_model_free(m);
                goto done;
            }
            base.n_threads = ig_pool_size(pool);
            base.membw = membw_given;
            /* pp rows use one measurement per thread count; tg measures its own */
            bool any_pp = false;
            for (int k = 0; k < np.n; k++) any_pp = any_pp || np.v[k] > 0;
            bool ok = membw_given > 0 || !any_pp || membw_for(&mc, pool, membw_bytes, &base.membw);
            uint64_t ns;
            /* warm-up: one token touches every weight once (page cache, TLB) */
            if (ok && warmup && ig_bench_run(m, pool, 0, 1, 99, &ns, &err) != IG_OK) {
                ig_cli_fail("bench: %s", err.message);
                ok = false;
            }
            for (int k = 0; ok && k < np.n + ng.n; k++) {
                result r = base;
                r.n_prompt = k < np.n ? (int)np.v[k] : 0;
                r.n_gen = k < np.n ? 0 : (int)ng.v[k - np.n];
                if (r.n_prompt == 0 && r.n_gen == 0) continue;
                /* tg is compared with the bandwidth measured around its own runs
                 * (before and after, averaged): on a shared host it drifts */
                double bw_before = 0, bw_after = 0;
                const bool bracket = r.n_gen > 0 && membw_given <= 0;
                if (bracket &&
                    ig_bench_membw(pool, membw_bytes, MEMBW_PASSES, &bw_before, &err) != IG_OK) {
                    ig_cli_fail("bench: %s", err.message);
                    ok = false;
                    break;
                }
                for (int i = 0; i < reps; i++) {
                    if (ig_bench_run(m, pool, r.n_prompt, r.n_gen, (uint64_t)(1000 + i), &ns,
                                     &err) != IG_OK) {
                        ig_cli_fail("bench: %s", err.message);
                        ok = false;
                        break;
                    }
                    r.ns[r.n_runs++] = (double)ns;
                }
                if (!ok) break;
                if (bracket) {
                    if (ig_bench_membw(pool, membw_bytes, MEMBW_PASSES, &bw_after, &err) != IG_OK) {
                        ig_cli_fail("bench: %s", err.message);
                        ok = false;
                        break;
                    }
                    r.membw = 0.5 * (bw_before + bw_after);
                }
                if (json)
                    json_array_append_new(rows, json_row(&r, cpu, when));
                else
                    md_row(&r);
            }
            ig_pool_free(pool);
            if (!ok) {
                ig_model_free(m);
                goto done;
            }
        }
        ig_model_free(m);
    }
    if (json) {
        char *s = json_dumps(rows, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
        if (s) puts(s);
        free(s);
    } else {
        printf("\nweights/fw: weight bytes one forward pass reads; GB/s: those bytes x passes/s; "
               "membw: GB/s as a share of the read bandwidth");
        if (membw_given > 0)
            printf(" (given: %.2f GB/s)\n", membw_given);
        else {
            printf(" (measured: for tg, the mean of a measurement just before and just after "
                   "its runs");
            for (int i = 0; i < mc.n; i++)
                printf("%s %.2f GB/s with %d threads", i ? "," : "; for pp:", mc.gbps[i],
                       mc.n_threads[i]);
            printf(")\n");
        }
        printf("cpu: %s\n", cpu);
    }
    rc = 0;
done:
    json_decref(rows);
    return rc;
}
