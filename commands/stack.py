"""`adpulse stack check`: the Pulumi program under mocks, judged by policies and checkov.

Parsing only; the work is `stacks.check.check_stack`. Pulumi and the stack modules are imported
inside the command so `adpulse --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

stack_app = typer.Typer(
    help="The infrastructure program (stacks/), checked without AWS.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(stack_app, name="stack")


@stack_app.command("check")
def stack_check(
    stack: Annotated[
        str,
        typer.Option(
            "--stack",
            help="The stack whose config to use: Pulumi.<NAME>.yaml at the project root.",
            envvar="ADPULSE_STACK",
        ),
    ] = "prod",
    json: Annotated[bool, typer.Option("--json", help="The whole report as JSON.")] = False,
    plan: Annotated[
        Path | None,
        typer.Option(
            help="Where to write the Terraform plan JSON checkov reads "
            "[default: out/stack-check/<stack>-plan.json].",
        ),
    ] = None,
    checkov: Annotated[
        bool,
        typer.Option(help="Run checkov over the plan (installed by scripts/checkov-deps.sh)."),
    ] = True,
    config_dir: Annotated[
        Path | None,
        typer.Option(help="Directory holding Pulumi.<stack>.yaml [default: the project root]."),
    ] = None,
) -> None:
    """Run the program under mocks; print its inventory and every policy's verdict; exit 1 on a
    violation. `secure:` values become fake placeholders (the mocks cannot decrypt them)."""
    from commands.support import domain_errors, print_json
    from stacks.check import as_json, as_text, check_stack

    with domain_errors():
        from stacks.inventory import ROOT

        report = check_stack(stack, plan, scan=checkov, config_dir=config_dir or ROOT)
    if json:
        print_json(as_json(report))
    else:
        typer.echo("\n".join(as_text(report)))
    if not report.ok:
        raise typer.Exit(code=1)
