#!/usr/bin/env bash
# Build a tiny root filesystem from Debian's busybox-static into $1.
# Used by `executor images build busybox`; needs apt (Debian) on the host.
set -euo pipefail
out="$1"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then apt-get update -qq; fi
apt-get download -qq busybox-static >/dev/null 2>&1 || { apt-get update -qq && apt-get download -qq busybox-static; }
dpkg-deb -x busybox-static_*.deb pkg
mkdir -p "$out"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,proc,sys,dev,workspace,home}
chmod 1777 "$out/tmp"
cp pkg/bin/busybox "$out/bin/busybox"
for applet in $("$out/bin/busybox" --list); do
  [ -e "$out/bin/$applet" ] || ln -s busybox "$out/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$out/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$out/etc/group"
