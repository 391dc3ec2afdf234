#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine.
#
# Idempotent: when `docker info` already works, it does nothing. Otherwise it
# installs Debian's docker.io (when dockerd is missing), starts dockerd in the
# background and waits, bounded, for its socket. Exit 0 when an engine answers,
# 3 with a readable message when none could be brought up.
set -euo pipefail

SOCKET="${DOCKER_HOST:-unix:///var/run/docker.sock}"
WAIT_SECONDS="${EXECUTOR_DOCKERD_WAIT:-60}"
LOG="${EXECUTOR_DOCKERD_LOG:-/var/log/executor-dockerd.log}"

say() { printf 'ensure-docker: %s\n' "$*" >&2; }

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && engine_answers; then
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    say "no Docker engine answers at $SOCKET and dockerd is not installed; as root run: apt-get install docker.io"
    exit 3
  fi
  say "installing Debian's docker.io (dockerd is missing)"
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends docker.io iptables >/dev/null
fi

if [ "$(id -u)" != 0 ]; then
  say "no Docker engine answers at $SOCKET; start one as root: dockerd &"
  exit 3
fi

start_dockerd() {
  # A dockerd that was just killed can leave its pid file for a moment.
  if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    rm -f /var/run/docker.pid
  fi
  say "starting dockerd (log: $LOG)"
  nohup dockerd >>"$LOG" 2>&1 </dev/null &
  echo $! >/tmp/executor-dockerd.pid
}

attempt=0
while [ $attempt -lt 3 ]; do
  attempt=$((attempt + 1))
  if ! pgrep -x dockerd >/dev/null 2>&1; then
    start_dockerd
  fi
  for _ in $(seq 1 "$WAIT_SECONDS"); do
    if engine_answers; then
      say "engine ready ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
      exit 0
    fi
    if ! pgrep -x dockerd >/dev/null 2>&1; then
      break
    fi
    sleep 1
  done
  say "dockerd did not answer (attempt $attempt); last log lines:"
  tail -n 5 "$LOG" >&2 || true
  sleep 2
done
say "no Docker engine answers at $SOCKET after $attempt attempts; see $LOG"
exit 3
