#!/usr/bin/env bash
# test_config_cli.sh: `ignis config` as a user runs it: the same setting given by a
# TOML file, an IGNIS_* variable and a flag (flag > env > file > default, each
# value's source in the dump), one-line errors naming the key with exit 1,
# warnings for unknown IGNIS_* variables, and --markdown equal to docs/CONFIG.md.
set -u
BIN=${IGNIS_BIN:?IGNIS_BIN not set}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
fails=0
passes=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

# run_cfg CODE ARGS...: `ignis config ARGS` with a clean IGNIS_* environment
# plus whatever ENVS holds; output in $tmp/out, $tmp/err.
ENVS=()
run_cfg() {
    local want=$1; shift
    env -u IGNIS_CONFIG -u IGNIS_PORT -u IGNIS_BLOCK_SIZE -u IGNIS_HOST "${ENVS[@]}" \
        "$BIN" config "$@" >"$tmp/out" 2>"$tmp/err"
    local got=$?
    if [ "$got" -ne "$want" ]; then
        bad "'config $*' (env ${ENVS[*]}) exited $got, expected $want; stderr: $(head -c 300 "$tmp/err")"
        return 1
    fi
    ok
}
# has FILE LINE-REGEX
has() { grep -Eq -- "$2" "$1" && ok || bad "$1 lacks /$2/: $(cat "$1")"; }

cat >"$tmp/ignis.toml" <<'TOML'
[server]
host = "0.0.0.0"
port = 1001

[cache]
block_size = 32
TOML

ENVS=(IGNIS_PORT=1002 IGNIS_BLOCK_SIZE=64)
run_cfg 0 --config "$tmp/ignis.toml" --port 1003 && {
    has "$tmp/out" '^port = 1003 +# flag --port$'
    has "$tmp/out" '^block_size = 64 +# env IGNIS_BLOCK_SIZE$'
    has "$tmp/out" "^host = \"0.0.0.0\" +# file $tmp/ignis.toml:2\$"
    has "$tmp/out" '^threads = 0 +# default$'
}
run_cfg 0 --config "$tmp/ignis.toml" && has "$tmp/out" '^port = 1002 +# env IGNIS_PORT$'
ENVS=(IGNIS_CONFIG="$tmp/ignis.toml")
run_cfg 0 --dump && has "$tmp/out" "^port = 1001 +# file $tmp/ignis.toml:3\$"
ENVS=()
run_cfg 0 && has "$tmp/out" '^port = 8080 +# default$'

# The dump reads back as a config file with the same values.
ENVS=(IGNIS_API_KEYS=a,b)
run_cfg 0 --config "$tmp/ignis.toml" --port 9 --no-prefix-caching --log-level debug
grep -v '^#' "$tmp/out" | sed 's/ *#.*$//' >"$tmp/back.toml"
cp "$tmp/out" "$tmp/first"
ENVS=()
run_cfg 0 --config "$tmp/back.toml" && {
    diff <(grep -v '^#' "$tmp/first" | sed 's/ *#.*$//') <(grep -v '^#' "$tmp/out" | sed 's/ *#.*$//') >/dev/null &&
        ok || bad "the dump did not read back to the same values"
}

# Errors: one line, exit 1, naming the key and where it was set.
printf '[cache]\nblock_size = 0\n' >"$tmp/bad.toml"
run_cfg 1 --config "$tmp/bad.toml" && has "$tmp/err" "^ignis: config: $tmp/bad.toml:2: \[cache\] block_size: 0 is out of range \[1, 256\]\$"
printf '[server]\nprot = 1\n' >"$tmp/bad.toml"
run_cfg 1 --config "$tmp/bad.toml" && has "$tmp/err" 'unknown key \[server\] prot \(did you mean port\?\)$'
printf '[server]\nport = \n' >"$tmp/bad.toml"
run_cfg 1 --config "$tmp/bad.toml" && has "$tmp/err" "bad.toml:2:8: expected a value, found end of line\$"
ENVS=(IGNIS_PORT=abc)
run_cfg 1 && has "$tmp/err" "^ignis: config: IGNIS_PORT: 'abc' is not an integer\$"
ENVS=()
run_cfg 1 --port 70000 && has "$tmp/err" '^ignis: config: --port: 70000 is out of range \[0, 65535\]$'
run_cfg 1 --prot 1 && has "$tmp/err" "unknown option '--prot' \(did you mean --port\?\)"
run_cfg 1 --config "$tmp/missing.toml" && has "$tmp/err" 'cannot open config file'
run_cfg 2 stray-argument && has "$tmp/err" "unexpected argument 'stray-argument'"
[ "$(wc -l <"$tmp/err")" -eq 1 ] && ok || bad "error is not one line: $(cat "$tmp/err")"

# Unknown IGNIS_* variables warn; known non-settings do not.
ENVS=(IGNIS_PROT=1 IGNIS_MODEL=/x.gguf IGNIS_CPU=avx2)
run_cfg 0 && {
    has "$tmp/err" '^ignis: warning: IGNIS_PROT is not an Ignis setting \(did you mean IGNIS_PORT\?\); ignored$'
    [ "$(wc -l <"$tmp/err")" -eq 1 ] && ok || bad "expected one warning: $(cat "$tmp/err")"
}
ENVS=()

# --help lists the flags; --markdown is docs/CONFIG.md.
run_cfg 0 --help && has "$tmp/out" '--kv-cache-mb MIB'
run_cfg 0 --markdown && { cmp -s "$tmp/out" "$ROOT/docs/CONFIG.md" && ok ||
    bad "docs/CONFIG.md differs from 'ignis config --markdown' (regenerate it)"; }

echo "test_config_cli.sh: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
