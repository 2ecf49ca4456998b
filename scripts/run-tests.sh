#!/usr/bin/env bash
# The test command behind `make test` and CI: static checks, then pytest against a real
# local Kafka broker and a real local PostgreSQL (each started here when none answers, and
# stopped again afterwards). SYNC_TEST_POSTGRES_URL, when set, names another PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

echo "== static checks"
$BIN/ruff check .
$BIN/ruff format --check .
$BIN/mypy
$BIN/lint-imports

started_kafka=0
started_postgres=0
cleanup() {
  if [ "$started_kafka" = 1 ]; then scripts/kafka.sh stop || true; fi
  if [ "$started_postgres" = 1 ]; then scripts/postgres.sh stop || true; fi
}
trap cleanup EXIT

# The tests' broker is the one this script manages (KAFKA_PORT moves it, e.g. for a second
# checkout on the same machine).
export SYNC_TEST_KAFKA_BOOTSTRAP="${SYNC_TEST_KAFKA_BOOTSTRAP:-127.0.0.1:${KAFKA_PORT:-9092}}"
if ! scripts/kafka.sh status >/dev/null 2>&1; then
  scripts/kafka.sh start
  started_kafka=1
fi

if [ -z "${SYNC_TEST_POSTGRES_URL:-}" ]; then
  # Installs PostgreSQL from Debian's packages first when the server is missing.
  if ! scripts/postgres.sh status >/dev/null 2>&1; then
    started_postgres=1
    scripts/postgres.sh start
  fi
  SYNC_TEST_POSTGRES_URL="$(scripts/postgres.sh url)"
  export SYNC_TEST_POSTGRES_URL
fi

echo "== pytest"
$BIN/pytest "$@"
