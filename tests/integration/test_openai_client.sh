#!/usr/bin/env bash
# test_openai_client.sh: the official OpenAI Node client (npm `openai`, installed by
# scripts/test-setup.sh into <build>/npm or $IGNIS_NPM_DIR) against `ignis serve` on a
# free loopback port, with an API key and the chatml template (stories260K has none).
set -u
BIN=${IGNIS_BIN:?IGNIS_BIN not set}
DATA=${IGNIS_TEST_DATA:-../shared}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
NPM=${IGNIS_NPM_DIR:-$(cd "$(dirname "$BIN")" && pwd)/npm}
bash "$ROOT/scripts/test-setup.sh" "$NPM" || { echo "FAIL: cannot install the npm packages into $NPM"; exit 1; }
tmp=$(mktemp -d)
"$BIN" serve -m "$DATA/models/stories260K.gguf" --host 127.0.0.1 --port 0 -t 1 \
    --api-key test-key --chat-template chatml >"$tmp/out" 2>"$tmp/log" &
pid=$!
trap 'kill -KILL $pid 2>/dev/null; rm -rf "$tmp"' EXIT
port=
for _ in $(seq 100); do
    port=$(sed -n 's/.*http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/out" | head -1)
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { echo "FAIL: the server did not start"; cat "$tmp/log"; exit 1; }
timeout 120 node "$ROOT/tests/integration/openai_client.test.mjs" "$NPM" "http://127.0.0.1:$port/v1" test-key
rc=$?
kill -TERM $pid
for _ in $(seq 100); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
wait $pid; src=$?
[ $src -eq 0 ] || { echo "FAIL: server exit status $src"; rc=1; }
exit $rc
