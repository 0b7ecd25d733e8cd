#!/usr/bin/env bash
# The dashboard's own checks: unit tests (vitest) and the TypeScript type check. The browser
# tests run under pytest (tests/dashboard/test_e2e.py) against `adpulse up`.
set -euo pipefail
cd "$(dirname "$0")/../dashboard"

echo "==> dashboard: vitest" >&2
npm test --silent
echo "==> dashboard: tsc" >&2
npx --no-install tsc --noEmit
