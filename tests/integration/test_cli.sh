#!/usr/bin/env bash
# test_cli.sh: the `ignis` command line, as a user runs it: outputs, exit codes,
# one-line errors. Needs IGNIS_BIN (set by ctest) and IGNIS_TEST_DATA.
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

# --- run: for every reference prompt, greedy output is the prompt + llama.cpp's text,
# and stdout holds nothing else
python3 - "$DATA/reference/stories260K.jsonl" "$tmp" <<'PY'
import json, sys
for i, line in enumerate(open(sys.argv[1])):
    d = json.loads(line)
    open(f"{sys.argv[2]}/prompt{i}", "w").write(d["prompt"])
    open(f"{sys.argv[2]}/want{i}", "w").write(d["prompt"] + d["output_text"] + "\n")
    open(f"{sys.argv[2]}/n{i}", "w").write(str(d["n_predict"]))
PY
for f in "$tmp"/prompt*; do
    i=${f##*prompt}
    expect_exit 0 "$BIN" run -m "$MODEL" -p "$(cat "$f")" -n "$(cat "$tmp/n$i")" --temp 0 -t 2 || continue
    cmp -s "$tmp/out" "$tmp/want$i" && ok || bad "run greedy output for '$(cat "$f")' differs:
got:  $(cat "$tmp/out")
want: $(cat "$tmp/want$i")"
done
grep -q "tokens/s" "$tmp/err" && ok || bad "run prints no tokens/s on stderr"
grep -q "tokens/s" "$tmp/out" && bad "run prints speed on stdout" || ok

# same seed, same text; sampled output is not the greedy one for every seed
expect_exit 0 "$BIN" run -m "$MODEL" -p "Lily" -n 40 --temp 1 --seed 7
a=$(cat "$tmp/out")
expect_exit 0 "$BIN" run -m "$MODEL" -p "Lily" -n 40 --temp 1 --seed 7
b=$(cat "$tmp/out")
[ "$a" = "$b" ] && ok || bad "same seed gave different text"
expect_exit 0 "$BIN" run -m "$MODEL" -p "Lily" -n 40 --temp 1 --seed 8
c=$(cat "$tmp/out")
[ "$a" != "$c" ] && ok || bad "seeds 7 and 8 gave the same 40 tokens"

# stop string: output ends before it
expect_exit 0 "$BIN" run -m "$MODEL" -p "Once upon a time" -n 48 --temp 0 --stop "Lily"
[ "$(cat "$tmp/out")" = "Once upon a time, there was a little girl named " ] && ok || bad "stop string not honoured: $(cat "$tmp/out")"

# empty prompt: starts from BOS (the documented story)
expect_exit 0 "$BIN" run -m "$MODEL" -p "" -n 20 --temp 0
case "$(cat "$tmp/out")" in "Once upon a time, there was a little girl named Lily"*) ok ;; *) bad "empty prompt: $(cat "$tmp/out")" ;; esac

# --- tokenize
expect_exit 0 "$BIN" tokenize -m "$MODEL" "Once upon a time"
[ "$(cat "$tmp/out")" = "1 403 407 261 378" ] && ok || bad "tokenize: $(cat "$tmp/out")"
expect_exit 0 "$BIN" tokenize -m "$MODEL" --no-bos "Once upon a time"
[ "$(cat "$tmp/out")" = "403 407 261 378" ] && ok || bad "tokenize --no-bos: $(cat "$tmp/out")"
printf 'Once upon a time' >"$tmp/in.txt"
expect_exit 0 "$BIN" tokenize -m "$MODEL" --file "$tmp/in.txt"
[ "$(cat "$tmp/out")" = "1 403 407 261 378" ] && ok || bad "tokenize --file: $(cat "$tmp/out")"
expect_exit 0 "$BIN" tokenize -m "$MODEL" --pieces "Once"
[ "$(wc -l <"$tmp/out")" -ge 2 ] && ok || bad "tokenize --pieces: $(cat "$tmp/out")"
# special-token text is plain text unless asked
expect_exit 0 "$BIN" tokenize -m "$MODEL" --no-bos "<s>"
[ "$(cat "$tmp/out")" != "1" ] && ok || bad "<s> parsed as special without --parse-special"
expect_exit 0 "$BIN" tokenize -m "$MODEL" --no-bos --parse-special "<s>"

# --- info
expect_exit 0 "$BIN" info -m "$MODEL"
grep -q "architecture:  llama" "$tmp/out" && grep -q "layers:        5" "$tmp/out" && grep -q "512 tokens" "$tmp/out" && ok || bad "info: $(cat "$tmp/out")"

# --- help everywhere, errors are one line and non-zero
for cmd in "" run tokenize info; do
    expect_exit 0 "$BIN" $cmd --help
    grep -q "usage:" "$tmp/out" && ok || bad "'$cmd --help' prints no usage"
done
expect_exit 2 "$BIN" frobnicate
expect_exit 2 "$BIN" run -m "$MODEL" -p x --bogus
[ "$(wc -l <"$tmp/err")" -eq 1 ] && ok || bad "unknown option: not one line: $(cat "$tmp/err")"
expect_exit 2 "$BIN" run -m "$MODEL" -p x -n abc
expect_exit 2 "$BIN" run -m "$MODEL" -p x --top-p 2
expect_exit 2 "$BIN" run -m "$MODEL"
expect_exit 1 "$BIN" run -m /nonexistent.gguf -p x
[ "$(wc -l <"$tmp/err")" -eq 1 ] && ok || bad "missing model: not one line: $(cat "$tmp/err")"
head -c 1000 "$MODEL" >"$tmp/trunc.gguf"
expect_exit 1 "$BIN" info -m "$tmp/trunc.gguf"
[ "$(wc -l <"$tmp/err")" -eq 1 ] && ok || bad "truncated model: not one line: $(cat "$tmp/err")"
expect_exit 2 "$BIN" tokenize -m "$MODEL"

echo "cli: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
