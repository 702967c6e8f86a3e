#!/bin/sh
# Prints the lock file for this machine (`uname -m`), relative to the repository root:
#   sh scripts/lock-path.sh test      # requirements/lock-test.txt, or lock-test-arm64.txt on aarch64
#   sh scripts/lock-path.sh runtime   # requirements/lock.txt, or lock-arm64.txt on aarch64
# scripts/setup.sh, scripts/upgrade-lock.sh and the Dockerfile ask it, so all three agree.
# Plain sh: the Dockerfile runs it before anything but the base image is there.
set -eu
case "$(uname -m)" in
  aarch64 | arm64) suffix=-arm64 ;;
  *) suffix= ;;  # x86_64, and any other machine, as before the arm64 lock
esac
case "${1:-}" in
  test) echo "requirements/lock-test$suffix.txt" ;;
  runtime) echo "requirements/lock$suffix.txt" ;;
  *) echo "usage: sh scripts/lock-path.sh test|runtime" >&2; exit 2 ;;
esac
