"""`adpulse cost report | diff | actual | catalogue refresh`: what a stack costs, offline.

Parsing only; the work is in `cost/`. The report runs the stack's Pulumi program under mocks
(the same run as `adpulse stack check`) and prices it from the bundled, dated catalogue.
"""

from __future__ import annotations

import math
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

cost_app = typer.Typer(
    help="What a stack costs: priced from its Pulumi program and a dated price catalogue, no AWS "
    "account needed. Start with `adpulse cost report --stack prod`.",
    no_args_is_help=True,
)
catalogue_app = typer.Typer(
    help="The bundled price catalogue (cost/catalogue.yaml).", no_args_is_help=True
)
cost_app.add_typer(catalogue_app, name="catalogue")


def register(app: typer.Typer) -> None:
    app.add_typer(cost_app, name="cost")


class Format(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"
    csv = "csv"


class DiffFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


StackOption = Annotated[
    str,
    typer.Option(
        "--stack",
        help="The stack whose config to price: Pulumi.<NAME>.yaml at the project root.",
        envvar="ADPULSE_STACK",
    ),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="KEY=VALUE, repeatable: a stack config key (clickhouseInstanceType"
        "=r6g.xlarge, egress=endpoints, aws:region=eu-west-1), usage.KEY (an assumption, "
        "e.g. usage.kafka_retention_hours=72) or price.KEY (a catalogue price in USD).",
    ),
]


def _finite(value: float | None) -> float | None:
    # the range check passes inf, which would end in an arithmetic traceback
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value:g} is not a number of events; give a finite number >= 0")
    return value


EventsOption = Annotated[
    float | None,
    typer.Option(
        "--events-per-day",
        min=0,
        callback=_finite,
        help="Ad events a day, 0 or more (0 prices the idle stack) [default: the seed's 200M].",
    ),
]
RegionOption = Annotated[
    str | None,
    typer.Option(
        "--region",
        help="Price in this AWS region (the catalogue has us-east-1, "
        "us-west-2, eu-west-1) [default: the stack's aws:region].",
    ),
]
ConfigDirOption = Annotated[
    Path | None,
    typer.Option(help="Directory holding Pulumi.<stack>.yaml [default: the project root]."),
]


@cost_app.command("report")
def cost_report(
    stack: StackOption = "prod",
    fmt: Annotated[
        Format,
        typer.Option(
            "--format", help="table, json (schema: cost/report.schema.json), markdown or csv."
        ),
    ] = Format.table,
    budget: Annotated[
        float | None,
        typer.Option(help="Monthly budget in USD: over it, exit code 3 (CI can gate on it)."),
    ] = None,
    events_per_day: EventsOption = None,
    region: RegionOption = None,
    set_: SetOption = None,
    live_prices: Annotated[
        bool,
        typer.Option(
            "--live-prices",
            help="Read prices from the AWS Price List API (needs credentials); "
            "falls back to the bundled catalogue with a warning.",
        ),
    ] = False,
    config_dir: ConfigDirOption = None,
) -> None:
    """Every resource of the stack priced a month: per line, per component, against the seed's
    figures, per million events, with a capacity check and managed alternatives.

    Exit codes: 0 priced, 1 error (one line on stderr), 2 bad usage, 3 over --budget."""
    from commands.support import domain_errors, print_json
    from cost.report import OVER_BUDGET_EXIT, as_json, build_report, parse_sets

    with domain_errors():
        sets = parse_sets(set_ or [])
        report = build_report(
            stack,
            sets=sets,
            events_per_day=events_per_day,
            region=region,
            budget=budget,
            config_dir=config_dir,
            live_prices=live_prices,
        )
    for warning in report.warnings:
        typer.secho(f"warning: {warning}", fg=typer.colors.YELLOW, err=True)
    if fmt is Format.json:
        print_json(as_json(report))
    else:
        from cost.render import FORMATS

        typer.echo(FORMATS[fmt.value](report), nl=False)
    for fit in report.fits:
        if not fit.fits:
            typer.secho(f"warning: {fit.warning}", fg=typer.colors.YELLOW, err=True)
    if report.over_budget:
        typer.secho(
            f"over budget: ${report.total_monthly_usd:,.2f} > ${budget:,.2f} a month",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(code=OVER_BUDGET_EXIT)


@cost_app.command("diff")
def cost_diff(
    set_: Annotated[
        list[str],
        typer.Option(
            "--set", help="KEY=VALUE, repeatable: what to change (see `cost report --help`)."
        ),
    ],
    stack: StackOption = "prod",
    fmt: Annotated[
        DiffFormat,
        typer.Option("--format", help="table, json or markdown (for a pull-request comment)."),
    ] = DiffFormat.table,
    events_per_day: EventsOption = None,
    config_dir: ConfigDirOption = None,
) -> None:
    """What-if: the stack as configured against the stack with --set changes, line by line.

    Example: adpulse cost diff --set clickhouseInstanceType=r6g.xlarge --set egress=endpoints"""
    from commands.support import domain_errors, print_json
    from cost import diff
    from cost.report import build_report, parse_sets

    with domain_errors():
        sets = parse_sets(set_)
        before = build_report(stack, events_per_day=events_per_day, config_dir=config_dir)
        after = build_report(stack, sets=sets, events_per_day=events_per_day, config_dir=config_dir)
    if fmt is DiffFormat.json:
        print_json(diff.as_json(before, after, set_))
    elif fmt is DiffFormat.markdown:
        typer.echo(diff.as_markdown(before, after, set_), nl=False)
    else:
        typer.echo(diff.as_table(before, after, set_), nl=False)


@cost_app.command("actual")
def cost_actual(
    stack: StackOption = "prod",
    months: Annotated[int, typer.Option(min=1, max=12, help="Full months back.")] = 3,
    json: Annotated[bool, typer.Option("--json", help="As JSON, for scripts.")] = False,
    config_dir: ConfigDirOption = None,
) -> None:
    """Real spend by the stack's tags from Cost Explorer (needs credentials and the Stack and
    Project tags activated as cost allocation tags), beside the estimate."""
    from commands.support import domain_errors, print_json
    from cost.actual import actual
    from cost.beside import as_json, as_text
    from cost.report import build_report

    with domain_errors():
        spent = actual(stack, months)
        estimate = build_report(stack, config_dir=config_dir)
    if json:
        print_json(as_json(spent, estimate))
    else:
        typer.echo(as_text(spent, estimate), nl=False)


@catalogue_app.command("refresh")
def catalogue_refresh(
    region: Annotated[
        list[str] | None,
        typer.Option(
            "--region",
            help="Regions to refresh, repeatable [default: every region the catalogue has].",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Where to write [default: the bundled cost/catalogue.yaml].")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would change; write nothing.")
    ] = False,
) -> None:
    """Rebuild the catalogue's prices from the AWS Price List API (pricing.get_products), keeping
    each price's source and date; prices it cannot find keep their old source."""
    from commands.support import domain_errors
    from cost.catalogue import BUNDLED, load
    from cost.refresh import refresh, write

    with domain_errors():
        base = load()
        regions = region or base.regions()
        keys = sorted({key for key, _ in base.prices})
        catalogue, problems = refresh(regions, keys, base=base)
        changed = [
            p
            for k, p in catalogue.prices.items()
            if k not in base.prices or base.prices[k].usd != p.usd
        ]
        for price in changed:
            old = base.prices.get((price.key, price.region))
            was = f"${old.usd:g}" if old else "new"
            typer.echo(f"{price.region} {price.key}: {was} -> ${price.usd:g} per {price.unit}")
        for problem in problems:
            typer.secho(f"not refreshed: {problem}", fg=typer.colors.YELLOW, err=True)
        if not dry_run:
            target = out or BUNDLED
            write(catalogue, target)
            typer.echo(f"wrote {target}: {len(changed)} price(s) changed")
