"""`adpulse serve`, `adpulse apikey create|list|revoke` and `adpulse campaigns import`.

Commands parse options and hand off to `api.server` and `adpulse.metadata`; those are
imported inside the commands so `adpulse --help` stays fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from commands.support import domain_errors, print_json

if TYPE_CHECKING:
    from adpulse.metadata.api_keys import ApiKey
    from adpulse.metadata.store import MetadataStore

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document, for scripts.")]


@contextmanager
def _store() -> Iterator[MetadataStore]:
    """The metadata store of the settings (Postgres, or SQLite under .adpulse/), migrated."""
    from adpulse.metadata.store import open_store
    from adpulse.settings import get_settings

    store = open_store(get_settings())
    try:
        yield store
    finally:
        store.close()


def serve_command(
    host: Annotated[
        str | None, typer.Option(help="Address to bind; default ADPULSE_API_HOST (127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Port to listen on; default ADPULSE_API_PORT (8000)."),
    ] = None,
    no_auth: Annotated[
        bool,
        typer.Option("--no-auth", help="Serve without API keys; refused unless bound to loopback."),
    ] = False,
) -> None:
    """Run the query API alone, as in production. `adpulse up` runs it with the rest."""
    with domain_errors():
        from adpulse.metadata.store import open_store
        from adpulse.settings import get_settings
        from api.server import build_server

        settings = get_settings()
        # Opened here so a wrong ADPULSE_POSTGRES_URL fails as one line before serving.
        store = open_store(settings)
        server = build_server(settings, host, port, auth_required=not no_auth, store=store)
    try:
        server.run()
    finally:
        store.close()


apikey_app = typer.Typer(
    help="API keys for the deployed API. Only hashes are stored; a key is shown once.",
    no_args_is_help=True,
)


def _key_json(key: ApiKey) -> dict[str, object]:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "created_at": key.created_at.isoformat(),
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


@apikey_app.command("create")
def apikey_create(
    name: Annotated[str, typer.Argument(help="Who uses the key, e.g. dashboard-prod.")],
    json: JsonOption = False,
) -> None:
    """Create a key and print it once: store it in your secret manager now."""
    with domain_errors():
        from adpulse.metadata import api_keys

        with _store() as store:
            new = api_keys.create(store, name)
    if json:
        print_json({**_key_json(new.record), "key": new.key})
        return
    typer.echo(new.key)
    typer.echo(
        f"created API key {new.record.id} ({new.record.prefix}...) for {name!r}; "
        "it is not shown again",
        err=True,
    )


@apikey_app.command("list")
def apikey_list(json: JsonOption = False) -> None:
    """List keys by id and prefix (never the key), retiring and revoked ones included."""
    with domain_errors():
        from adpulse.metadata import api_keys

        with _store() as store:
            keys = api_keys.list_keys(store)
    now = datetime.now(UTC)
    if json:
        # `state` because a retiring key (replaced, still verifying) has a revoked_at too.
        print_json([{**_key_json(k), "state": k.state(now)} for k in keys])
        return
    if not keys:
        typer.echo("no API keys; create one with `adpulse apikey create NAME`")
    for k in keys:
        typer.echo(
            f"{k.id:>4}  {k.prefix}...  {k.created_at:%Y-%m-%d %H:%M}  "
            f"{_state_text(k, now):<37}  {k.name}"
        )


def _state_text(key: ApiKey, now: datetime) -> str:
    if key.revoked_at is None:
        return "active"
    when = f"{key.revoked_at:%Y-%m-%d %H:%M}"
    return f"retiring, revoked at {when}" if key.state(now) == "retiring" else f"revoked {when}"


@apikey_app.command("revoke")
def apikey_revoke(
    key: Annotated[str, typer.Argument(help="The key's id or prefix, as `apikey list` shows.")],
    json: JsonOption = False,
) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    with domain_errors():
        from adpulse.metadata import api_keys

        with _store() as store:
            revoked = api_keys.revoke(store, key.removesuffix("..."))
    if json:
        print_json(_key_json(revoked))
        return
    typer.echo(f"revoked API key {revoked.id} ({revoked.prefix}...) of {revoked.name!r}")


campaigns_app = typer.Typer(
    help="Campaign metadata (name, advertiser, status, daily budget) shown by the API.",
    no_args_is_help=True,
)


@campaigns_app.command("import")
def campaigns_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV with a header: campaign_id,name[,advertiser,status,daily_budget_micros]. "
            "Existing campaigns are updated."
        ),
    ],
    json: JsonOption = False,
) -> None:
    """Load campaign metadata from a CSV file; nothing is written if any row is wrong."""
    with domain_errors():
        from adpulse.metadata import campaigns

        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise campaigns.CampaignFileError(f"{file}: cannot read it: {reason}") from None
        rows = campaigns.parse_csv(text, str(file))
        with _store() as store:
            count = campaigns.upsert(store, rows)
    if json:
        print_json({"file": str(file), "imported": count})
        return
    typer.echo(f"imported {count} campaigns from {file}")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)
    app.add_typer(apikey_app, name="apikey")
    app.add_typer(campaigns_app, name="campaigns")
