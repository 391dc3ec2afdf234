#!/usr/bin/env bash
# A second, independent Docker engine on this machine, in its own network namespace: a second
# "host" for the worker tests. Needs root and engine 1 answering with executor/busybox:latest.
#
#   scripts/second-engine.sh up|down
#
# NAME (default exhost2) names the namespace, socket /run/docker-NAME.sock and roots;
# NET (default 10.251.0) is the /30 of the veth link: host side NET.1, namespace side NET.2.
# `up` prints nothing else but errors; `down` removes everything `up` made, in order.
set -u
N=${NAME:-exhost2}
NET=${NET:-10.251.0}
SOCK=/run/docker-$N.sock; DATA=/var/lib/docker-$N; EXEC=/run/docker-$N; PIDF=/run/docker-$N.pid
CONF=/run/docker-$N.json; LOG=/tmp/dockerd-$N.log
D2="docker -H unix://$SOCK"

up() {
  ip netns add "$N" && ip -n "$N" link set lo up || return 1
  ip link add "v-$N-h" type veth peer name "v-$N-n" netns "$N" || return 1
  ip addr add "$NET.1/30" dev "v-$N-h" && ip link set "v-$N-h" up || return 1
  ip -n "$N" addr add "$NET.2/30" dev "v-$N-n" && ip -n "$N" link set "v-$N-n" up || return 1
  mkdir -p "$DATA" "$EXEC"
  # its own engine id: 20.10 reads it from /etc/docker/key.json unless told otherwise
  printf '{"deprecated-key-path": "%s/key.json"}\n' "$DATA" > "$CONF"
  # nsenter, not `ip netns exec` (that remounts /sys and dockerd finds no devices cgroup)
  nsenter --net=/run/netns/"$N" dockerd --data-root "$DATA" --exec-root "$EXEC" \
    --pidfile "$PIDF" -H "unix://$SOCK" --config-file "$CONF" \
    --cgroup-parent "/docker-$N" >"$LOG" 2>&1 </dev/null &
  for _ in $(seq 1 240); do $D2 version >/dev/null 2>&1 && break; sleep 0.25; done
  $D2 version >/dev/null 2>&1 || { echo "engine $N did not start:" >&2; tail -5 "$LOG" >&2; return 1; }
  docker save executor/busybox:latest | $D2 load -q >/dev/null
}

down() {
  if [ -f "$PIDF" ]; then
    p=$(cat "$PIDF"); kill -TERM "$p" 2>/dev/null
    for _ in $(seq 1 120); do kill -0 "$p" 2>/dev/null || break; sleep 0.5; done
  fi
  for root in "$EXEC" "$DATA"; do
    for m in $(awk -v d="$root" '$2 ~ "^"d {print $2}' /proc/mounts | sort -r); do umount "$m"; done
  done
  rm -rf "$DATA" "$EXEC" "$PIDF" "$SOCK" "$CONF" "$LOG"
  for d in /sys/fs/cgroup/*/docker-"$N" /sys/fs/cgroup/docker-"$N"; do
    [ -d "$d" ] && rmdir "$d" 2>/dev/null
  done
  ip link del "v-$N-h" 2>/dev/null
  ip netns del "$N" 2>/dev/null
  left=$(grep -c "docker-$N" /proc/mounts)
  [ "$left" = 0 ] || { echo "engine $N: $left mount(s) left" >&2; return 1; }
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
