#!/usr/bin/env bash
# Build a minimal Debian bookworm root filesystem into $1 with debootstrap.
# Used by `executor images build debian`; needs root and Debian's mirror.
set -euo pipefail
out="$1"
mirror="${EXECUTOR_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
if ! command -v debootstrap >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi
debootstrap --variant=minbase bookworm "$out" "$mirror" >"$out.log" 2>&1 || { tail -n 20 "$out.log" >&2; exit 1; }
rm -f "$out.log"
# Keep the image small and its apt usable over plain http.
rm -rf "$out"/var/cache/apt/archives/*.deb "$out"/var/lib/apt/lists/*
echo "deb $mirror bookworm main" >"$out/etc/apt/sources.list"
mkdir -p "$out/workspace"
