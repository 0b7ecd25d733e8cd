"""`adpulse up`: the whole stack on this machine. Parsing only; the launcher is
`commands.local.launcher`."""

from __future__ import annotations

from typing import Annotated

import typer

from commands.support import domain_errors


def up_command(
    rate: Annotated[
        float, typer.Option(help="Generated events per second (200M/day is about 2,300/s).")
    ] = 2000.0,
    no_generator: Annotated[
        bool, typer.Option("--no-generator", help="Do not generate traffic; consume only.")
    ] = False,
    no_dashboard: Annotated[
        bool, typer.Option("--no-dashboard", help="Skip the dashboard (no Node.js needed).")
    ] = False,
    broker_window: Annotated[
        float,
        typer.Option(
            help=(
                "Seconds of events per topic on the local broker. The generator moves to a new "
                "topic this often and the old one is deleted once committed, so the broker "
                "holds about two windows (about 40 MB per minute at 2,000 events/s)."
            ),
            min=1,
        ),
    ] = 60.0,
) -> None:
    """Run adpulse on this machine until Ctrl-C: embedded ClickHouse, a local Kafka-protocol
    broker, a traffic generator, the consumer, the API and the dashboard (one URL to open).
    Data stays in .adpulse/."""
    with domain_errors():
        from adpulse.settings import get_settings
        from commands.local.launcher import run_local

        run_local(
            get_settings(),
            rate=rate,
            generate=not no_generator,
            dashboard=not no_dashboard,
            broker_window_s=broker_window,
        )


def register(app: typer.Typer) -> None:
    app.command("up")(up_command)
