#!/usr/bin/env bash
# Everything the tests need, then the tests: a venv in .venv with the project and its test extras,
# optional system services (PostgreSQL, adnanh/webhook) when this user may install them, then lint and pytest.
# Usage: scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'

# System packages for the tests that need a real peer: installed when we are root and they are missing.
# Without them those tests are skipped with a reason.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=()
  command -v webhook >/dev/null || missing+=(webhook)
  for writer in rsync unzip curl git; do  # tests/test_e2e_writers.py: the writers users put articles in with
    command -v "$writer" >/dev/null || missing+=("$writer")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null) \
      || echo "warning: could not install ${missing[*]}; the tests that need them will be skipped"
  fi
fi

# A throwaway PostgreSQL for tests/test_postgres.py and the PostgreSQL half of tests/test_migrations.py,
# stopped when the tests end if this run started it (one that was already running is left running).
if [ -z "${MONITOR_TEST_PG_URL:-}" ]; then
  was_running=0
  bash scripts/postgres.sh running && was_running=1
  if MONITOR_TEST_PG_URL="$(bash scripts/postgres.sh)"; then
    export MONITOR_TEST_PG_URL
    if [ "$was_running" = 0 ]; then
      trap 'bash scripts/postgres.sh stop' EXIT
    fi
  else
    echo "warning: no PostgreSQL (scripts/postgres.sh failed); the PostgreSQL tests will be skipped"
  fi
fi

.venv/bin/ruff check monitor tests benchmarks scripts
.venv/bin/ruff format --check monitor tests benchmarks scripts
.venv/bin/mypy
.venv/bin/python -m pytest "$@"  # not exec: the EXIT trap above stops the PostgreSQL this run started
