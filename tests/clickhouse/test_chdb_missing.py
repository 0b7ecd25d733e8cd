"""chDB is the `local` extra: where it is not installed, a `chdb://` URL is one clear error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from adpulse.clickhouse import embedded
from adpulse.clickhouse.connection import connect
from adpulse.errors import AdpulseError

ROOT = Path(__file__).resolve().parents[2]
MESSAGE = (
    "the embedded ClickHouse (chDB) is not installed: install the `local` extra "
    "(`pip install 'adpulse[local]'`), or point ADPULSE_CLICKHOUSE_URL at a server"
)


def test_a_missing_chdb_is_an_adpulse_error_saying_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "chdb", None)  # what `import chdb` meets without the extra
    monkeypatch.setitem(sys.modules, "chdb.session", None)
    with pytest.raises(AdpulseError) as err:
        connect(f"chdb://{tmp_path}/data")
    assert str(err.value) == MESSAGE
    # refused before anything was made: no data folder, no pool left holding the path
    assert not (tmp_path / "data").exists()
    assert str((tmp_path / "data").resolve()) not in embedded._pools


def test_in_a_fresh_process_without_chdb_the_import_of_adpulse_still_works() -> None:
    # The services import the clickhouse package on hosts that have no chDB at all.
    code = (
        "import sys; sys.modules['chdb'] = None\n"
        "import adpulse.clickhouse.embedded, adpulse.clickhouse.connection\n"
        "from adpulse.clickhouse.connection import connect\n"
        "try:\n"
        "    connect('chdb://' + sys.argv[1])\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, "/nonexistent/adpulse-chdb-test"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    ).stdout
    assert out.strip() == f"ChdbMissingError {MESSAGE}"
