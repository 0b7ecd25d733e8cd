"""`adpulse up`: the whole stack in one process tree on embedded defaults."""

from __future__ import annotations

from pathlib import Path

import typer

from adpulse.clickhouse.client import connect
from adpulse.clickhouse.migrate import Migrator
from adpulse.clickhouse.schema import SchemaOptions
from adpulse.clickhouse.url import EmbeddedTarget, parse_clickhouse_url
from adpulse.errors import ConfigError
from adpulse.settings import get_settings
from adpulse.topology import single


def run_local(data_dir: str | None) -> None:
    """Apply migrations to the embedded engine and say where everything is."""
    settings = get_settings()
    url = f"chdb://{data_dir}" if data_dir else settings.clickhouse_url
    target = parse_clickhouse_url(url)
    if not isinstance(target, EmbeddedTarget):
        raise ConfigError(
            "ADPULSE_CLICKHOUSE_URL points at a server; `adpulse up` runs the local stack on the "
            "embedded engine. Unset it (or use chdb://PATH), or use `adpulse schema migrate`"
        )
    client = connect(url)
    try:
        migrator = Migrator(
            client,
            single(),
            SchemaOptions(
                database=client.database,
                retention_days=settings.retention_days,
                rollup_retention_days=settings.rollup_retention_days,
                live_retention_days=settings.live_retention_days,
            ),
        )
        applied = migrator.migrate()
        tables = [row[0] for row in client.query(f"SHOW TABLES FROM {client.database}")]
    finally:
        client.close()
    typer.echo(f"ClickHouse (embedded chDB) at {Path(target.path).resolve()}")
    typer.echo(f"  database {target.database}: {', '.join(tables)}")
    typer.echo(f"  migrations applied now: {len(applied)}")
