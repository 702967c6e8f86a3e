#!/usr/bin/env bash
# Recompiles requirements/lock*.txt with the newest versions pyproject.toml allows, installs them
# into a fresh venv and runs the test suite there; the lock files change only when the suite
# passes, so an upgrade is a reviewed diff of the lock. Arguments go to pytest (default: the suite).
#   bash scripts/upgrade-lock.sh                    # upgrade everything, run the whole suite
#   UPGRADE= bash scripts/upgrade-lock.sh           # keep the pins; add what pyproject.toml gained
#   UPGRADE="--upgrade-package rq" bash scripts/upgrade-lock.sh tests/worker
# The lock is compiled against PyPI alone (LOCK_INDEX_URL), so its hashes are PyPI's.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
UPGRADE=${UPGRADE---upgrade}
LOCK_INDEX_URL=${LOCK_INDEX_URL:-https://pypi.org/simple}
TOOLS=.venv-lock-tools
TRIAL=${TRIAL_VENV:-.venv-lock-trial}
CANDIDATE=$(mktemp -d)
trap 'echo "upgrade-lock: stopped; the candidate lock files are in $CANDIDATE" >&2' ERR

if [ ! -x "$TOOLS/bin/pip-compile" ]; then
  "$PYTHON" -m venv "$TOOLS"
  "$TOOLS/bin/pip" install --quiet pip-tools==7.6.2
fi

compile() {  # compile OUTPUT [pip-compile options]: starts from the current pins in OUTPUT
  local output=$1; shift
  [ ! -f "requirements/$output" ] || cp "requirements/$output" "$CANDIDATE/$output"
  # Only LOCK_INDEX_URL: a local mirror or wheel folder from pip's configuration would put its
  # own files' hashes into the lock.
  PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= PIP_EXTRA_INDEX_URL= PIP_CONSTRAINT= \
  CUSTOM_COMPILE_COMMAND="bash scripts/upgrade-lock.sh" \
    "$TOOLS/bin/pip-compile" --quiet --generate-hashes --allow-unsafe --strip-extras \
      --no-emit-index-url --no-emit-find-links --index-url "$LOCK_INDEX_URL" \
      $UPGRADE "$@" --output-file "$CANDIDATE/$output" pyproject.toml
}
# The test lock is the whole set; the runtime lock (the Dockerfile's) is held to the same versions.
compile lock-test.txt --extra test
sed -i "s#$CANDIDATE/#requirements/#" "$CANDIDATE/lock-test.txt"
cp "$CANDIDATE/lock-test.txt" "$CANDIDATE/constraint.txt"
compile lock.txt --constraint "$CANDIDATE/constraint.txt"
sed -i "s#$CANDIDATE/constraint.txt#requirements/lock-test.txt#; s#$CANDIDATE/#requirements/#" "$CANDIDATE/lock.txt"

if cmp -s "$CANDIDATE/lock-test.txt" requirements/lock-test.txt && cmp -s "$CANDIDATE/lock.txt" requirements/lock.txt; then
  echo "the lock is already the newest that pyproject.toml allows"
  rm -rf "$CANDIDATE"
  exit 0
fi

rm -rf "$TRIAL"
VENV="$TRIAL" LOCK="$CANDIDATE/lock-test.txt" bash scripts/setup.sh
# The suite reads requirements/ too (tests/test_lock.py), so it runs with the candidate in place;
# the previous lock comes back if it fails.
mkdir -p "$CANDIDATE/previous"
cp requirements/lock-test.txt requirements/lock.txt "$CANDIDATE/previous/"
cp "$CANDIDATE/lock-test.txt" "$CANDIDATE/lock.txt" requirements/
if ! "$TRIAL/bin/python" -m pytest "$@"; then
  cp "$CANDIDATE/previous/lock-test.txt" "$CANDIDATE/previous/lock.txt" requirements/
  echo "upgrade-lock: the suite failed on the candidate; requirements/ is as it was, the candidate is in $CANDIDATE" >&2
  exit 1
fi
rm -rf "$TRIAL" "$CANDIDATE"
git --no-pager diff --stat -- requirements/
