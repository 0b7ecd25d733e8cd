"""`adpulse schema ...`: render, status, migrate, unlock. Parsing only; the work is in
`adpulse.clickhouse.migrate` and `adpulse.clickhouse.config`, and with `--stack` in
`deploy.remote_admin`, which runs the same command on the stack's first app host."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from commands.stack_options import (
    StackArgs,
    on_stack,
    run_on,
    with_stack_args,
)
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
@with_stack_args(required=False)
def status(
    reach: StackArgs,
    topology: TopologyOpt = None,
    json: JsonOpt = False,
) -> None:
    """Show each migration: applied, pending, failed (and where), or changed since applied."""
    with domain_errors():
        where = on_stack(reach, {"--topology": topology})
        if where is None:
            rows = [row.__dict__ for row in _migrator(topology).status()]
        else:
            rows = run_on(where, ["schema", "status"], json, changes=False)
    if json:
        print_json(rows)
    else:
        for row in rows:
            when = _when(row["applied_at"])
            line = f"{row['version']:04d}  {row['name']:<32} {row['state']:<12} {when}"
            typer.echo(line + (f"  {row['detail']}" if row["detail"] else ""))
    if any(row["state"] in ("failed", "changed", "missing-file") for row in rows):
        raise typer.Exit(code=1)


def _when(applied_at: datetime | str | None) -> str:
    """As `isoformat()` prints it, whether a datetime or its JSON text (`str(datetime)`)."""
    if applied_at is None:
        return "-"
    if isinstance(applied_at, str):
        applied_at = datetime.fromisoformat(applied_at)
    return applied_at.isoformat()


@schema_app.command("migrate")
@with_stack_args(required=False)
def migrate(
    reach: StackArgs,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the statements that would run; change nothing.")
    ] = False,
    to: Annotated[
        int | None, typer.Option("--to", help="Stop after this version (inclusive).")
    ] = None,
    topology: TopologyOpt = None,
    json: JsonOpt = False,
) -> None:
    """Apply pending migrations in order under a lock, recording each in the ledger.

    With --stack, on the stack's first app host over SSH, as the admin role."""
    with domain_errors():
        where = on_stack(reach, {"--topology": topology})
        args = ["schema", "migrate", *(["--to", str(to)] if to is not None else [])]
        if dry_run:
            if where is None:
                migrator = _migrator(topology)
                todo = [
                    {
                        "version": plan.file.version,
                        "name": plan.file.path.name,
                        "from_statement": resume + 1,
                        "statements": plan.statements[resume:],
                    }
                    for plan, resume in migrator.pending(to)
                ]
            else:
                todo = run_on(where, [*args, "--dry-run"], json, changes=False)
        elif where is None:
            applied = _migrator(topology).migrate(
                to,
                progress=None
                if json
                else lambda plan, done: typer.echo(
                    f"  {plan.file.path.name}: {done}/{len(plan.statements)} statements",
                    err=True,
                ),
            )
        else:
            from deploy.remote_admin import MIGRATE_TIMEOUT_S

            applied = run_on(where, args, json, changes=True, timeout=MIGRATE_TIMEOUT_S)["applied"]
    if dry_run:
        _print_pending(todo, json)
    elif json:
        print_json({"applied": applied})
    else:
        typer.echo(
            f"applied {len(applied)} migration(s): {', '.join(f'{v:04d}' for v in applied)}"
            if applied
            else "nothing to apply: schema is up to date"
        )


def _print_pending(todo: list[dict[str, Any]], json: bool) -> None:
    if json:
        print_json(todo)
        return
    for item in todo:
        # A release before `name` and `from_statement` were printed shows the version only.
        name = item.get("name") or f"migration {item['version']:04d}"
        typer.echo(f"-- {name} (from statement {item.get('from_statement', '?')})")
        for statement in item["statements"]:
            typer.echo(statement + ";\n")
    if not todo:
        typer.echo("nothing to apply: schema is up to date")


@schema_app.command("unlock")
@with_stack_args(required=False)
def unlock_command(
    reach: StackArgs,
    yes: Annotated[bool, typer.Option("--yes", help="Do it without asking.")] = False,
    json: JsonOpt = False,
) -> None:
    """Remove a migration lock left by a crashed run. Check that no migration is running.

    With --stack, on the stack's first app host over SSH, as the admin role."""
    with domain_errors():
        where = on_stack(reach)
        if not yes:
            # Asked here, before any host is reached; the host's run is told --yes.
            against = f" against stack {where.stack}" if where is not None else ""
            question = f"Is no other `adpulse schema migrate` running{against}?"
            typer.confirm(question, abort=True, err=json)
        if where is None:
            from adpulse.clickhouse.migrate import unlock
            from adpulse.clickhouse.roles import connect_as
            from adpulse.settings import get_settings

            client = connect_as(get_settings(), "admin")
            who = unlock(client, client.database)
        else:
            who = run_on(where, ["schema", "unlock", "--yes"], json, changes=True)["holder"]
    if json:
        print_json({"removed": who is not None, "holder": who})
    else:
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
