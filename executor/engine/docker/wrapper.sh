#!/bin/sh
# Every task exec starts through this wrapper (POSIX sh; no ps needed in the image).
#
#   wrapper.sh run  TOKEN CMD [ARG]...   run CMD in a session of its own, record pid and exit code
#   wrapper.sh kill TOKEN GRACE [PID]... TERM the task's processes (and PIDs), wait GRACE seconds,
#                                        KILL the rest
#   wrapper.sh rc   TOKEN                print the recorded exit code
#
# Docker cannot signal an exec'd process, so the wrapper finds the task's processes itself.
# A process belongs to the task (a "member") when any of these holds:
#   a. its session or process group is the leader's (the leader is CMD, started under setsid);
#   b. its environment holds EXECUTOR_RUN_TOKEN=TOKEN, a cookie every process of the task
#      inherits (Jenkins' ProcessTreeKiller does the same): it finds what left the session
#      (`setsid cmd &`, double-forked daemons);
#   c. its parent is a member, repeated until nothing changes: it finds what cleared its env.
# PID 1 and the wrapper itself never are; zombies are already dead and do not count.
#
# The cookie is set on CMD's environment only, never exported in the wrapper's own shell, so
# the wrapper and the tools it runs (grep, sleep) never carry it. Only a process of the same
# user (or root with CAP_SYS_PTRACE, which Docker does not grant) may read another's environ,
# so the engine runs `kill` as the task's user, then as root for whatever survives, handing
# the survivors' pids over.
#
# When CMD exits, `run` kills every member left behind (TERM, one second, KILL) before it
# records the exit code, as Kestra and GitHub Actions do at the end of a step: a background
# child must not outlive its task, nor hold the exec's stdout open.
#
# `kill` prints "survivors: PID..." and exits 1 when a member outlives KILL, so the caller
# can tell the truth. The leader's pid is recorded with its start time: a pid reused by an
# unrelated process (a different start time) disables rule (a) instead of killing it.
mode="$1"; token="$2"; shift 2
# the records live beside this script (engine/container_paths.py owns the layout)
dir="${0%/*}/runs/$token"
cookie="EXECUTOR_RUN_TOKEN=$token"
leader=""
known=""
zgrep=0

starttime() {
  # sets $started to field 22 of /proc/$1/stat, counted after the "(comm)" that may hold
  # spaces; no subshell, so `run` starts no process beside the task
  started=""
  read -r line 2>/dev/null < "/proc/$1/stat" || return 1
  set -- ${line##*) }
  started="${20}"
}

trust_leader() {
  # rule (a) only while the recorded pid is the task's leader or is gone; a pid that is a
  # session or group id of a live process cannot be reused, so "gone" means its members
  read -r pid recorded 2>/dev/null < "$dir/pid" || return 0
  starttime "$pid" || { leader="$pid"; return 0; }
  [ "$started" = "$recorded" ] && leader="$pid"
  return 0
}

newer_processes() {
  # whether a process other than this wrapper started since the task's leader did: only those
  # can be its leftovers. Builtins only, no process started: the common case (nothing left
  # behind, no sibling running) costs no fork at all.
  for stat in /proc/[0-9]*/stat; do
    pid="${stat#/proc/}"; pid="${pid%/stat}"
    [ "$pid" = "$$" ] && continue
    read -r line 2>/dev/null < "$stat" || continue
    set -- ${line##*) }
    case "$1" in Z|X|x) continue ;; esac
    [ "${20}" -ge "$leader_start" ] 2>/dev/null && return 0
  done
  return 1
}

cookie_holders() {
  if [ "$zgrep" = 1 ]; then
    # one grep for every process; unreadable environs (other users) are skipped silently
    for f in $(grep -lzxF -e "$cookie" /proc/[0-9]*/environ 2>/dev/null); do
      f="${f#/proc/}"; echo "${f%/environ}"
    done
  else
    for f in /proc/[0-9]*/environ; do
      tr '\0' '\n' 2>/dev/null < "$f" | grep -qxF -e "$cookie" || continue
      f="${f#/proc/}"; echo "${f%/environ}"
    done
  fi
}

members() {
  cookies=" $(echo $(cookie_holders)) $known "
  found=" "
  table=""
  for stat in /proc/[0-9]*/stat; do
    read -r line 2>/dev/null < "$stat" || continue
    pid="${stat#/proc/}"; pid="${pid%/stat}"
    [ "$pid" = "$$" ] || [ "$pid" = 1 ] && continue
    set -- ${line##*) }
    # $1 state, $2 ppid, $3 process group, $4 session
    case "$1" in Z|X|x) continue ;; esac
    table="$table $pid:$2"
    case "$cookies" in *" $pid "*) found="$found$pid "; continue ;; esac
    if [ -n "$leader" ] && { [ "$3" = "$leader" ] || [ "$4" = "$leader" ]; }; then
      found="$found$pid "
    fi
  done
  changed=1
  while [ "$changed" = 1 ]; do
    changed=0
    for entry in $table; do
      case "$found" in *" ${entry%:*} "*) continue ;; esac
      case "$found" in *" ${entry#*:} "*) found="$found${entry%:*} "; changed=1 ;; esac
    done
  done
  echo $found
}

terminate() {
  # TERM every member (and whatever they start meanwhile), wait up to $1 seconds, then KILL
  # until none remains (bounded); print the survivors and fail when some remain
  printf 'x\0' | grep -qzx x 2>/dev/null && zgrep=1  # GNU and busybox grep read NUL-separated
  termed=" "
  ticks=0
  limit=$(($1 * 10))
  while :; do
    now="$(members)"
    [ -n "$now" ] || return 0
    for p in $now; do
      case "$termed" in *" $p "*) continue ;; esac
      kill -TERM "$p" 2>/dev/null
      kill -CONT "$p" 2>/dev/null  # a stopped process gets TERM only once it runs again
      termed="$termed$p "
    done
    [ "$ticks" -lt "$limit" ] || break
    sleep 0.1 2>/dev/null || sleep 1
    ticks=$((ticks + 1))
  done
  rounds=0
  while [ -n "$now" ] && [ "$rounds" -lt 30 ]; do
    for p in $now; do kill -KILL "$p" 2>/dev/null; done
    sleep 0.1 2>/dev/null || sleep 1
    now="$(members)"
    rounds=$((rounds + 1))
  done
  [ -z "$now" ] && return 0
  echo "survivors: $now"
  return 1
}

case "$mode" in
run)
  mkdir -p "$dir" || { echo "executor: cannot create $dir" >&2; exit 125; }
  if command -v setsid >/dev/null 2>&1; then
    EXECUTOR_RUN_TOKEN="$token" setsid "$@" &
  else
    EXECUTOR_RUN_TOKEN="$token" "$@" &
  fi
  child=$!
  # not reaped before `wait`, so its stat is there to read even if it already exited; only
  # builtins here: a helper process would show up in the task's own view of /proc
  starttime "$child"
  leader_start="$started"
  echo "$child $started" > "$dir/pid"
  wait "$child"
  rc=$?
  if newer_processes; then
    trust_leader
    left="$(terminate 1)" || echo "executor: left-behind processes survived KILL: ${left#*: }" >&2
  fi
  # read only once the exec has ended (after a dropped stream), so a plain write is whole
  echo "$rc" > "$dir/rc"
  exit "$rc"
  ;;
kill)
  grace="${1:-3}"
  [ "$#" -eq 0 ] || shift
  known="$*"
  trust_leader
  terminate "$grace"
  ;;
rc)
  cat "$dir/rc" 2>/dev/null
  ;;
*)
  echo "executor wrapper: unknown mode '$mode'" >&2
  exit 125
  ;;
esac
