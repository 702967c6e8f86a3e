#!/usr/bin/env bash
# Runs captionbot on this machine: SQLite, an embedded Redis, and the local sandbox Bot API with a
# web chat page unless TELEGRAM_TOKEN is set. Arguments go to `captionbot up`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/captionbot up "$@"
