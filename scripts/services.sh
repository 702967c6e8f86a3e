#!/usr/bin/env bash
# Makes sure the test services are there: PostgreSQL (127.0.0.1:5432, trust auth, database `test`),
# Redis (127.0.0.1:6379), Debian's docker-compose (to validate the compose file) and Debian's
# chromium (the chat page's browser test drives it headless through Playwright).
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
apt_install() {
  $SUDO apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

command -v docker-compose >/dev/null || apt_install docker-compose
command -v chromium >/dev/null || apt_install --no-install-recommends chromium
command -v redis-server >/dev/null || port_open 6379 || apt_install redis-server
if ! port_open 6379; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
fi
if ! port_open 5432; then
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  conf=/etc/postgresql/$version/main/pg_hba.conf
  $SUDO sed -i -E 's/^(host|local)(.*)(peer|scram-sha-256|md5)$/\1\2trust/' "$conf"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start
fi
for _ in $(seq 30); do port_open 5432 && port_open 6379 && break; sleep 1; done
psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE test" >/dev/null
