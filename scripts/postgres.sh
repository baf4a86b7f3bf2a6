#!/usr/bin/env bash
# A throwaway PostgreSQL for the tests: a cluster of its own on 127.0.0.1 at a free port, run by a non-root
# user (`postgres` when called as root), with a database `news_monitor` and a trusted superuser `monitor`.
# Prints the database URL on stdout, everything else goes to stderr:
#     export MONITOR_TEST_PG_URL="$(scripts/postgres.sh)"
# Idempotent: run again, it prints the URL of the running cluster (or starts the stopped one).
# `scripts/postgres.sh stop` stops it; `scripts/postgres.sh running` tells (exit status) whether it runs. Installs Debian's `postgresql` when it is missing and we are root.
# Where: $MONITOR_PG_HOME, default ${TMPDIR:-/tmp}/news-monitor-pg-<uid>. Durability is off (fsync=off): tests only.
set -euo pipefail

home="${MONITOR_PG_HOME:-${TMPDIR:-/tmp}/news-monitor-pg-$(id -u)}"
data="$home/data"
db=news_monitor
user=monitor

say() { echo "postgres.sh: $*" >&2; }

bindir() {
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n -r); do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
      echo "$dir"
      return 0
    fi
  done
  return 1
}

install_postgres() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    say "PostgreSQL is not installed: as root, apt-get install postgresql (or set MONITOR_TEST_PG_URL yourself)"
    exit 1
  fi
  say "installing Debian's postgresql"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
}

as_owner() {  # PostgreSQL refuses to run as root
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

running() { [ -f "$home/port" ] && as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; }

if [ "${1:-}" = running ]; then  # exit status 0 if the cluster runs; installs nothing, starts nothing
  bin="$(bindir)" || exit 1
  running
  exit $?
fi

bin="$(bindir)" || { install_postgres; bin="$(bindir)"; }

if [ "${1:-}" = stop ]; then
  if running; then as_owner "$bin/pg_ctl" -D "$data" -m fast -w stop >&2; fi
  exit 0
fi

if [ ! -f "$data/PG_VERSION" ]; then
  rm -rf "$home"
  mkdir -p "$home"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$home"; fi
  as_owner "$bin/initdb" -D "$data" -U "$user" -A trust -E UTF8 --no-sync >/dev/null
fi

if ! running; then
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  as_owner "$bin/pg_ctl" -D "$data" -l "$home/server.log" -w -t 60 start -o \
    "-p $port -k $home -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    >/dev/null || { tail -20 "$home/server.log" >&2; exit 1; }
  echo "$port" >"$home/port"
  say "started PostgreSQL ($bin) on 127.0.0.1:$port, data in $data"
fi
port="$(cat "$home/port")"

psql=("$bin/psql" -h 127.0.0.1 -p "$port" -U "$user" -X -q -t -A)
if [ "$("${psql[@]}" -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]; then
  "${psql[@]}" -d postgres -c "CREATE DATABASE $db" >/dev/null
fi
echo "postgresql+psycopg://$user@127.0.0.1:$port/$db"
