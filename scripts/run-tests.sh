#!/usr/bin/env bash
# The whole test suite, as `make test` runs it: bring up what the tests need, run them, and
# stop what this script started (by pid), so a CI machine is left as it was found.
#
# Brings up: a Docker engine (scripts/ensure-docker.sh: installs docker.io and starts dockerd
# when none answers), the local images, Debian's docker-registry package (the registry tests
# start and stop their own registry process), Debian's chromium (scripts/ensure-chromium.sh: the
# browser tests launch it themselves), Debian's redis-server package (the worker tests start and
# stop their own Redis, and a second engine with scripts/second-engine.sh), a throwaway PostgreSQL
# (scripts/ensure-postgres.sh: installs Debian's postgresql when missing; the store tests run on
# SQLite and on it) unless EXECUTOR_TEST_DATABASE_URL names one, Debian's docker-compose (the
# compose.yaml test brings its stack up and takes it down, volumes and all) and Debian's
# mariadb-server package (the jdbc tests start and stop their own MariaDB).
# Stops: the dockerd it started, if it started one, and the PostgreSQL it started.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
PIDFILE=/tmp/executor-dockerd.pid

engine_was_up=0
if command -v docker >/dev/null 2>&1 && timeout 10 docker info >/dev/null 2>&1; then
  engine_was_up=1
fi

stop_started_engine() {
  [ "$engine_was_up" = 1 ] && return 0
  [ -f "$PIDFILE" ] || return 0
  pid="$(cat "$PIDFILE")"
  kill -0 "$pid" 2>/dev/null || return 0
  echo "run-tests: stopping the dockerd this run started (pid $pid)" >&2
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.5
  done
  kill -KILL "$pid" 2>/dev/null
}
PG_DIR=""
stop_started_postgres() {
  [ -n "$PG_DIR" ] || return 0
  echo "run-tests: stopping the PostgreSQL this run started" >&2
  bash scripts/ensure-postgres.sh stop "$PG_DIR"
}
trap 'stop_started_postgres; stop_started_engine' EXIT

make --no-print-directory images registry PYTHON="$PYTHON" || exit $?
bash scripts/ensure-chromium.sh || exit $?
# the worker tests start (and stop) their own redis-server; only the package is needed here
if ! command -v redis-server >/dev/null 2>&1; then
  echo "run-tests: installing redis-server (Debian) for the worker tests" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) \
    >/dev/null || exit $?
fi
# tests/integration/test_compose.py runs compose.yaml with Debian's docker-compose (1.29)
if ! command -v docker-compose >/dev/null 2>&1; then
  echo "run-tests: installing docker-compose (Debian) for the compose test" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose) \
    >/dev/null || exit $?
fi
# the jdbc tests start (and stop, by pid) their own MariaDB: Debian's mariadb-server, kept from
# starting as a service by policy-rc.d while it installs
if ! command -v mariadbd >/dev/null 2>&1; then
  echo "run-tests: installing mariadb-server (Debian) for the jdbc tests" >&2
  created_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    created_policy=1
  fi
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server) \
    >/dev/null || exit $?
  [ "$created_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi
# MailSend's tests talk to a real SMTP server the tests start (aiosmtpd, a dev dependency).
"$PYTHON" -c "import aiosmtpd" 2>/dev/null || "$PYTHON" -m pip install -q "aiosmtpd==1.4.6" || exit $?
if [ -z "${EXECUTOR_TEST_DATABASE_URL:-}" ]; then
  pg_env="$(bash scripts/ensure-postgres.sh start)" || exit $?
  EXECUTOR_TEST_DATABASE_URL="$(printf '%s\n' "$pg_env" | sed -n 's/^EXECUTOR_TEST_DATABASE_URL=//p')"
  PG_DIR="$(printf '%s\n' "$pg_env" | sed -n 's/^EXECUTOR_TEST_PG_DIR=//p')"
  export EXECUTOR_TEST_DATABASE_URL
fi
# a plain install (the wheel alone, no extras) runs a flow, a server and a worker: a runtime
# import that only the dev extras bring in fails here, before the suite
PYTHON="$PYTHON" bash scripts/wheel-smoke.sh || exit $?
# test modules run side by side (most of a test's time is spent waiting on the engine and on
# server processes); one module stays on one process, so its shared fixtures are shared.
# EXECUTOR_TEST_PROCESSES=1 runs them one after the other. Tests marked serial leave orphans on
# purpose (a SIGKILLed executor's containers), which any other run sweeps: they run alone, after.
status=0
"$PYTHON" -m pytest -n "${EXECUTOR_TEST_PROCESSES:-3}" --dist loadfile -m "not serial" "$@" || status=$?
"$PYTHON" -m pytest -m serial "$@" || {
  rc=$?  # 5: the selection holds no serial test
  [ "$rc" -eq 5 ] || [ "$status" -ne 0 ] || status=$rc
}
exit "$status"
