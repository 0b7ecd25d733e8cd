"""The dashboard's committed OpenAPI snapshot is the API's current document.

`dashboard/src/types/api.d.ts` is generated from `dashboard/openapi.json` (a vitest test checks
that step), so this test is what keeps the dashboard's types from drifting from the API.
Refresh both with: `.venv/bin/python -m tests.dashboard.test_openapi_drift --write` and then
`npm run gen:types` in dashboard/.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from adpulse.settings import load_settings
from api.app import create_app

SNAPSHOT = Path(__file__).resolve().parents[2] / "dashboard" / "openapi.json"
FIX = (
    "refresh it: `.venv/bin/python -m tests.dashboard.test_openapi_drift --write`, then "
    "`npm run gen:types` in dashboard/ and fix what the type check reports"
)


def current_document() -> dict[str, Any]:
    """The document the deployed API publishes (API keys on)."""
    app = create_app(load_settings(), auth_required=True)
    return app.openapi()


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def test_snapshot_is_the_apps_document() -> None:
    assert SNAPSHOT.exists(), f"{SNAPSHOT} is missing; {FIX}"
    committed = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    current = current_document()
    changed = sorted(
        key
        for key in set(committed.get("paths", {})) | set(current.get("paths", {}))
        if committed.get("paths", {}).get(key) != current.get("paths", {}).get(key)
    )
    assert committed == current, (
        f"dashboard/openapi.json differs from the API's document (paths changed: "
        f"{', '.join(changed) or 'none; components or info changed'}); {FIX}"
    )


def test_snapshot_is_rendered_canonically() -> None:
    """Written by `render`, so a refresh shows only real changes in a diff."""
    text = SNAPSHOT.read_text(encoding="utf-8")
    assert text == render(json.loads(text)), f"dashboard/openapi.json is hand-formatted; {FIX}"


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python -m tests.dashboard.test_openapi_drift --write")
    SNAPSHOT.write_text(render(current_document()), encoding="utf-8")
    print(f"wrote {SNAPSHOT}")
