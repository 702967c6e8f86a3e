#!/usr/bin/env bash
# Runs the test suite against real PostgreSQL and Redis: uses the ones on 127.0.0.1 when they
# answer, otherwise installs (Debian packages) and starts local ones. Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/services.sh
# --durations: the slowest tests, for keeping CI (this script on a fresh clone) under 20 minutes
exec .venv/bin/python -m pytest --durations=15 "$@"
