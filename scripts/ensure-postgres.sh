#!/usr/bin/env bash
# Make sure the PostgreSQL the tests use is reachable; start (or, in CI, install) it if not.
# On a developer's machine without PostgreSQL this only warns: the PostgreSQL tests then skip.
set -u
url="${MMSGATE_TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/test}"
py=".venv/bin/python"

reachable() {
  "$py" - "$url" <<'PY' >/dev/null 2>&1
import sys, psycopg
psycopg.connect(sys.argv[1], connect_timeout=3).close()
PY
}

reachable && exit 0
if command -v pg_ctlcluster >/dev/null 2>&1 && ls /etc/postgresql >/dev/null 2>&1; then
  for version in $(ls /etc/postgresql); do
    pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 || true
  done
elif [ "${CI:-}" = "true" ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing PostgreSQL for the tests"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  for version in $(ls /etc/postgresql); do
    conf="/etc/postgresql/$version/main/pg_hba.conf"
    sed -i 's/\(host.*127.0.0.1\/32.*\) [a-z0-9-]*$/\1 trust/; s/^\(local.*all.*postgres.*\) peer$/\1 trust/' "$conf"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  done
  su postgres -c "psql -c 'CREATE DATABASE test'" >/dev/null 2>&1 || true
fi
for _ in $(seq 1 30); do
  reachable && exit 0
  sleep 1
done
if [ "${CI:-}" = "true" ]; then
  echo "PostgreSQL at $url is not reachable; CI needs it" >&2
  exit 1
fi
echo "note: PostgreSQL at $url is not reachable; the PostgreSQL tests will be skipped" >&2
exit 0
