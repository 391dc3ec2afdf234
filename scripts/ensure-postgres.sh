#!/usr/bin/env bash
# A throwaway PostgreSQL for the tests: initdb + pg_ctl in a temporary directory, on a free port of
# 127.0.0.1, run as the `postgres` user (PostgreSQL refuses to run as root). TCP logins need the
# password (scram-sha-256), so the tests can check what a wrong one gives; the socket trusts.
#
#   ensure-postgres.sh start   prints shell assignments to eval:
#                                EXECUTOR_TEST_DATABASE_URL=postgresql://postgres:PASSWORD@127.0.0.1:PORT/postgres
#                                EXECUTOR_TEST_PG_DIR=/tmp/executor-pg.XXXX   (what `stop` needs)
#   ensure-postgres.sh stop DIR stops the server started in DIR (by the pid in its postmaster.pid)
#                                and removes DIR.
#   ensure-postgres.sh halt DIR  stops that server and keeps its data (an outage, for a test);
#   ensure-postgres.sh resume DIR starts it again, on the same port.
#
# Installs Debian's `postgresql` when no initdb is found (the package's own service is kept from
# starting). Exit 3 with a readable message when it cannot install or start one.
set -euo pipefail

say() { printf 'ensure-postgres: %s\n' "$*" >&2; }

find_bin() {
  for dir in /usr/lib/postgresql/*/bin /usr/local/bin /usr/bin; do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
      echo "$dir"
      return 0
    fi
  done
  return 1
}

install_postgres() {
  if [ "$(id -u)" != 0 ]; then
    say "PostgreSQL is missing; as root run: apt-get install postgresql"
    exit 3
  fi
  say "installing Debian's postgresql"
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    created_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends postgresql >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  fi
  if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi
}

as_postgres() {
  if [ "$(id -un)" = postgres ]; then
    "$@"
  elif [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"  # an ordinary user runs its own cluster
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

run_server() {
  bin="$1" dir="$2"
  port="$(cat "$dir/port")"
  if ! as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null; then
    say "pg_ctl start failed: $(tail -3 "$dir/server.log" 2>/dev/null)"
    exit 3
  fi
}

halt() {
  dir="$1"
  bin="$(find_bin)"
  as_postgres "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null
}

resume() {
  dir="$1"
  bin="$(find_bin)"
  run_server "$bin" "$dir"
}

start() {
  bin="$(find_bin)" || { install_postgres; bin="$(find_bin)" || { say "no initdb after installing postgresql"; exit 3; }; }
  dir="$(mktemp -d /tmp/executor-pg.XXXXXX)"
  chmod 755 "$dir"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
  password="$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
  printf '%s\n' "$password" >"$dir/pw"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$dir/pw"; fi
  as_postgres "$bin/initdb" -D "$dir/data" --auth-local=trust --auth-host=scram-sha-256 \
      --pwfile="$dir/pw" -U postgres -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
    || { say "initdb failed: $(tail -3 "$dir/initdb.log")"; exit 3; }
  port="$(free_port)"
  echo "$port" >"$dir/port"
  run_server "$bin" "$dir"
  rm -f "$dir/pw"
  echo "EXECUTOR_TEST_DATABASE_URL=postgresql://postgres:$password@127.0.0.1:$port/postgres"
  echo "EXECUTOR_TEST_PG_DIR=$dir"
}

stop() {
  dir="$1"
  [ -f "$dir/data/postmaster.pid" ] || { rm -rf "$dir"; return 0; }
  pid="$(head -1 "$dir/data/postmaster.pid")"
  # SIGINT is PostgreSQL's "fast shutdown": sessions are ended, no need to wait for them.
  kill -INT "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -rf "$dir"
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:?usage: ensure-postgres.sh stop DIR}" ;;
  halt) halt "${2:?usage: ensure-postgres.sh halt DIR}" ;;
  resume) resume "${2:?usage: ensure-postgres.sh resume DIR}" ;;
  *) say "usage: ensure-postgres.sh start | stop DIR | halt DIR | resume DIR"; exit 2 ;;
esac
