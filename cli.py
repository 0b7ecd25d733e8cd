"""The `adpulse` command: the app, and each command group of `commands/` registering itself.
Commands parse options and hand off; the work lives in the services and the library.

Imports stay inside commands so `adpulse --help` answers fast: chDB, confluent-kafka and
pulumi_aws each take a long time to import.
"""

from __future__ import annotations

import typer

from commands import api, config, cost, deploy, kafka, schema, seed, stack, up

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


for group in (up, schema, config, seed, kafka, api, stack, cost, deploy):
    group.register(app)


if __name__ == "__main__":
    app()
