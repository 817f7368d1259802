#!/usr/bin/env bash
# Installs the Debian packages that Ignis needs to build and test.
# Idempotent: installs only what is missing, and runs `apt-get update` only then.
set -euo pipefail

PKGS=(
  build-essential
  cmake
  pkg-config
  libcriterion-dev
  libpcre2-dev
  libutf8proc-dev
  libjansson-dev
  libmicrohttpd-dev
  curl
  python3
  python3-jinja2
  nodejs
  libxxhash-dev
  clang
  libclang-rt-dev
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done
# npm: Debian's package, unless a nodejs build that bundles npm (NodeSource) is there.
if ! command -v npm >/dev/null 2>&1; then
  missing+=(npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "deps: installing ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
