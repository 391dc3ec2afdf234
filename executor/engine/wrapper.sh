#!/bin/sh
# Every task exec starts through this wrapper (POSIX sh; no ps needed in the image).
#
#   wrapper.sh run  TOKEN CMD [ARG]...   run CMD in a session of its own, record pid and exit code
#   wrapper.sh kill TOKEN GRACE          TERM the session, wait GRACE seconds, KILL what is left
#
# Docker cannot signal an exec'd process, so the session id recorded here is how a
# timeout or cancel finds every process the task started, orphans included.
mode="$1"; token="$2"; shift 2
dir="/.executor/runs/$token"

members() {
  # pids whose session or process group is the task's (field 4 pgrp, 5 session after "comm")
  for stat in /proc/[0-9]*/stat; do
    read -r line < "$stat" 2>/dev/null || continue
    rest="${line##*) }"
    set -- $rest
    if [ "$4" = "$leader" ] || [ "$3" = "$leader" ]; then
      p="${stat#/proc/}"; echo "${p%/stat}"
    fi
  done
}

signal_all() {
  for p in $(members); do kill -"$1" "$p" 2>/dev/null; done
}

case "$mode" in
run)
  mkdir -p "$dir" || { echo "executor: cannot create $dir" >&2; exit 125; }
  if command -v setsid >/dev/null 2>&1; then
    setsid "$@" &
  else
    "$@" &
  fi
  child=$!
  echo "$child" > "$dir/pid"
  wait "$child"
  rc=$?
  echo "$rc" > "$dir/rc.tmp" && mv "$dir/rc.tmp" "$dir/rc"
  exit "$rc"
  ;;
kill)
  grace="${1:-3}"
  leader="$(cat "$dir/pid" 2>/dev/null)" || exit 0
  [ -n "$leader" ] || exit 0
  signal_all TERM
  ticks=0
  limit=$((grace * 10))
  while [ "$ticks" -lt "$limit" ] && [ -n "$(members)" ]; do
    sleep 0.1 2>/dev/null || sleep 1
    ticks=$((ticks + 1))
  done
  signal_all KILL
  [ -z "$(members)" ] || sleep 0.2
  ;;
rc)
  cat "$dir/rc" 2>/dev/null
  ;;
*)
  echo "executor wrapper: unknown mode '$mode'" >&2
  exit 125
  ;;
esac
