"""`adpulse seed`: fill the events table, and through its views the rollups, with history.

Parsing only; the work is in `adpulse.seed`. Imports stay inside the command so `adpulse --help`
does not load ClickHouse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from adpulse.clickhouse.client import ClickHouseClient
    from adpulse.seed import SeedSummary
    from adpulse.settings import Settings


def seed_command(
    events: Annotated[
        int, typer.Option("--events", min=1, help="How many events to insert.")
    ] = 1_000_000,
    days: Annotated[
        int,
        typer.Option("--days", min=1, max=366, help="Spread them over this many days up to now."),
    ] = 1,
    seed: Annotated[
        int, typer.Option("--seed", min=0, help="Random seed: same seed and end, same rows.")
    ] = 42,
    json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Insert realistic ad events generated inside ClickHouse (applies migrations first)."""
    from commands.support import domain_errors, print_json

    with domain_errors():
        summary = _seed(events, days, seed)
    if json:
        print_json(
            {
                "rows": summary.rows,
                "chunks": summary.chunks,
                "seconds": summary.seconds,
                "rows_per_second": summary.rows_per_second,
                "start": summary.start.isoformat(),
                "end": summary.end.isoformat(),
            }
        )
        return
    typer.echo(
        f"seeded {summary.rows:,} events from {summary.start:%Y-%m-%d %H:%M} to "
        f"{summary.end:%Y-%m-%d %H:%M} UTC in {summary.chunks} inserts: "
        f"{summary.seconds:.1f} s, {summary.rows_per_second:,.0f} rows/s"
    )


def _seed(events: int, days: int, seed: int) -> SeedSummary:
    from datetime import UTC, datetime

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from adpulse.clickhouse.roles import connect_as
    from adpulse.seed import seed as run_seed
    from adpulse.settings import get_settings
    from adpulse.traffic import TrafficModel

    settings = get_settings()
    # admin: seeding applies pending migrations first.
    client = connect_as(settings, "admin")
    try:
        _migrate(client, settings)
        # Progress goes to stderr so `--json` output stays parseable.
        columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task(f"0/{events:,} rows", total=None)

            def advance(done: int, total: int, rows: int) -> None:
                bar.update(
                    task, completed=done, total=total, description=f"{rows:,}/{events:,} rows"
                )

            end = datetime.now(UTC)
            return run_seed(client, TrafficModel(), events, days, end, seed=seed, progress=advance)
    finally:
        client.close()


def _migrate(client: ClickHouseClient, settings: Settings) -> None:
    """Apply pending migrations with the same options `adpulse schema migrate` uses."""
    from adpulse.clickhouse.migrate import Migrator
    from adpulse.clickhouse.schema import schema_options, schema_topology

    Migrator(client, schema_topology(settings), schema_options(settings)).migrate()


def register(app: typer.Typer) -> None:
    app.command("seed")(seed_command)
