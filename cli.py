"""The `adpulse` command. Commands parse options and hand off; the work lives in modules.

Imports stay inside commands so `adpulse --help` answers fast: chDB, confluent-kafka and
pulumi_aws each take a long time to import.
"""

from __future__ import annotations

from typing import Annotated

import typer

from adpulse.cli_api import apikey_app, campaigns_app, serve_command
from adpulse.cli_kafka import consume_command, generate_command, kafka_app
from adpulse.cli_render import config_app, schema_render
from adpulse.cli_schema import schema_app
from adpulse.cli_seed import seed_command
from adpulse.cli_support import domain_errors

app = typer.Typer(
    name="adpulse",
    help=(
        "Real-time ad analytics on your own AWS account.\n\n"
        "Start here: `adpulse up` runs the whole stack on this machine with embedded defaults. "
        "Settings come from ADPULSE_* variables (or .env); see README.md."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.command()
def up(
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
        from adpulse.local.up import run_local
        from adpulse.settings import get_settings

        run_local(
            get_settings(),
            rate=rate,
            generate=not no_generator,
            dashboard=not no_dashboard,
            broker_window_s=broker_window,
        )


schema_app.command("render")(schema_render)
app.add_typer(schema_app, name="schema")
app.add_typer(config_app, name="config")
app.command("seed")(seed_command)
app.add_typer(kafka_app, name="kafka")
app.command("generate")(generate_command)
app.command("consume")(consume_command)
app.command("serve")(serve_command)
app.add_typer(apikey_app, name="apikey")
app.add_typer(campaigns_app, name="campaigns")


if __name__ == "__main__":
    app()
