#!/usr/bin/env bash
# What the tests need beyond Python packages: the npm protocol peers in tests/peers (Node.js and npm)
# and a Chromium for the browser tests. Installed here when missing. With CI=true, a tool that cannot
# be installed fails the run; elsewhere the tests that need it skip and say why.
set -u
cd "$(dirname "$0")/.."

can_apt() { command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; }
apt_install() {
  echo "installing $* for the tests"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } >/dev/null 2>&1
}
missing() {
  if [ "${CI:-}" = "true" ]; then echo "CI needs $1 and it could not be installed" >&2; exit 1; fi
  echo "note: $1 is missing; the tests that need it will skip" >&2
}

if ! command -v npm >/dev/null 2>&1; then
  if can_apt; then apt_install nodejs npm; fi
fi
if command -v npm >/dev/null 2>&1; then
  stamp=tests/peers/node_modules/.installed
  if [ ! -f "$stamp" ] || [ tests/peers/package-lock.json -nt "$stamp" ]; then
    (cd tests/peers && npm ci --no-audit --no-fund --loglevel=error >/dev/null) && touch "$stamp" \
      || missing "the npm packages of tests/peers"
  fi
else
  missing "Node.js and npm (the SMSC and MMSC peers)"
fi

if ! command -v chromium >/dev/null 2>&1; then
  if can_apt; then apt_install chromium; fi
  command -v chromium >/dev/null 2>&1 || missing "Chromium (the browser tests)"
fi
exit 0
