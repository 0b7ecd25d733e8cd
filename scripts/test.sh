#!/usr/bin/env bash
# The whole test suite: lint, types, then pytest against real parts. Run through ./dev test.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/system-deps.sh
bash scripts/services.sh
bash scripts/dashboard-deps.sh
bash scripts/checkov-deps.sh  # its own venv: tests/stacks/test_checkov.py runs the real checkov

echo "==> ruff" >&2
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "==> mypy" >&2
.venv/bin/mypy
echo "==> dashboard: unit tests and type-check" >&2
bash scripts/test-dashboard.sh
echo "==> pytest" >&2
# Given test paths: those, in one pytest.
for arg in "$@"; do
    case "$arg" in -*) ;; *) exec .venv/bin/pytest "$@" ;; esac
done
# The whole suite: the deploy tests (real systemd hosts; mostly waiting on them) run beside the
# rest, in a second pytest, which then runs the dashboard's browser test: network interfaces
# coming and going (the hosts' veths) make Chromium abort with ERR_NETWORK_CHANGED, so the two
# never overlap. Each pytest has its own services and temporary paths.
hosts_log=$(mktemp)
.venv/bin/pytest "$@" -p no:cacheprovider tests/deploy tests/dashboard > "$hosts_log" 2>&1 &
hosts=$!
set +e
.venv/bin/pytest "$@" --ignore=tests/deploy --ignore=tests/dashboard
rest=$?
wait "$hosts"
hosts_rc=$?
echo "==> pytest tests/deploy tests/dashboard (ran beside the rest)" >&2
cat "$hosts_log"
rm -f "$hosts_log"
[ "$rest" -eq 0 ] && [ "$hosts_rc" -eq 0 ]
