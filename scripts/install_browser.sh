#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (tests/browser), unless it is already
# there. Playwright drives it directly, so `playwright install` is never needed.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  echo "browser: /usr/bin/chromium present"
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "browser: run as root or install sudo to apt-get chromium" >&2; exit 1; }
  sudo=sudo
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver
echo "browser: installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
