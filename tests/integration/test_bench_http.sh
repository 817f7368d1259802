#!/usr/bin/env bash
# test_bench_http.sh: `ignis bench --url` (the HTTP load generator) against a
# real `ignis serve` on loopback: it completes exactly the requested number of
# requests per level and mode with no errors, reports the tokens the server
# generated, and counts refused requests (wrong API key) as errors with exit 1.
# No timing is checked. Needs IGNIS_BIN, IGNIS_TEST_DATA and python3.
set -u
BIN=${IGNIS_BIN:?IGNIS_BIN not set}
DATA=${IGNIS_TEST_DATA:-../shared}
MODEL=$DATA/models/stories260K.gguf
fails=0
passes=0
tmp=$(mktemp -d)
PID=
cleanup() {
    [ -n "$PID" ] && kill -KILL "$PID" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

"$BIN" serve -m "$MODEL" --host 127.0.0.1 --port 0 -t 1 --api-key k1 --log-level warn \
    >"$tmp/serve.out" 2>"$tmp/serve.log" &
PID=$!
PORT=
for _ in $(seq 100); do
    PORT=$(sed -n 's/.*http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/serve.out" | head -1)
    [ -n "$PORT" ] && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
done
[ -n "$PORT" ] || { echo "server did not start:"; cat "$tmp/serve.log"; exit 1; }
URL=http://127.0.0.1:$PORT

# 2 modes x 3 levels, 25 timed requests each, 4 tokens each (greedy: no early stop)
"$BIN" bench --url "$URL" --api-key k1 --parallel 1,3,8 --requests 25 --mode both -n 4 -o json \
    >"$tmp/bench.json" 2>"$tmp/bench.err"
rc=$?
[ "$rc" = 0 ] && ok || bad "bench exited $rc: $(head -c 300 "$tmp/bench.err")"
python3 - "$tmp/bench.json" <<'PY' && ok || bad "bench JSON: $(head -c 600 "$tmp/bench.json")"
import json, sys
rows = json.load(open(sys.argv[1]))
assert [(r["mode"], r["concurrency"]) for r in rows] == [(m, c) for m in ("plain", "stream") for c in (1, 3, 8)], rows
for r in rows:
    assert r["requests"] == 25 and r["errors"] == 0, r
    assert r["tokens"] == 25 * 4, r
    assert r["req_per_s"] > 0 and r["duration_s"] > 0, r
    l = r["latency_ms"]
    assert 0 < l["p50"] <= l["p95"] <= l["p99"] <= l["max"], r
    assert (r["ttft_ms"] is None) == (r["mode"] == "plain"), r
    assert r["ttft_ms"] is None or 0 < r["ttft_ms"]["p50"] <= l["max"], r
PY

# the markdown table: a header and one row per level
"$BIN" bench --url "$URL/v1/completions" --api-key k1 --parallel 2 --requests 5 -n 2 >"$tmp/bench.md" 2>&1
[ $? = 0 ] && [ "$(grep -c '^| plain | 2 | 5 | 0 |' "$tmp/bench.md")" = 1 ] && ok || bad "md table: $(cat "$tmp/bench.md")"

# refused requests are errors (and the exit status says so)
"$BIN" bench --url "$URL" --api-key wrong --parallel 2 --requests 6 -n 2 -o json >"$tmp/bad.json" 2>"$tmp/bad.err"
rc=$?
[ "$rc" = 1 ] && ok || bad "bench with a wrong key exited $rc"
python3 -c "import json,sys; r=json.load(open(sys.argv[1]))[0]; assert r['requests'] == 0 and r['errors'] == 6, r" "$tmp/bad.json" && ok || bad "wrong key: $(cat "$tmp/bad.json")"
grep -q 'HTTP status 401' "$tmp/bad.err" && ok || bad "no 401 message: $(cat "$tmp/bad.err")"

# the server answered exactly these: 2 modes x 3 levels x 25, one warm-up per connection,
# then 5 + one warm-up for each of the 2 md-table connections
curl -s -H 'Authorization: Bearer k1' "$URL/metrics" >"$tmp/metrics"
want=$((2 * (25 * 3 + 1 + 3 + 8) + 5 + 2))
got=$(grep -F 'route="/v1/completions",status="200"}' "$tmp/metrics" | awk '{print $2}')
[ "$got" = "$want" ] && ok || bad "server counted ${got:-none} completions, want $want: $(grep 'requests_total' "$tmp/metrics" | head -5)"

# bad arguments: one line, exit 2
"$BIN" bench --url ftp://x >"$tmp/o" 2>"$tmp/e"
[ $? = 2 ] && [ "$(wc -l <"$tmp/e")" = 1 ] && ok || bad "bad url: $(cat "$tmp/e")"
"$BIN" bench --url "$URL" --parallel 0 >"$tmp/o" 2>"$tmp/e"
[ $? = 2 ] && ok || bad "--parallel 0 accepted"

kill -TERM "$PID"; wait "$PID"; rc=$?; PID=
[ "$rc" = 0 ] && ok || bad "server exited $rc after SIGTERM"
grep -q 'Sanitizer\|runtime error:' "$tmp/serve.log" && bad "sanitizer report: $(head -c 2000 "$tmp/serve.log")" || ok
echo "test_bench_http: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
