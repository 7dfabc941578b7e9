#!/usr/bin/env bash
# Local PostgreSQL server from the Debian binaries: postgres.sh up|down|status.
# Cluster under .local/pg (or a private directory linked from there when the server's user
# cannot reach .local); listens on 127.0.0.1:15432 (AOP_LOCAL_PG_PORT); database and role
# `aop` (password `aop`), with CREATEROLE so `aop db roles` can create the service roles
# (granted on an existing cluster too).
source "$(dirname "$0")/common.sh"
PORT=${AOP_LOCAL_PG_PORT:-15432}
PGLINK=$LOCAL/pg
PY=${AOP_PYTHON:-$ROOT/.venv/bin/python}
URL="postgresql://aop:aop@127.0.0.1:$PORT/aop"

bindir() {
  local d; d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
  [ -n "$d" ] || die "PostgreSQL server binaries not found (apt-get install postgresql)"
  echo "$d"
}

# The server refuses to run as root: as root it runs as the `postgres` system user.
as_pg() { if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }

cluster_dir() {
  if [ -e "$PGLINK" ]; then readlink -f "$PGLINK"; return; fi
  local dir=$PGLINK
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "system user 'postgres' missing (apt-get install postgresql)"
    mkdir -p "$dir"; chown postgres: "$dir"
    if ! runuser -u postgres -- test -w "$dir"; then
      rmdir "$dir"
      # named after $LOCAL, not the checkout: each AOP_LOCAL_DIR gets a cluster of its own
      dir=/var/tmp/aop-pg-$(printf '%s' "$LOCAL" | sha256sum | cut -c1-12)
      mkdir -p "$dir"; chown postgres: "$dir"; chmod 700 "$dir"
      ln -s "$dir" "$PGLINK"
      log "server user cannot reach $LOCAL; cluster lives in $dir (linked from .local/pg)"
    fi
  else
    mkdir -p "$dir"
  fi
  echo "$dir"
}

ready() { "$PY" "$ROOT/infra/local/ready.py" postgres "$URL"; }

up() {
  local bin dir; bin=$(bindir); dir=$(cluster_dir)
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    log "initialising cluster in $dir/data"
    as_pg mkdir -p "$dir/data" "$dir/run"
    as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  if as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    log "already running"
  else
    as_pg mkdir -p "$dir/run"
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
      -o "-c listen_addresses=127.0.0.1 -p $PORT -k $dir/run -c max_connections=200 -c shared_buffers=256MB" >/dev/null \
      || { tail -n 30 "$dir/server.log" >&2; die "pg_ctl start failed"; }
  fi
  as_pg "$bin/psql" -h "$dir/run" -p "$PORT" -U postgres -d postgres -qAtX -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
SELECT 'CREATE ROLE aop LOGIN CREATEDB CREATEROLE PASSWORD ''aop'''
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'aop') \gexec
SELECT 'ALTER ROLE aop CREATEROLE'
  WHERE NOT (SELECT rolcreaterole FROM pg_roles WHERE rolname = 'aop') \gexec
SELECT 'CREATE DATABASE aop OWNER aop'
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'aop') \gexec
SQL
  wait_for 60 PostgreSQL ready
  log "ready on 127.0.0.1:$PORT (database aop)"
}

down() {
  [ -e "$PGLINK" ] || { log "not initialised"; return 0; }
  local bin dir; bin=$(bindir); dir=$(readlink -f "$PGLINK")
  if as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null; log "stopped"
  else
    log "not running"
  fi
}

status() { if ready; then echo "postgres: up"; else echo "postgres: down"; return 1; fi; }

case "${1:-}" in
  up) up ;; down) down ;; status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 64 ;;
esac
