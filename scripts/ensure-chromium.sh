#!/usr/bin/env bash
# Make sure Debian's chromium is installed for the web UI's browser tests
# (tests/integration/test_ui.py drive /usr/bin/chromium with Playwright; Playwright's own
# browser download, `playwright install`, is never used).
#
# Idempotent: when /usr/bin/chromium exists, it does nothing. It only installs; nothing is
# started (each test launches its own headless browser and closes it). Exit 0 when chromium is
# there, 3 with a readable message when it could not be installed.
set -euo pipefail

say() { printf 'ensure-chromium: %s\n' "$*" >&2; }

CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  say "$CHROMIUM is missing; as root run: apt-get install chromium"
  exit 3
fi

say "installing Debian's chromium"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq chromium >/dev/null 2>&1; then
  apt-get update -qq >/dev/null
  apt-get install -y -qq chromium >/dev/null
fi

if [ ! -x "$CHROMIUM" ]; then
  say "$CHROMIUM is still missing after apt-get install chromium"
  exit 3
fi
say "installed $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
