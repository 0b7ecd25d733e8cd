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
exec .venv/bin/pytest "$@"
