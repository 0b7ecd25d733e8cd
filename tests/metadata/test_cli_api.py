"""`adpulse apikey ...`, `adpulse campaigns import` and `adpulse serve` refusals, via CliRunner."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from adpulse.metadata import api_keys, campaigns
from adpulse.metadata.store import open_store
from adpulse.settings import Settings, get_settings
from commands.api import apikey_app, campaigns_app, serve_command


def cli() -> typer.Typer:
    """The commands as cli.py registers them."""
    app = typer.Typer()
    app.command("serve")(serve_command)
    app.add_typer(apikey_app, name="apikey")
    app.add_typer(campaigns_app, name="campaigns")
    return app


@pytest.fixture
def env(store_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The commands read settings from the environment, as in production."""
    if store_settings.postgres_url is not None:
        monkeypatch.setenv("ADPULSE_POSTGRES_URL", store_settings.postgres_url.get_secret_value())
    else:
        monkeypatch.delenv("ADPULSE_POSTGRES_URL", raising=False)
    get_settings.cache_clear()
    yield store_settings
    get_settings.cache_clear()


def run(*args: str) -> typer.testing.Result:
    return CliRunner().invoke(cli(), list(args))


def test_apikey_create_prints_the_key_once_and_it_verifies(env: Settings) -> None:
    result = run("apikey", "create", "dashboard")
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert re.fullmatch(r"adp_[A-Za-z0-9_-]{43}", key)
    assert result.stderr == (
        f"created API key 1 ({key[:12]}...) for 'dashboard'; it is not shown again\n"
    )
    store = open_store(env)
    assert api_keys.verify(store, key)
    store.close()
    listed = run("apikey", "list")
    assert key not in listed.stdout and key[:12] in listed.stdout


def test_apikey_json_list_and_revoke(env: Settings) -> None:
    created = json.loads(run("apikey", "create", "ci", "--json").stdout)
    assert set(created) == {"id", "name", "prefix", "created_at", "revoked_at", "key"}
    listed = json.loads(run("apikey", "list", "--json").stdout)
    assert [k["prefix"] for k in listed] == [created["prefix"]]
    assert "key" not in listed[0]
    revoked = run("apikey", "revoke", created["prefix"] + "...")
    assert revoked.stdout == f"revoked API key {created['id']} ({created['prefix']}...) of 'ci'\n"
    after = json.loads(run("apikey", "list", "--json").stdout)
    assert after[0]["revoked_at"] is not None


def test_apikey_list_shows_a_replaced_key_retiring_until_its_revocation(env: Settings) -> None:
    """A rotated dashboard key still verifies for the grace; `list` says so, and until when."""
    old_key, new_key = "adp_" + "Old1" * 10 + "Old", "adp_" + "New2" * 10 + "New"
    store = open_store(env)
    try:
        gone = api_keys.create(store, "ci")
        api_keys.revoke(store, str(gone.record.id))
        api_keys.register(store, api_keys.DASHBOARD, old_key)
        rotated = api_keys.register(store, api_keys.DASHBOARD, new_key)
        gone_record, old, new = api_keys.list_keys(store)
    finally:
        store.close()
    assert old.revoked_at is not None and old.revoked_at == rotated.revoked[0].revoked_at
    assert gone_record.revoked_at is not None

    def line(key: api_keys.ApiKey, state: str) -> str:
        created = f"{key.created_at:%Y-%m-%d %H:%M}"
        return f"{key.id:>4}  {key.prefix}...  {created}  {state:<37}  {key.name}"

    listed = run("apikey", "list")
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.splitlines() == [
        line(gone_record, f"revoked {gone_record.revoked_at:%Y-%m-%d %H:%M}"),
        line(old, f"retiring, revoked at {old.revoked_at:%Y-%m-%d %H:%M}"),
        line(new, "active"),
    ]
    as_json = json.loads(run("apikey", "list", "--json").stdout)
    assert [(k["id"], k["state"], k["revoked_at"]) for k in as_json] == [
        (gone_record.id, "revoked", gone_record.revoked_at.isoformat()),
        (old.id, "retiring", old.revoked_at.isoformat()),
        (new.id, "active", None),
    ]
    # An explicit revoke has no grace.
    assert run("apikey", "revoke", str(old.id)).exit_code == 0
    after = json.loads(run("apikey", "list", "--json").stdout)
    assert [k["state"] for k in after] == ["revoked", "revoked", "active"]
    store = open_store(env)
    try:
        assert not api_keys.verify(store, old_key) and api_keys.verify(store, new_key)
    finally:
        store.close()


def test_apikey_revoke_unknown_is_one_line_and_exit_1(env: Settings) -> None:
    result = run("apikey", "revoke", "7")
    assert result.exit_code == 1
    assert result.stderr == ("error: no API key with id or prefix '7'; see `adpulse apikey list`\n")


def test_apikey_list_when_empty_says_how_to_create(env: Settings) -> None:
    assert run("apikey", "list").stdout == (
        "no API keys; create one with `adpulse apikey create NAME`\n"
    )


def test_campaigns_import(env: Settings, tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("campaign_id,name,advertiser\n1,Spring,Acme\n2,Fall,Globex\n")
    result = run("campaigns", "import", str(path))
    assert (result.exit_code, result.stdout) == (0, f"imported 2 campaigns from {path}\n")
    assert json.loads(run("campaigns", "import", str(path), "--json").stdout) == {
        "file": str(path),
        "imported": 2,
    }
    store = open_store(env)
    assert campaigns.by_ids(store, [1, 2])[2].name == "Fall"
    store.close()


def test_campaigns_import_bad_file_is_one_line_and_exit_1(env: Settings, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("campaign_id,name\nx,y\n")
    result = run("campaigns", "import", str(path))
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {path}: nothing imported; fix line 2: campaign_id 'x' is not a whole number "
        "in 0..4294967295\n"
    )
    missing = run("campaigns", "import", str(tmp_path / "nope.csv"))
    assert missing.exit_code == 1
    assert (
        missing.stderr
        == f"error: {tmp_path / 'nope.csv'}: cannot read it: No such file or directory\n"
    )


@pytest.mark.parametrize("store_settings", ["sqlite"], indirect=True)
def test_serve_no_auth_off_loopback_is_refused(env: Settings) -> None:
    result = run("serve", "--host", "0.0.0.0", "--no-auth")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: --no-auth on 0.0.0.0 would serve every number")
    assert len(result.stderr.splitlines()) == 1
