#!/usr/bin/env bash
# checkov (for `adpulse stack check` and tests/stacks/test_checkov.py) in a venv of its own,
# .tools/checkov, from the hashed lock scripts/checkov-requirements.txt: its pins (boto3,
# packaging, networkx) conflict with the project's, so it cannot live in .venv.
# To change the version: edit scripts/checkov-requirements.in, then
#   .tools/bin/uv pip compile --python-version 3.11 --generate-hashes --no-header \
#     scripts/checkov-requirements.in -o scripts/checkov-requirements.txt
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.tools/checkov
LOCK=scripts/checkov-requirements.txt
STAMP="$VENV/.lock.sha256"
want=$(sha256sum "$LOCK" | cut -d' ' -f1)
if [ -x "$VENV/bin/checkov" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; then
    exit 0
fi
echo "==> installing checkov into $VENV/ from $LOCK" >&2
[ -x "$VENV/bin/python" ] || .tools/bin/uv venv --quiet --python python3 "$VENV"
.tools/bin/uv pip sync --quiet --python "$VENV/bin/python" --require-hashes "$LOCK"
echo "$want" > "$STAMP"
