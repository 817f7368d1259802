#!/usr/bin/env bash
# test_gen_bench.sh: `ignis gen-model` and `ignis bench` as a user runs them:
# generated files load and run, the bench table and JSON have the promised
# fields with sane values, bad arguments give one-line errors. Tiny shapes
# only. Needs IGNIS_BIN (set by ctest) and IGNIS_TEST_DATA.
set -u
BIN=${IGNIS_BIN:?IGNIS_BIN not set}
DATA=${IGNIS_TEST_DATA:-../shared}
MODEL=$DATA/models/stories260K.gguf
fails=0
passes=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

# expect_exit CODE CMD...: run, capture stdout/stderr into $tmp/out, $tmp/err
expect_exit() {
    local want=$1; shift
    "$@" >"$tmp/out" 2>"$tmp/err"
    local got=$?
    if [ "$got" -ne "$want" ]; then bad "'$*' exited $got, expected $want; stderr: $(head -c 300 "$tmp/err")"; return 1; fi
    ok
}

# expect_error CMD...: exit 2 (usage) or 1, nothing on stdout, exactly one line on stderr
expect_error() {
    "$@" >"$tmp/out" 2>"$tmp/err"
    local got=$?
    if [ "$got" -eq 0 ]; then bad "'$*' succeeded, expected an error"; return; fi
    if [ -s "$tmp/out" ]; then bad "'$*' wrote to stdout: $(head -c 200 "$tmp/out")"; return; fi
    local lines
    lines=$(wc -l <"$tmp/err")
    if [ "$lines" -ne 1 ] || ! grep -q '^ignis: ' "$tmp/err"; then
        bad "'$*' stderr is not one 'ignis: ' line: $(cat "$tmp/err")"; return
    fi
    ok
}

# --- gen-model: tiny shape in several types; info reads it back, run generates from it
for t in f16 q8_0 q4_0 q4_k_m q6_k; do
    f=$tmp/tiny-$t.gguf
    expect_exit 0 "$BIN" gen-model --shape tiny --type $t -o "$f" -t 2 --seed 5 || continue
    expect_exit 0 "$BIN" info -m "$f" || continue
    grep -q '^layers: *2$' "$tmp/out" && grep -q '^embedding: *256$' "$tmp/out" &&
        grep -q '^vocab: *512 tokens' "$tmp/out" && ok || bad "info of tiny $t: $(cat "$tmp/out")"
    expect_exit 0 "$BIN" run -m "$f" -p "Once upon a time" -n 4 --temp 0 -t 2 || continue
    grep -q '^Once upon a time' "$tmp/out" && ok || bad "run on tiny $t printed: $(cat "$tmp/out")"
done
# the Q4_K_M mix: 3 q6_K matrices in a 2-layer model (output, layer 1's attn_v and ffn_down)
expect_exit 0 "$BIN" info -m "$tmp/tiny-q4_k_m.gguf" &&
    { grep -q 'tensor types: *f32 x5 q4_K x13 q6_K x3$' "$tmp/out" && ok ||
        bad "q4_k_m types: $(grep 'tensor types' "$tmp/out")"; }
# a realistic vocabulary: the file takes the vocab file's size
if [ -f "$DATA/vocab/ggml-vocab-llama-spm.gguf" ]; then
    expect_exit 0 "$BIN" gen-model --shape tiny --type q4_0 --vocab "$DATA/vocab/ggml-vocab-llama-spm.gguf" \
        -o "$tmp/spm.gguf" &&
        expect_exit 0 "$BIN" info -m "$tmp/spm.gguf" &&
        { grep -q '^vocab: *32000 tokens' "$tmp/out" && ok || bad "spm vocab: $(grep vocab "$tmp/out")"; }
fi
expect_exit 0 "$BIN" gen-model --help && { grep -q 'tinyllama-1.1b' "$tmp/out" && ok || bad "gen-model --help lists no shapes"; }

# --- gen-model errors
expect_error "$BIN" gen-model --shape llama-70b --type q4_0 -o "$tmp/x.gguf"
expect_error "$BIN" gen-model --shape tiny --type q4_2 -o "$tmp/x.gguf"
expect_error "$BIN" gen-model --shape tiny --type q4_0
expect_error "$BIN" gen-model --type q4_0 -o "$tmp/x.gguf"
expect_error "$BIN" gen-model --shape tiny --type q4_0 -o "$tmp/x.gguf" --vocab "$tmp/missing.gguf"
expect_error "$BIN" gen-model --shape tiny --type q4_0 -o /nonexistent-dir/x.gguf
expect_error "$BIN" gen-model --shape tiny --type q4_0 -o "$tmp/x.gguf" --bogus
[ -e "$tmp/x.gguf" ] && bad "a failed gen-model left $tmp/x.gguf" || ok

# --- bench: markdown table
expect_exit 0 "$BIN" bench -m "$MODEL" -p 8 -n 4 -r 2 -t 2 --membw-mib 64 &&
    {
        grep -q '^| model *| *size *| *params *| *type *| *threads *| *test *| *t/s' "$tmp/out" &&
            grep -q '| *pp8 *|' "$tmp/out" && grep -q '| *tg4 *|' "$tmp/out" && ok ||
            bad "bench table: $(cat "$tmp/out")"
    }

# --- bench: JSON with llama-bench's field names and sane values
expect_exit 0 "$BIN" bench -m "$MODEL" -p 8 -n 4 -r 2 -t 2 -o json --membw-mib 64 &&
    python3 - "$tmp/out" "$MODEL" <<'PY' && ok || bad "bench -o json: $(head -c 600 "$tmp/out")"
import json, sys
rows = json.load(open(sys.argv[1]))
assert isinstance(rows, list) and len(rows) == 2, rows
pp, tg = rows
for r in rows:
    for k in ("model_filename", "model_type", "model_size", "model_n_params", "n_prompt", "n_gen",
              "n_threads", "avg_ts", "stddev_ts", "avg_ns", "stddev_ns", "samples_ns", "samples_ts",
              "test", "test_type", "weight_bytes", "gb_per_s", "bw_fraction", "membw_gb_per_s"):
        assert k in r, k
    assert r["model_filename"] == sys.argv[2]
    assert r["n_threads"] == 2
    for k in ("avg_ts", "avg_ns", "model_size", "model_n_params", "weight_bytes", "gb_per_s",
              "bw_fraction", "membw_gb_per_s"):
        assert r[k] > 0, (k, r[k])
    assert r["stddev_ts"] >= 0 and r["stddev_ns"] >= 0
    assert len(r["samples_ns"]) == 2 and len(r["samples_ts"]) == 2
    assert r["model_n_params"] > 250000 and r["model_size"] > 1000000  # stories260K
    # tokens/s and ns agree: avg_ts ~ n_tokens / mean time
    n = r["n_prompt"] or r["n_gen"]
    assert abs(r["avg_ts"] - sum(n * 1e9 / x for x in r["samples_ns"]) / 2) < 1e-3 * r["avg_ts"]
assert pp["test_type"] == "pp" and pp["test"] == "pp8" and pp["n_prompt"] == 8 and pp["n_gen"] == 0
assert tg["test_type"] == "tg" and tg["test"] == "tg4" and tg["n_prompt"] == 0 and tg["n_gen"] == 4
# the bandwidth fraction is achieved GB/s over the measured bandwidth
assert abs(tg["bw_fraction"] - tg["gb_per_s"] / tg["membw_gb_per_s"]) < 1e-4 * tg["bw_fraction"]
# tg reads the weights once per token: GB/s = weight_bytes * tokens/s (mean time based)
assert abs(tg["gb_per_s"] - tg["weight_bytes"] * 4 / tg["avg_ns"]) < 1e-3 * tg["gb_per_s"]
PY

# -p 0 skips pp; a given bandwidth is used as is
expect_exit 0 "$BIN" bench -m "$MODEL" -p 0 -n 2 -r 1 -o json --membw-gbps 50 &&
    python3 - "$tmp/out" <<'PY' && ok || bad "bench -p 0: $(head -c 400 "$tmp/out")"
import json, sys
rows = json.load(open(sys.argv[1]))
assert len(rows) == 1 and rows[0]["test_type"] == "tg", rows
assert rows[0]["membw_gb_per_s"] == 50
PY

# --- bench --membw
expect_exit 0 "$BIN" bench --membw -o json -t 2 --membw-mib 64 &&
    python3 - "$tmp/out" <<'PY' && ok || bad "bench --membw -o json: $(cat "$tmp/out")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["read_gb_per_s"] > 0, d
PY
expect_exit 0 "$BIN" bench --membw -t 1 --membw-mib 64 &&
    { grep -q '^read bandwidth: [0-9.]* GB/s' "$tmp/out" && ok || bad "bench --membw: $(cat "$tmp/out")"; }

# --- bench --parallel: the serving engine under concurrent load
expect_exit 0 "$BIN" bench -m "$MODEL" --parallel 1,4 -n 4 --prompt-len 24 -t 2 -o json &&
    python3 - "$tmp/out" "$MODEL" <<'PY' && ok || bad "bench --parallel -o json: $(head -c 600 "$tmp/out")"
import json, sys
rows = json.load(open(sys.argv[1]))
assert isinstance(rows, list) and len(rows) == 2, rows
assert [r["n_parallel"] for r in rows] == [1, 4]
for r in rows:
    for k in ("n_parallel", "avg_ts", "ttft_ms_p50", "ttft_ms_p95", "itl_ms_p50", "itl_ms_p95",
              "itl_ms_p99", "n_generated", "wall_ms", "n_gen", "n_prompt", "n_threads"):
        assert k in r, k
    assert r["model_filename"] == sys.argv[2] and r["test"] == "engine"
    assert r["n_gen"] == 4 and r["n_prompt"] == 24 and r["n_threads"] == 2
    assert r["prefix_cache"] is True and r["shared_prefix"] == 0
    assert r["n_generated"] == 4 * r["n_parallel"], r
    assert r["avg_ts"] > 0 and r["wall_ms"] > 0
    # aggregate tokens/s is generated tokens over the wall time
    assert abs(r["avg_ts"] - r["n_generated"] * 1000 / r["wall_ms"]) < 1e-3 * r["avg_ts"]
    assert 0 < r["ttft_ms_p50"] <= r["ttft_ms_p95"] <= r["wall_ms"]
    assert 0 <= r["itl_ms_p50"] <= r["itl_ms_p95"] <= r["itl_ms_p99"] <= r["wall_ms"]
PY
# a shared prefix of two full blocks: with the cache every request reuses them (the warm-up
# request cached them); without it none does
expect_exit 0 "$BIN" bench -m "$MODEL" --parallel 2 -n 2 --shared-prefix 40 -t 2 -o json &&
    python3 - "$tmp/out" <<'PY' && ok || bad "bench --shared-prefix: $(head -c 600 "$tmp/out")"
import json, sys
r, = json.load(open(sys.argv[1]))
assert r["shared_prefix"] == 40 and r["n_prompt"] == 72 and r["prefix_cache"] is True, r
assert r["n_cached_tokens"] == 2 * 32, r
PY
expect_exit 0 "$BIN" bench -m "$MODEL" --parallel 2 -n 2 --shared-prefix 40 --no-prefix-cache -t 2 -o json &&
    python3 - "$tmp/out" <<'PY' && ok || bad "bench --no-prefix-cache: $(head -c 600 "$tmp/out")"
import json, sys
r, = json.load(open(sys.argv[1]))
assert r["prefix_cache"] is False and r["n_cached_tokens"] == 0, r
PY
expect_exit 0 "$BIN" bench -m "$MODEL" --parallel 2 -n 2 --prompt-len 8 -t 1 &&
    {
        grep -q '^| model *| *threads *| *parallel *|.*| *TTFT p50 *|.*| *ITL p99 *|$' "$tmp/out" &&
            grep -q '^| .* | *1 | *2 | *8 | *0 | on *| *2 |' "$tmp/out" && ok ||
            bad "bench --parallel table: $(cat "$tmp/out")"
    }

# --- bench errors
expect_error "$BIN" bench -m "$MODEL" -p x
expect_error "$BIN" bench -m "$MODEL" -r 0
expect_error "$BIN" bench -m "$MODEL" -o csv
expect_error "$BIN" bench -m "$MODEL" -t 1,,
expect_error "$BIN" bench -m "$tmp/missing.gguf" -p 1 -n 0
expect_error "$BIN" bench --membw -m "$MODEL"
expect_error "$BIN" bench --membw-gbps -3
expect_error "$BIN" bench --frobnicate
expect_error "$BIN" bench -m "$MODEL" --parallel 0
expect_error "$BIN" bench -m "$MODEL" --parallel 2 -n 2,3
expect_error "$BIN" bench -m "$MODEL" --parallel 2 --shared-prefix 10 --prompt-len 10
expect_error "$BIN" bench -m "$MODEL" --shared-prefix 10
expect_error "$BIN" bench -m "$MODEL" --parallel 2 -p 8
expect_error "$BIN" bench -m "$MODEL" --parallel 2 --prompt-len 100000

echo "test_gen_bench: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
