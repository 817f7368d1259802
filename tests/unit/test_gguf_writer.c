/*
 * test_gguf_writer.c: the GGUF writer (round trip through the reader, every
 * metadata type, alignment, misuse) and gen-model (the files load, have the
 * shapes and types asked for, run a forward pass, match llama.cpp's Q4_K_M
 * mix on the synth model, and do not depend on the thread count).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/threadpool.h"
#include "format/gguf.h"
#include "format/gguf_writer.h"
#include "model/gen_model.h"
#include "model/model.h"
#include "tensor/types.h"
#include "testutil.h"

/* A unique temporary path for this test process. */
static const char *tmp_path(const char *tag) {
    static __thread char buf[256];
    snprintf(buf, sizeof buf, "/tmp/ignis-test-writer-%d-%s.gguf", (int)getpid(), tag);
    return buf;
}

Test(gguf_writer, round_trip_every_type) {
    const char *path = tmp_path("rt");
    ig_error err = {0};
    ig_gguf_writer *w = NULL;
    cr_assert_eq(ig_gguf_writer_new(&w, &err), IG_OK);

    /* one scalar of every type */
    ig_gguf_value v[12] = {
        {.type = IG_GGUF_UINT8, .v.u64 = 200},
        {.type = IG_GGUF_INT8, .v.i64 = -100},
        {.type = IG_GGUF_UINT16, .v.u64 = 60000},
        {.type = IG_GGUF_INT16, .v.i64 = -30000},
        {.type = IG_GGUF_UINT32, .v.u64 = 4000000000u},
        {.type = IG_GGUF_INT32, .v.i64 = -2000000000},
        {.type = IG_GGUF_FLOAT32, .v.f64 = 1.5},
        {.type = IG_GGUF_BOOL, .v.b = true},
        {.type = IG_GGUF_STRING, .v.str = {"h\0llo", 5}},
        {.type = IG_GGUF_UINT64, .v.u64 = UINT64_MAX - 1},
        {.type = IG_GGUF_INT64, .v.i64 = INT64_MIN + 1},
        {.type = IG_GGUF_FLOAT64, .v.f64 = -2.25e300},
    };
    char key[32];
    for (int i = 0; i < 12; i++) {
        snprintf(key, sizeof key, "test.k%d", i);
        cr_assert_eq(ig_gguf_writer_add_value(w, key, &v[i], &err), IG_OK, "%s", err.message);
    }
    /* arrays: numeric, strings, nested, empty */
    const int32_t nums[5] = {1, -2, 3, -4, 5};
    ig_gguf_value an = {
        .type = IG_GGUF_ARRAY,
        .v.arr = {.elem_type = IG_GGUF_INT32, .n = 5, .raw = (const uint8_t *)nums}};
    ig_gguf_value strs[3] = {{.type = IG_GGUF_STRING, .v.str = {"a", 1}},
                             {.type = IG_GGUF_STRING, .v.str = {"", 0}},
                             {.type = IG_GGUF_STRING, .v.str = {"ccc", 3}}};
    ig_gguf_value as = {.type = IG_GGUF_ARRAY,
                        .v.arr = {.elem_type = IG_GGUF_STRING, .n = 3, .items = strs}};
    ig_gguf_value inner[2] = {an, as};
    ig_gguf_value anest = {.type = IG_GGUF_ARRAY,
                           .v.arr = {.elem_type = IG_GGUF_ARRAY, .n = 2, .items = inner}};
    ig_gguf_value aempty = {.type = IG_GGUF_ARRAY, .v.arr = {.elem_type = IG_GGUF_FLOAT32, .n = 0}};
    cr_assert_eq(ig_gguf_writer_add_value(w, "test.arr_i32", &an, &err), IG_OK, "%s", err.message);
    cr_assert_eq(ig_gguf_writer_add_value(w, "test.arr_str", &as, &err), IG_OK, "%s", err.message);
    cr_assert_eq(ig_gguf_writer_add_value(w, "test.arr_nest", &anest, &err), IG_OK, "%s",
                 err.message);
    cr_assert_eq(ig_gguf_writer_add_value(w, "test.arr_empty", &aempty, &err), IG_OK, "%s",
                 err.message);
    cr_assert_eq(ig_gguf_writer_add_str(w, "general.name", "writer test", &err), IG_OK);

    /* tensors of several types and ranks */
    const int64_t ne_a[1] = {7}, ne_b[2] = {64, 3}, ne_c[2] = {256, 2}, ne_d[3] = {4, 3, 2};
    const uint32_t types[4] = {IG_TYPE_F32, IG_TYPE_Q4_0, IG_TYPE_Q6_K, IG_TYPE_F16};
    const int64_t *nes[4] = {ne_a, ne_b, ne_c, ne_d};
    const uint32_t dims[4] = {1, 2, 2, 3};
    const char *names[4] = {"a", "blk.0.b", "c.weight", "d"};
    for (int i = 0; i < 4; i++) {
        int64_t idx = -1;
        cr_assert_eq(ig_gguf_writer_add_tensor(w, names[i], dims[i], nes[i], types[i], &idx, &err),
                     IG_OK, "%s", err.message);
        cr_assert_eq(idx, i);
    }
    cr_assert_eq(ig_gguf_writer_tensor_nbytes(w, 0), 28);
    cr_assert_eq(ig_gguf_writer_tensor_nbytes(w, 1), 3 * 2 * 18);
    cr_assert_eq(ig_gguf_writer_tensor_nbytes(w, 2), 2 * 210);
    cr_assert_eq(ig_gguf_writer_tensor_nbytes(w, 3), 24 * 2);
    cr_assert_eq(ig_gguf_writer_open(w, path, &err), IG_OK, "%s", err.message);

    /* data: byte j of tensor i is (i * 31 + j * 7) & 255; written back to front in pieces */
    uint8_t buf[512];
    for (int i = 3; i >= 0; i--) {
        uint64_t n = ig_gguf_writer_tensor_nbytes(w, i);
        for (uint64_t j = 0; j < n; j++) buf[j] = (uint8_t)((i * 31 + j * 7) & 255);
        uint64_t half = n / 2;
        cr_assert_eq(ig_gguf_writer_write(w, i, half, buf + half, n - half, &err), IG_OK);
        cr_assert_eq(ig_gguf_writer_write(w, i, 0, buf, half, &err), IG_OK);
    }
    cr_assert_eq(ig_gguf_writer_close(w, &err), IG_OK, "%s", err.message);
    ig_gguf_writer_free(w);

    ig_gguf *g = NULL;
    cr_assert_eq(ig_gguf_open(path, &g, &err), IG_OK, "%s", err.message);
    cr_assert_eq(ig_gguf_version(g), 3);
    cr_assert_eq(ig_gguf_alignment(g), 32);
    cr_assert_eq(ig_gguf_n_kv(g), 17);
    for (int i = 0; i < 12; i++) {
        snprintf(key, sizeof key, "test.k%d", i);
        const ig_gguf_kv *kv = ig_gguf_kv_at(g, i);
        cr_assert(ig_str_eq(kv->key, key), "key %d out of order", i);
        cr_assert_eq(kv->value.type, v[i].type, "type of %s", key);
    }
    const ig_gguf_value *r;
    cr_assert_eq(ig_gguf_find(g, "test.k0")->v.u64, 200);
    cr_assert_eq(ig_gguf_find(g, "test.k1")->v.i64, -100);
    cr_assert_eq(ig_gguf_find(g, "test.k2")->v.u64, 60000);
    cr_assert_eq(ig_gguf_find(g, "test.k3")->v.i64, -30000);
    cr_assert_eq(ig_gguf_find(g, "test.k4")->v.u64, 4000000000u);
    cr_assert_eq(ig_gguf_find(g, "test.k5")->v.i64, -2000000000);
    cr_assert_eq(ig_gguf_find(g, "test.k6")->v.f64, 1.5);
    cr_assert_eq(ig_gguf_find(g, "test.k7")->v.b, true);
    r = ig_gguf_find(g, "test.k8");
    cr_assert_eq(r->v.str.len, 5);
    cr_assert_eq(memcmp(r->v.str.ptr, "h\0llo", 5), 0);
    cr_assert_eq(ig_gguf_find(g, "test.k9")->v.u64, UINT64_MAX - 1);
    cr_assert_eq(ig_gguf_find(g, "test.k10")->v.i64, INT64_MIN + 1);
    cr_assert_eq(ig_gguf_find(g, "test.k11")->v.f64, -2.25e300);
    r = ig_gguf_find(g, "test.arr_i32");
    cr_assert_eq(r->v.arr.elem_type, IG_GGUF_INT32);
    cr_assert_eq(r->v.arr.n, 5);
    for (int i = 0; i < 5; i++) cr_assert_eq(ig_gguf_arr_i64(r, i), nums[i]);
    r = ig_gguf_find(g, "test.arr_str");
    cr_assert_eq(r->v.arr.n, 3);
    cr_assert(ig_str_eq(r->v.arr.items[0].v.str, "a"));
    cr_assert(ig_str_eq(r->v.arr.items[1].v.str, ""));
    cr_assert(ig_str_eq(r->v.arr.items[2].v.str, "ccc"));
    r = ig_gguf_find(g, "test.arr_nest");
    cr_assert_eq(r->v.arr.elem_type, IG_GGUF_ARRAY);
    cr_assert_eq(r->v.arr.n, 2);
    cr_assert_eq(r->v.arr.items[0].v.arr.n, 5);
    cr_assert_eq(ig_gguf_arr_i64(&r->v.arr.items[0], 4), 5);
    cr_assert_eq(r->v.arr.items[1].v.arr.n, 3);
    cr_assert(ig_str_eq(r->v.arr.items[1].v.arr.items[2].v.str, "ccc"));
    cr_assert_eq(ig_gguf_find(g, "test.arr_empty")->v.arr.n, 0);

    cr_assert_eq(ig_gguf_n_tensors(g), 4);
    for (int i = 0; i < 4; i++) {
        const ig_gguf_tensor *t = ig_gguf_tensor_at(g, i);
        cr_assert(ig_str_eq(t->name, names[i]));
        cr_assert_eq(t->type, types[i]);
        cr_assert_eq(t->n_dims, dims[i]);
        for (uint32_t d = 0; d < dims[i]; d++) cr_assert_eq(t->ne[d], nes[i][d]);
        cr_assert_eq(t->offset % 32, 0);
        const uint8_t *p = t->data;
        for (size_t j = 0; j < t->nbytes; j++)
            cr_assert_eq(p[j], (uint8_t)((i * 31 + j * 7) & 255), "tensor %d byte %zu", i, j);
    }
    ig_gguf_free(g);
    unlink(path);
}

Test(gguf_writer, alignment_key) {
    const char *path = tmp_path("align");
    ig_error err = {0};
    ig_gguf_writer *w = NULL;
    cr_assert_eq(ig_gguf_writer_new(&w, &err), IG_OK);
    cr_assert_eq(ig_gguf_writer_add_u32(w, "general.alignment", 48, &err), IG_EINVAL);
    cr_assert_eq(ig_gguf_writer_add_u32(w, "general.alignment", 64, NULL), IG_OK);
    const int64_t ne[1] = {3};
    cr_assert_eq(ig_gguf_writer_add_tensor(w, "x", 1, ne, IG_TYPE_F32, NULL, NULL), IG_OK);
    cr_assert_eq(ig_gguf_writer_add_tensor(w, "y", 1, ne, IG_TYPE_F32, NULL, NULL), IG_OK);
    cr_assert_eq(ig_gguf_writer_open(w, path, &err), IG_OK, "%s", err.message);
    float f[3] = {1, 2, 3};
    cr_assert_eq(ig_gguf_writer_write(w, 0, 0, f, sizeof f, NULL), IG_OK);
    cr_assert_eq(ig_gguf_writer_write(w, 1, 0, f, sizeof f, NULL), IG_OK);
    cr_assert_eq(ig_gguf_writer_close(w, &err), IG_OK, "%s", err.message);
    ig_gguf_writer_free(w);
    ig_gguf *g = NULL;
    cr_assert_eq(ig_gguf_open(path, &g, &err), IG_OK, "%s", err.message);
    cr_assert_eq(ig_gguf_alignment(g), 64);
    cr_assert_eq(ig_gguf_tensor_at(g, 1)->offset, 64);
    cr_assert_eq(((const float *)ig_gguf_tensor_at(g, 1)->data)[2], 3.0f);
    ig_gguf_free(g);
    unlink(path);
}

Test(gguf_writer, misuse_is_refused) {
    const char *path = tmp_path("misuse");
    ig_error err = {0};
    ig_gguf_writer *w = NULL;
    cr_assert_eq(ig_gguf_writer_new(&w, &err), IG_OK);
    cr_assert_eq(ig_gguf_writer_add_u32(w, "k", 1, NULL), IG_OK);
    cr_assert_eq(ig_gguf_writer_add_u32(w, "k", 2, &err), IG_EINVAL);
    cr_assert(strstr(err.message, "duplicate key 'k'"), "%s", err.message);
    cr_assert_eq(ig_gguf_writer_add_u32(w, "", 2, NULL), IG_EINVAL);
    const int64_t ne[2] = {33, 2}, ne_ok[2] = {64, 2}, ne_bad[2] = {64, 0};
    cr_assert_eq(ig_gguf_writer_add_tensor(w, "t", 2, ne, IG_TYPE_Q4_0, NULL, NULL), IG_EINVAL);
    cr_assert_eq(ig_gguf_writer_add_tensor(w, "t", 2, ne_bad, IG_TYPE_F32, NULL, NULL), IG_EINVAL);
    cr_assert_eq(ig_gguf_writer_add_tensor(w, "t", 2, ne_ok, 99, NULL, NULL), IG_EINVAL);
    cr_assert_eq(ig_gguf_writer_add_tensor(w, "t", 5, ne_ok, IG_TYPE_F32, NULL, NULL), IG_EINVAL);
    char long_name[80];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    cr_assert_eq(ig_gguf_writer_add_tensor(w, long_name, 2, ne_ok, IG_TYPE_F32, NULL, NULL),
                 IG_EINVAL);
    cr_assert_eq(ig_gguf_writer_add_tensor(w, "t", 2, ne_ok, IG_TYPE_Q4_0, NULL, NULL), IG_OK);
    cr_assert_eq(ig_gguf_writer_add_tensor(w, "t", 2, ne_ok, IG_TYPE_Q4_0, NULL, NULL), IG_EINVAL);
    uint8_t buf[72] = {0};
    cr_assert_eq(ig_gguf_writer_write(w, 0, 0, buf, 72, NULL), IG_EINVAL); /* not open */
    cr_assert_eq(ig_gguf_writer_open(w, path, &err), IG_OK, "%s", err.message);
    cr_assert_eq(ig_gguf_writer_add_u32(w, "late", 1, NULL), IG_EINVAL);
    cr_assert_eq(ig_gguf_writer_write(w, 1, 0, buf, 1, NULL), IG_EINVAL);
    cr_assert_eq(ig_gguf_writer_write(w, 0, 60, buf, 13, NULL), IG_EINVAL);
    cr_assert_eq(ig_gguf_writer_write(w, 0, 0, buf, 40, NULL), IG_OK);
    ig_error e2 = {0};
    cr_assert_eq(ig_gguf_writer_close(w, &e2), IG_EINVAL);
    cr_assert(strstr(e2.message, "40 of 72"), "%s", e2.message);
    cr_assert_eq(access(path, F_OK), 0);
    ig_gguf_writer_free(w); /* never closed: the partial file goes */
    cr_assert_neq(access(path, F_OK), 0, "the unfinished file was left behind");
}

Test(gguf_writer, unwritable_path) {
    ig_error err = {0};
    ig_gguf_writer *w = NULL;
    cr_assert_eq(ig_gguf_writer_new(&w, &err), IG_OK);
    cr_assert_eq(ig_gguf_writer_open(w, "/nonexistent-dir/x.gguf", &err), IG_EIO);
    cr_assert(strstr(err.message, "/nonexistent-dir/x.gguf"), "%s", err.message);
    ig_gguf_writer_free(w);
}

/* ---- gen-model ---- */

static void gen(const char *shape, const char *wtype, const char *path, uint64_t seed,
                int n_threads, bool is_exact) {
    ig_error err = {0};
    ig_pool *pool = NULL;
    cr_assert_eq(ig_pool_new(n_threads, &pool, &err), IG_OK);
    ig_gen_model_params p = {.shape = ig_gen_shape_find(shape),
                             .wtype = wtype,
                             .vocab_path = ig_test_path("models/stories260K.gguf"),
                             .out_path = path,
                             .seed = seed,
                             .is_exact = is_exact};
    cr_assert_not_null(p.shape);
    cr_assert_eq(ig_gen_model(&p, pool, &err), IG_OK, "%s: %s", wtype, err.message);
    ig_pool_free(pool);
}

static uint32_t tensor_type(const ig_model *m, const char *name) {
    const ig_gguf_tensor *t = ig_gguf_find_tensor(m->gguf, name);
    cr_assert_not_null(t, "no tensor %s", name);
    return t->type;
}

/* Load, check the shape and the matrix types, and run four tokens through it. */
static void check_tiny(const char *wtype, uint32_t want_type, bool is_exact) {
    char tag[32];
    snprintf(tag, sizeof tag, "tiny-%s%s", wtype, is_exact ? "-x" : "");
    const char *path = tmp_path(tag);
    gen("tiny", wtype, path, 7, 2, is_exact);
    ig_error err = {0};
    ig_model *m = NULL;
    cr_assert_eq(ig_model_load(path, &m, &err), IG_OK, "%s: %s", wtype, err.message);
    const ig_model_desc *d = &m->desc;
    cr_assert_str_eq(d->arch, "llama");
    cr_assert_eq(d->n_layer, 2);
    cr_assert_eq(d->n_embd, 256);
    cr_assert_eq(d->n_ff, 768);
    cr_assert_eq(d->n_head, 8);
    cr_assert_eq(d->n_head_kv, 2);
    cr_assert_eq(d->n_vocab, 512);
    cr_assert_eq(m->vocab->n_tokens, 512);
    cr_assert_eq(tensor_type(m, "blk.1.ffn_up.weight"), want_type, "%s", wtype);
    cr_assert_eq(tensor_type(m, "blk.0.attn_q.weight"), want_type, "%s", wtype);
    cr_assert_eq(tensor_type(m, "token_embd.weight"), want_type, "%s", wtype);
    cr_assert_eq(tensor_type(m, "blk.0.attn_norm.weight"), IG_TYPE_F32);

    ig_kv_cache *kv = NULL;
    cr_assert_eq(ig_kv_cache_new(d->n_layer, d->n_head_kv * d->head_dim, 16, 1, &kv, &err), IG_OK);
    int32_t table[1] = {0}, toks[4] = {1, 100, 200, 300}, pos[4] = {0, 1, 2, 3}, seq[4] = {0};
    ig_batch_seq bs = {table, 1};
    ig_batch b = {.n_tokens = 4, .tokens = toks, .pos = pos, .seq = seq, .n_seqs = 1, .seqs = &bs};
    float *logits = malloc((size_t)d->n_vocab * sizeof *logits);
    cr_assert_eq(ig_model_forward(m, &b, kv, NULL, logits, &err), IG_OK, "%s", err.message);
    double sq = 0;
    for (int i = 0; i < d->n_vocab; i++) {
        cr_assert(isfinite(logits[i]), "%s: logit %d is %g", wtype, i, logits[i]);
        sq += (double)logits[i] * logits[i];
    }
    cr_assert_gt(sq, 0.0, "%s: all logits are zero", wtype);
    free(logits);
    ig_kv_cache_free(kv);
    ig_model_free(m);
    unlink(path);
}

Test(gen_model, tiny_every_type_loads_and_runs) {
    static const struct {
        const char *name;
        uint32_t type;
    } cases[] = {
        {"f32", IG_TYPE_F32},   {"f16", IG_TYPE_F16},     {"bf16", IG_TYPE_BF16},
        {"q8_0", IG_TYPE_Q8_0}, {"q4_0", IG_TYPE_Q4_0},   {"Q4_1", IG_TYPE_Q4_1},
        {"q5_0", IG_TYPE_Q5_0}, {"q5_1", IG_TYPE_Q5_1},   {"q2_k", IG_TYPE_Q2_K},
        {"q3_k", IG_TYPE_Q3_K}, {"q4_k", IG_TYPE_Q4_K},   {"q5_k", IG_TYPE_Q5_K},
        {"q6_k", IG_TYPE_Q6_K}, {"q4_k_m", IG_TYPE_Q4_K},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_tiny(cases[i].name, cases[i].type, false);
}

Test(gen_model, exact_mode_loads_and_runs) {
    check_tiny("q4_0", IG_TYPE_Q4_0, true);
    check_tiny("q4_k", IG_TYPE_Q4_K, true);
}

/* The Q4_K_M mix of the tiny shape equals llama.cpp's on the synth model of the same shape. */
Test(gen_model, q4_k_m_matches_llama_cpp_synth) {
    const char *path = tmp_path("q4km");
    gen("tiny", "q4_k_m", path, 3, 1, false);
    ig_error err = {0};
    ig_gguf *mine = NULL, *ref = NULL;
    cr_assert_eq(ig_gguf_open(path, &mine, &err), IG_OK, "%s", err.message);
    cr_assert_eq(ig_gguf_open(ig_test_path("models/synth/synth-q4_k_m.gguf"), &ref, &err), IG_OK,
                 "%s", err.message);
    cr_assert_eq(ig_gguf_n_tensors(mine), ig_gguf_n_tensors(ref));
    int n_q6 = 0;
    for (int64_t i = 0; i < ig_gguf_n_tensors(ref); i++) {
        const ig_gguf_tensor *rt = ig_gguf_tensor_at(ref, i);
        char name[96];
        snprintf(name, sizeof name, "%.*s", (int)rt->name.len, rt->name.ptr);
        const ig_gguf_tensor *mt = ig_gguf_find_tensor(mine, name);
        cr_assert_not_null(mt, "missing %s", name);
        cr_assert_eq(mt->type, rt->type, "%s: %s, llama.cpp has %s", name, ig_type_name(mt->type),
                     ig_type_name(rt->type));
        cr_assert_eq(mt->n_dims, rt->n_dims, "%s", name);
        for (uint32_t d = 0; d < rt->n_dims; d++) cr_assert_eq(mt->ne[d], rt->ne[d], "%s", name);
        n_q6 += rt->type == IG_TYPE_Q6_K;
    }
    cr_assert_eq(n_q6, 3);
    uint32_t ft = 0;
    cr_assert_eq(ig_gguf_get_u32(mine, "general.file_type", &ft), IG_OK);
    cr_assert_eq(ft, 15); /* LLAMA_FTYPE_MOSTLY_Q4_K_M */
    ig_gguf_free(ref);
    ig_gguf_free(mine);
    unlink(path);
}

/*
 * The use-more-bits layers of a 22-layer model (TinyLlama), worked out by hand
 * from the rule: i < 22/8 = 2, i >= 7*22/8 = 19, or (i - 2) % 3 == 2.
 */
Test(gen_model, q4_k_m_layers_of_tinyllama) {
    const int q6_layers[] = {0, 1, 4, 7, 10, 13, 16, 19, 20, 21};
    for (int l = 0; l < 22; l++) {
        bool want_q6 = false;
        for (size_t k = 0; k < sizeof q6_layers / sizeof q6_layers[0]; k++)
            want_q6 |= q6_layers[k] == l;
        char name[64];
        snprintf(name, sizeof name, "blk.%d.attn_v.weight", l);
        cr_assert_eq(ig_gen_tensor_type("q4_k_m", name, 22, 2048),
                     want_q6 ? IG_TYPE_Q6_K : IG_TYPE_Q4_K, "%s", name);
        snprintf(name, sizeof name, "blk.%d.ffn_down.weight", l);
        cr_assert_eq(ig_gen_tensor_type("q4_k_m", name, 22, 5632),
                     want_q6 ? IG_TYPE_Q6_K : IG_TYPE_Q4_K, "%s", name);
        snprintf(name, sizeof name, "blk.%d.attn_k.weight", l);
        cr_assert_eq(ig_gen_tensor_type("q4_k_m", name, 22, 2048), IG_TYPE_Q4_K, "%s", name);
    }
    cr_assert_eq(ig_gen_tensor_type("q4_k_m", "output.weight", 22, 2048), IG_TYPE_Q6_K);
    cr_assert_eq(ig_gen_tensor_type("q4_k_m", "token_embd.weight", 22, 2048), IG_TYPE_Q4_K);
    cr_assert_eq(ig_gen_tensor_type("q4_0", "output.weight", 22, 2048), IG_TYPE_Q4_0);
}

/* qwen2-0.5b's 896-wide rows are not whole 256-blocks: llama.cpp's fallbacks. */
Test(gen_model, k_quant_fallbacks) {
    cr_assert_eq(ig_gen_tensor_type("q4_k_m", "blk.5.attn_q.weight", 24, 896), IG_TYPE_Q5_0);
    cr_assert_eq(ig_gen_tensor_type("q4_k_m", "blk.0.attn_v.weight", 24, 896), IG_TYPE_Q8_0);
    cr_assert_eq(ig_gen_tensor_type("q4_k_m", "blk.0.ffn_down.weight", 24, 4864), IG_TYPE_Q6_K);
    cr_assert_eq(ig_gen_tensor_type("q5_k", "x.weight", 24, 896), IG_TYPE_Q5_1);
    cr_assert_eq(ig_gen_tensor_type("q3_k", "x.weight", 24, 896), IG_TYPE_Q4_0);
    cr_assert_eq(ig_gen_tensor_type("q2_k", "x.weight", 24, 896), IG_TYPE_Q4_0);
    cr_assert_eq(ig_gen_tensor_type("q4_0", "x.weight", 24, 896), IG_TYPE_Q4_0);
}

static char *slurp(const char *path, size_t *len) {
    char *b = ig_test_read_file(path, len);
    cr_assert_not_null(b, "cannot read %s", path);
    return b;
}

Test(gen_model, same_file_whatever_the_threads) {
    char a[256], b[256], c[256];
    snprintf(a, sizeof a, "%s", tmp_path("t1"));
    snprintf(b, sizeof b, "%s", tmp_path("t3"));
    snprintf(c, sizeof c, "%s", tmp_path("seed"));
    gen("tiny", "q4_k_m", a, 11, 1, false);
    gen("tiny", "q4_k_m", b, 11, 3, false);
    gen("tiny", "q4_k_m", c, 12, 2, false);
    size_t la, lb, lc;
    char *da = slurp(a, &la), *db = slurp(b, &lb), *dc = slurp(c, &lc);
    cr_assert_eq(la, lb);
    cr_assert(memcmp(da, db, la) == 0, "1 and 3 threads wrote different files");
    cr_assert_eq(la, lc);
    cr_assert(memcmp(da, dc, la) != 0, "another seed wrote the same file");
    free(da);
    free(db);
    free(dc);
    unlink(a);
    unlink(b);
    unlink(c);
}

Test(gen_model, bad_parameters) {
    ig_error err = {0};
    ig_gen_model_params p = {.shape = ig_gen_shape_find("tiny"),
                             .wtype = "q4_2",
                             .vocab_path = ig_test_path("models/stories260K.gguf"),
                             .out_path = tmp_path("bad")};
    cr_assert_eq(ig_gen_model(&p, NULL, &err), IG_EINVAL);
    cr_assert(strstr(err.message, "q4_2"), "%s", err.message);
    p.wtype = "q8_0";
    p.vocab_path = ig_test_path("models/does-not-exist.gguf");
    ig_error e2 = {0};
    cr_assert_eq(ig_gen_model(&p, NULL, &e2), IG_ENOTFOUND);
    cr_assert_neq(access(p.out_path, F_OK), 0);
    cr_assert_null(ig_gen_shape_find("llama-70b"));
    cr_assert_not_null(ig_gen_shape_find("TinyLlama-1.1B"));
}
