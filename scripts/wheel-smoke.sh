#!/usr/bin/env bash
# A plain install works: build the wheel, install it into a fresh venv WITHOUT extras (so a
# runtime import that only a dev extra brings is caught here), then with that venv's `executor`:
# run a flow, start a server with --broker against a redis-server started here, start a worker,
# submit an execution through the API and wait for SUCCESS. Stops what it started, by pid, and
# removes the venv. Needs: a Docker engine with executor/busybox:latest (`make images`),
# redis-server, curl. Packages come from the registries pip is configured with (its cache is
# reused).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/executor-wheel-smoke.XXXXXX")"
PIDS=()
TOKEN="wheel-smoke-$RANDOM$RANDOM"

say() { echo "wheel-smoke: [$SECONDS s] $*" >&2; }
cleanup() {
  status=$?
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [ "$status" != 0 ]; then
    for log in "$WORK"/*.log; do
      [ -f "$log" ] && { echo "----- $log" >&2; tail -n 40 "$log" >&2; }
    done
  fi
  rm -rf "$WORK"
  say "cleaned up"
}
trap cleanup EXIT
fail() { say "FAILED: $*"; exit 1; }

free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() {  # wait_for SECONDS WHAT COMMAND...: until COMMAND succeeds
  local seconds=$1 what=$2; shift 2
  for _ in $(seq 1 $((seconds * 4))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
  fail "$what did not come up within ${seconds}s"
}

# 1. the wheel, built from a copy of the sources (nothing written into the tree)
mkdir -p "$WORK/src"
tar --exclude=__pycache__ -cf - pyproject.toml README.md executor | tar -xf - -C "$WORK/src"
"$PYTHON" -m pip wheel --no-deps --quiet --disable-pip-version-check -w "$WORK/dist" "$WORK/src" \
  >"$WORK/build.log" 2>&1 || fail "the wheel does not build (see build.log)"
wheel="$(ls "$WORK"/dist/executor-*.whl)"
say "built $(basename "$wheel")"

# 2. a fresh venv, the wheel alone: no extras, nothing of the dev environment
"$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet --disable-pip-version-check --no-compile "$wheel" >"$WORK/install.log" 2>&1 \
  || fail "the wheel does not install (see install.log)"
EXECUTOR="$WORK/venv/bin/executor"
unset PYTHONPATH  # the venv's own package, never this tree's
cd "$WORK"
say "installed $(basename "$wheel") into a fresh venv"

# 3. a flow, run locally
cat >flow.yaml <<'YAML'
id: smoke
namespace: wheel.smoke
tasks:
  - id: hello
    type: io.kestra.plugin.scripts.shell.Commands
    containerImage: executor/busybox:latest
    commands:
      - echo wheel-smoke-ok
YAML
EXECUTOR_HOME="$WORK/run" "$EXECUTOR" run flow.yaml --quiet >run.log 2>&1 || fail "executor run (see run.log)"
say "executor run: SUCCESS"

# 4. Redis, a server with --broker and a worker, all from the venv
redis_port="$(free_port)"
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" \
  >redis.log 2>&1 &
PIDS+=($!)
wait_for 30 "redis-server" redis-cli -p "$redis_port" ping
broker="redis://127.0.0.1:$redis_port/0"
port="$(free_port)"
url="http://127.0.0.1:$port"
EXECUTOR_HOME="$WORK/server" EXECUTOR_SERVER_WORKER_TOKENS="$TOKEN" \
  "$EXECUTOR" server --port "$port" --broker "$broker" >server.log 2>&1 &
PIDS+=($!)
wait_for 60 "the server" curl -sf "$url/api/v1/configs"
EXECUTOR_HOME="$WORK/worker" EXECUTOR_WORKER_TOKEN="$TOKEN" \
  "$EXECUTOR" worker --broker "$broker" --server "$url" --name smoke --heartbeat 1 >worker.log 2>&1 &
PIDS+=($!)
alive() {  # every process started here still runs (one that died is a failure at once)
  for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null || fail "a process it started (pid $pid) died"; done
}
wait_for 60 "the worker" grep -q "Ctrl-C stops it" worker.log

curl -sf -X POST -H 'Content-Type: application/x-yaml' --data-binary @flow.yaml "$url/api/v1/flows" \
  >/dev/null || fail "the server refused the flow"
id="$(curl -sf -X POST "$url/api/v1/executions/wheel.smoke/smoke" \
  | "$WORK/venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["id"])')" \
  || fail "the server refused the execution"
state=""
for _ in $(seq 1 480); do
  alive
  state="$(curl -sf "$url/api/v1/executions/$id" \
    | "$WORK/venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["state"]["current"])')"
  case "$state" in SUCCESS | FAILED | KILLED | WARNING) break ;; esac
  sleep 0.25
done
[ "$state" = SUCCESS ] || fail "execution $id through the server and the worker ended '$state'"
curl -sf "$url/api/v1/logs/$id" | grep -q "on worker smoke" || fail "execution $id did not run on the worker"
say "executor server --broker + executor worker: SUCCESS ($id)"
