#!/usr/bin/env bash
# Make sure the tools the registry tests need are installed: Debian's
# docker-registry (the `docker-registry` binary, Distribution 2.x) and
# htpasswd (apache2-utils).
#
# Idempotent: when both commands exist, it does nothing. It only installs; it
# never starts a registry service (the tests start and stop their own registry
# process on a free port of 127.0.0.1). Exit 0 when both are there, 3 with a
# readable message when they could not be installed.
set -euo pipefail

say() { printf 'ensure-registry: %s\n' "$*" >&2; }

have_all() { command -v docker-registry >/dev/null 2>&1 && command -v htpasswd >/dev/null 2>&1; }

if have_all; then
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  say "docker-registry or htpasswd is missing; as root run: apt-get install docker-registry apache2-utils"
  exit 3
fi

say "installing Debian's docker-registry and apache2-utils"
# Keep the package's own service from starting: the tests run their own registry.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod +x "$policy"
  created_policy=1
fi
cleanup() { if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq --no-install-recommends docker-registry apache2-utils >/dev/null 2>&1; then
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends docker-registry apache2-utils >/dev/null
fi

if ! have_all; then
  say "docker-registry or htpasswd is still missing after apt-get install"
  exit 3
fi
say "installed $(command -v docker-registry) and $(command -v htpasswd)"
