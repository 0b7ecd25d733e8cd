"""`adpulse schema ...`: render, status, migrate, unlock. Parsing only; the work is in
`adpulse.clickhouse.migrate` and `adpulse.clickhouse.config`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from commands.support import domain_errors, print_json

if TYPE_CHECKING:
    from adpulse.clickhouse.migrate import Migrator

schema_app = typer.Typer(help="ClickHouse schema: render DDL, show and apply migrations.")

TopologyOpt = Annotated[
    str | None,
    typer.Option(
        "--topology",
        help="single, cluster or a topology TOML file; defaults to ADPULSE_TOPOLOGY "
        "(single on the embedded engine).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]


def register(app: typer.Typer) -> None:
    app.add_typer(schema_app, name="schema")


def _migrator(topology: str | None) -> Migrator:
    from adpulse.clickhouse.migrate import Migrator
    from adpulse.clickhouse.roles import connect_as
    from adpulse.clickhouse.schema import schema_options, schema_topology
    from adpulse.settings import get_settings

    settings = get_settings()
    # The topology first: a bad --topology is reported without a login.
    chosen = schema_topology(settings, topology)
    return Migrator(connect_as(settings, "admin"), chosen, schema_options(settings))


@schema_app.command("status")
def status(topology: TopologyOpt = None, json: JsonOpt = False) -> None:
    """Show each migration: applied, pending, failed (and where), or changed since applied."""
    with domain_errors():
        migrator = _migrator(topology)
        rows = migrator.status()
    if json:
        print_json([row.__dict__ for row in rows])
        return
    for row in rows:
        when = row.applied_at.isoformat() if row.applied_at else "-"
        line = f"{row.version:04d}  {row.name:<32} {row.state:<12} {when}"
        typer.echo(line + (f"  {row.detail}" if row.detail else ""))
    if any(row.state in ("failed", "changed", "missing-file") for row in rows):
        raise typer.Exit(code=1)


@schema_app.command("migrate")
def migrate(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the statements that would run; change nothing.")
    ] = False,
    to: Annotated[
        int | None, typer.Option("--to", help="Stop after this version (inclusive).")
    ] = None,
    topology: TopologyOpt = None,
    json: JsonOpt = False,
) -> None:
    """Apply pending migrations in order under a lock, recording each in the ledger."""
    with domain_errors():
        migrator = _migrator(topology)
        if dry_run:
            todo = migrator.pending(to)
            if json:
                print_json(
                    [{"version": p.file.version, "statements": p.statements[r:]} for p, r in todo]
                )
                return
            for plan, resume in todo:
                typer.echo(f"-- {plan.file.path.name} (from statement {resume + 1})")
                for statement in plan.statements[resume:]:
                    typer.echo(statement + ";\n")
            if not todo:
                typer.echo("nothing to apply: schema is up to date")
            return
        applied = migrator.migrate(
            to,
            progress=None
            if json
            else lambda plan, done: typer.echo(
                f"  {plan.file.path.name}: {done}/{len(plan.statements)} statements", err=True
            ),
        )
    if json:
        print_json({"applied": applied})
    else:
        typer.echo(
            f"applied {len(applied)} migration(s): {', '.join(f'{v:04d}' for v in applied)}"
            if applied
            else "nothing to apply: schema is up to date"
        )


@schema_app.command("unlock")
def unlock_command(
    yes: Annotated[bool, typer.Option("--yes", help="Do it without asking.")] = False,
) -> None:
    """Remove a migration lock left by a crashed run. Check that no migration is running."""
    with domain_errors():
        from adpulse.clickhouse.migrate import unlock
        from adpulse.clickhouse.roles import connect_as
        from adpulse.settings import get_settings

        if not yes:
            typer.confirm("Is no other `adpulse schema migrate` running?", abort=True)
        client = connect_as(get_settings(), "admin")
        who = unlock(client, client.database)
    typer.echo(f"lock removed ({who})" if who else "no lock was held")


@schema_app.command("render")
def schema_render(
    topology: TopologyOpt = None,
    out: Annotated[
        Path,
        typer.Option(help="Folder to write one NNNN_name.sql file per migration into."),
    ] = Path("out/schema"),
    json: Annotated[
        bool, typer.Option("--json", help="Print the written paths as one JSON list, for scripts.")
    ] = False,
) -> None:
    """Render the DDL of every migration for a topology, to review or apply by hand."""
    from adpulse.clickhouse.config import render_schema, write_rendered
    from adpulse.clickhouse.schema import schema_options, schema_topology
    from adpulse.settings import load_settings
    from commands.config import report_written
    from commands.support import domain_errors

    with domain_errors():
        # Topology, database and retention as `schema migrate` picks them: the files match
        # what it applies.
        settings = load_settings()
        chosen = schema_topology(settings, topology)
        written = write_rendered(render_schema(chosen, schema_options(settings)), out)
    report_written(written, json)
