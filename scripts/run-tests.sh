#!/usr/bin/env bash
# The test command behind `make test` and CI: static checks, then pytest against a real
# local Kafka broker (started here when none answers, and stopped again afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

echo "== static checks"
$BIN/ruff check .
$BIN/ruff format --check .
$BIN/mypy
$BIN/lint-imports

started_kafka=0
if ! scripts/kafka.sh status >/dev/null 2>&1; then
  scripts/kafka.sh start
  started_kafka=1
fi
cleanup() {
  if [ "$started_kafka" = 1 ]; then scripts/kafka.sh stop || true; fi
}
trap cleanup EXIT

echo "== pytest"
$BIN/pytest "$@"
