"""Inspect a chDB path from a fresh process (a process may open only one chDB path).

python -m tests.support.chdb_probe PATH [DATABASE]  ->  JSON verdict on stdout
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.oracle import Verdict


def probe(path: str, database: str = "adpulse") -> Verdict:
    out = subprocess.run(
        [sys.executable, "-m", "tests.support.chdb_probe", path, database],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    data = json.loads(out)
    return Verdict(data["rows"], frozenset(data["ids"]), data["rollups_match"])


def main() -> None:
    from adpulse.clickhouse.connection import connect
    from tests.support.oracle import inspect

    path, database = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "adpulse"
    client = connect(f"chdb://{path}?database={database}")
    verdict = inspect(client)
    client.close()
    json.dump(
        {"rows": verdict.rows, "ids": sorted(verdict.ids), "rollups_match": verdict.rollups_match},
        sys.stdout,
    )


if __name__ == "__main__":
    main()
