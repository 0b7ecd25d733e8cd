#!/usr/bin/env bash
# What the dashboard's tests need: Debian's chromium (never a downloaded browser) and the npm
# packages of dashboard/package-lock.json. Installs only what is missing or changed.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "missing /usr/bin/chromium (run as root or: sudo apt-get install chromium)" >&2
        exit 1
    fi
    echo "==> apt-get install chromium" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

command -v npm >/dev/null || { echo "npm is missing: install Node.js 20.9+ with npm (https://nodejs.org)" >&2; exit 1; }

# The same stamp adpulse.local.dashboard writes, so `adpulse up` does not install again.
stamp=dashboard/node_modules/.adpulse-package-lock.sha256
want=$(sha256sum dashboard/package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "==> npm ci (dashboard/)" >&2
    (cd dashboard && NEXT_TELEMETRY_DISABLED=1 npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$stamp"
fi
