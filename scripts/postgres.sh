#!/usr/bin/env bash
# A private, local PostgreSQL cluster for the ledger's tests and for development: Debian's
# server binaries, a data folder under the repository, its own port. It never touches the
# machine's own clusters (pg_ctlcluster, port 5432).
#
#   scripts/postgres.sh start    install the server if missing (apt-get, as root), initdb (once),
#                                start, wait until ready, create role and database (idempotent)
#   scripts/postgres.sh stop     fast shutdown by pg_ctl
#   scripts/postgres.sh status   exit 0 if a server answers on the port, 1 otherwise
#   scripts/postgres.sh url      print the ledger's URL: postgresql+asyncpg://…
#
# As root the cluster belongs to the `postgres` OS user (PostgreSQL refuses to run as root);
# otherwise to the user running this script. Only that user may log in over its socket
# (peer); over TCP every role needs its password (SCRAM).
#
# Environment (all optional):
#   PG_PORT (55432)  PG_START_TIMEOUT (60)
#   PG_HOME (<repo>/var/postgres; when the repository's folder is closed to the `postgres`
#     user, e.g. under /root, a folder in /tmp named after the repository's path)
#   PG_PASSWORD (the isams_sync role's; default: generated once, kept in $PG_HOME/password)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${PG_PORT:-55432}"
START_TIMEOUT="${PG_START_TIMEOUT:-60}"
ROLE=isams_sync
DATABASE=isams_sync
HOST=127.0.0.1

say() { printf 'postgres.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# --- binaries --------------------------------------------------------------------------------

# The folder holding initdb, pg_ctl and psql: on PATH, else Debian's newest under /usr/lib.
bindir() {
  local initdb candidates
  if initdb="$(command -v initdb)" && [[ -x "$(dirname "$initdb")/pg_ctl" ]]; then
    dirname "$(readlink -f "$initdb")"
    return 0
  fi
  candidates="$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/initdb' 2>/dev/null \
    | sort -V | tail -n 1)"
  [[ -n "$candidates" ]] || return 1
  dirname "$candidates"
}

install_server() {
  [[ $EUID -eq 0 ]] || die "PostgreSQL's server is not installed: run 'sudo apt-get install postgresql' (or this script as root)"
  command -v apt-get >/dev/null || die "PostgreSQL's server is not installed and there is no apt-get to install it"
  say "installing PostgreSQL from Debian's packages (apt-get)"
  local started=$SECONDS
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends \
    postgresql postgresql-client >/dev/null
  say "installed in $((SECONDS - started)) s"
}

BIN=""
require_bin() {
  [[ -n "$BIN" ]] && return 0
  if ! BIN="$(bindir)"; then
    install_server
    BIN="$(bindir)" || die "PostgreSQL was installed but initdb is not under /usr/lib/postgresql/*/bin"
  fi
}

# --- helpers ---------------------------------------------------------------------------------

# The OS user the cluster runs as, and a prefix that runs a command as that user.
if [[ $EUID -eq 0 ]]; then
  OWNER=postgres
  AS_OWNER=(runuser -u postgres --)
else
  OWNER="$(id -un)"
  AS_OWNER=()
fi

# Where the cluster lives: PG_HOME, else under the repository if the cluster's owner can
# reach it, else in /tmp. Decided after any install (which creates the `postgres` user).
set_home() {
  HOME_DIR="$(realpath -m "${PG_HOME:-$REPO/var/postgres}")"
  if [[ -z "${PG_HOME:-}" && $EUID -eq 0 ]] && id postgres >/dev/null 2>&1 \
      && ! runuser -u postgres -- test -x "$REPO"; then
    HOME_DIR="${TMPDIR:-/tmp}/isams-sync-postgres-$(printf '%s' "$REPO" | md5sum | cut -c1-12)"
  fi
  DATA="$HOME_DIR/data"
  SOCKETS="$HOME_DIR/run"
  LOG="$HOME_DIR/postgres.log"
  PASSWORD_FILE="$HOME_DIR/password"
}

answers() { [[ -n "$BIN" ]] && "$BIN/pg_isready" -q -h "$HOST" -p "$PORT" -t "${1:-3}"; }

# Run a command as the cluster's owner, from / (the caller's folder may be closed to it).
as_owner() { (cd / && "${AS_OWNER[@]}" "$@"); }

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# The pid in our cluster's postmaster.pid, whether or not that process still lives.
recorded_pid() {
  local pid
  pid="$(head -n 1 "$DATA/postmaster.pid" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] && printf '%s\n' "$pid"
}

# Whether our cluster's postmaster runs: its pid is a live postgres process, not a reused
# pid and not a killed one that its parent has yet to reap (a zombie).
ours_running() {
  local pid state
  pid="$(recorded_pid)" || return 1
  [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == postgres ]] || return 1
  state="$(ps -o stat= -p "$pid" 2>/dev/null)" || return 1
  [[ "$state" != Z* ]]
}

# After a crash: wait until the old postmaster's pid is gone (a zombie still looks alive to
# the new postmaster, which then refuses to start).
wait_old_postmaster_gone() {
  local pid deadline=$((SECONDS + 30))
  pid="$(recorded_pid)" || return 0
  while [[ -e "/proc/$pid" && "$(cat "/proc/$pid/comm" 2>/dev/null)" == postgres ]] \
      && ((SECONDS < deadline)); do
    sleep 0.2
  done
}

wait_ready() {
  local deadline=$((SECONDS + START_TIMEOUT))
  until answers 2; do
    ((SECONDS < deadline)) || { log_tail; die "PostgreSQL does not answer on $HOST:$PORT after ${START_TIMEOUT} s"; }
    sleep 0.5
  done
}

log_tail() {
  [[ -f "$LOG" ]] || return 0
  say "last lines of $LOG:"
  tail -n 15 "$LOG" | cut -c1-400 >&2
}

# The role's password: PG_PASSWORD, else the one generated on the first start. Limited to
# characters that need no quoting in SQL nor escaping in a URL.
password() {
  local value="${PG_PASSWORD:-}"
  if [[ -z "$value" ]]; then
    [[ -f "$PASSWORD_FILE" ]] || return 1
    value="$(cat "$PASSWORD_FILE")"
  fi
  [[ "$value" =~ ^[A-Za-z0-9._~-]+$ ]] || die "PG_PASSWORD may hold only letters, digits and . _ ~ -"
  printf '%s\n' "$value"
}

ensure_password() {
  [[ -n "${PG_PASSWORD:-}" || -f "$PASSWORD_FILE" ]] && return 0
  (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=\n' >"$PASSWORD_FILE")
}

url() {
  local secret
  secret="$(password)" || return 1
  printf 'postgresql+asyncpg://%s:%s@%s:%s/%s\n' "$ROLE" "$secret" "$HOST" "$PORT" "$DATABASE"
}

# --- start -----------------------------------------------------------------------------------

prepare_folders() {
  # A Unix socket's path has at most 107 bytes.
  ((${#SOCKETS} + 16 <= 107)) || die "$SOCKETS is too long a path for PostgreSQL's socket: set PG_HOME"
  mkdir -p "$SOCKETS"
  chown "$OWNER" "$SOCKETS"
  chmod 700 "$SOCKETS"
  if [[ -d "$DATA" && "$(stat -c %U "$DATA")" != "$OWNER" ]]; then
    chown -R "$OWNER" "$DATA"
  fi
  as_owner test -w "$SOCKETS" \
    || die "user $OWNER cannot reach $HOME_DIR (a parent folder is closed to it): set PG_HOME"
}

init_cluster() {
  [[ -f "$DATA/PG_VERSION" ]] && return 0
  # Into a side folder, then renamed: an interrupted initdb leaves no half cluster behind.
  local partial="$DATA.partial"
  rm -rf "$partial"
  mkdir -m 700 "$partial"
  chown "$OWNER" "$partial"
  local started=$SECONDS
  if ! as_owner "$BIN/initdb" -D "$partial" --encoding=UTF8 --no-locale \
      --auth-local=peer --auth-host=scram-sha-256 --no-instructions >"$HOME_DIR/initdb.log" 2>&1; then
    tail -n 20 "$HOME_DIR/initdb.log" >&2
    rm -rf "$partial"
    die "initdb failed"
  fi
  # Rewritten on every start (so a new PG_PORT applies); postgresql.conf only includes it.
  echo "include_if_exists = 'isams-sync.conf'" >>"$partial/postgresql.conf"
  mv "$partial" "$DATA"
  say "initialised a cluster in $DATA in $((SECONDS - started)) s"
}

write_config() {
  as_owner tee "$DATA/isams-sync.conf" >/dev/null <<EOF
# Written by scripts/postgres.sh on each start; edits here are lost.
listen_addresses = '$HOST'
port = $PORT
unix_socket_directories = '$SOCKETS'
EOF
}

launch() {
  local started=$SECONDS
  if [[ -s "$LOG" ]]; then mv -f "$LOG" "$LOG.1"; fi
  : >"$LOG"
  chown "$OWNER" "$LOG"
  if ! as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t "$START_TIMEOUT" start >/dev/null 9>&-; then
    log_tail
    die "PostgreSQL did not start within ${START_TIMEOUT} s"
  fi
  say "started PostgreSQL $(cat "$DATA/PG_VERSION") on $HOST:$PORT in $((SECONDS - started)) s, log $LOG"
}

# Create the role and its database, or bring the role's password up to date. The SQL goes
# in on stdin, so the password never shows in a process list.
create_role_and_database() {
  local secret
  secret="$(password)"
  as_owner "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCKETS" -p "$PORT" -d postgres >/dev/null <<EOF
SELECT 'CREATE ROLE $ROLE LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE')
\gexec
ALTER ROLE $ROLE WITH LOGIN PASSWORD '$secret';
SELECT 'CREATE DATABASE $DATABASE OWNER $ROLE' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DATABASE')
\gexec
EOF
  # The way the service will come in: over TCP, with the password.
  PGPASSWORD="$secret" "$BIN/psql" -X -q -h "$HOST" -p "$PORT" -U "$ROLE" -d "$DATABASE" \
    -c 'SELECT 1' >/dev/null || die "role $ROLE cannot log in to $DATABASE on $HOST:$PORT"
}

start() {
  require_bin
  set_home
  mkdir -p "$HOME_DIR"
  # One start at a time (two test runs starting together must not race initdb).
  exec 9>"$HOME_DIR/.start.lock"
  flock -w $((START_TIMEOUT + 60)) 9 || die "another 'postgres.sh start' holds $HOME_DIR/.start.lock"
  prepare_folders
  ensure_password
  if ours_running; then
    say "already running on $HOST:$PORT ($DATA)"
    wait_ready
  else
    if port_open "$PORT"; then
      die "$HOST:$PORT is taken by something that is not this cluster (ss -ltnp | grep $PORT); set PG_PORT"
    fi
    init_cluster
    write_config
    wait_old_postmaster_gone
    launch
  fi
  create_role_and_database
  say "ready: database $DATABASE on $HOST:$PORT (scripts/postgres.sh url)"
}

stop() {
  require_bin_quietly || { say "not running"; return 0; }
  if ! ours_running; then
    say "not running"
    return 0
  fi
  as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null
  say "stopped"
}

status() {
  require_bin_quietly || { say "PostgreSQL is not installed"; return 1; }
  if answers 3; then
    if ours_running; then say "PostgreSQL answers on $HOST:$PORT ($DATA)"; else say "PostgreSQL answers on $HOST:$PORT (not started from $DATA)"; fi
    return 0
  fi
  say "PostgreSQL does not answer on $HOST:$PORT"
  return 1
}

# stop and status never install anything.
require_bin_quietly() { [[ -n "$BIN" ]] || BIN="$(bindir)"; }

case "${1:-}" in
  start) start ;;
  stop) set_home; stop ;;
  status) set_home; status ;;
  url) set_home; url || die "no password yet: run 'scripts/postgres.sh start' first (or set PG_PASSWORD)" ;;
  *) die "usage: $0 {start|stop|status|url}" ;;
esac
