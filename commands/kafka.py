"""`adpulse kafka topics apply`, `adpulse generate`, `adpulse consume`. Parsing only; with
`--stack`, `topics apply` runs on the stack's host (`deploy.remote_admin`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from commands.stack_options import (
    StackArgs,
    on_stack,
    run_on,
    with_stack_args,
)
from commands.support import domain_errors, print_json

kafka_app = typer.Typer(help="Kafka topics for events and dead letters.")
topics_app = typer.Typer(help="Create or check the topics adpulse uses.")
kafka_app.add_typer(topics_app, name="topics")

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]


@topics_app.command("apply")
@with_stack_args(required=False)
def topics_apply(
    reach: StackArgs,
    json: JsonOpt = False,
) -> None:
    """Create the events and dead-letter topics from settings; report any that differ.

    Existing topics are never altered: a mismatch (partitions, retention) is printed and the
    command exits 1, so a person decides. With --stack, on the stack's first app host over
    SSH, with the stack's Kafka login.
    """
    with domain_errors():
        where = on_stack(reach)
        if where is None:
            from adpulse.kafka.topics import apply_topics
            from adpulse.settings import get_settings

            reports = [r.__dict__ for r in apply_topics(get_settings())]
        else:
            reports = run_on(where, ["kafka", "topics", "apply"], json, changes=True)
    if json:
        print_json(reports)
    else:
        for report in reports:
            typer.echo(f"{report['name']}: {report['action']}")
            for problem in report["problems"]:
                typer.echo(f"  {problem}")
    if any(r["action"] == "mismatch" for r in reports):
        raise typer.Exit(code=1)


def generate_command(
    rate: Annotated[float, typer.Option(help="Messages per second.", min=0.001)] = 1000.0,
    duration: Annotated[
        float | None,
        typer.Option(help="Seconds to run; omit to run until Ctrl-C or SIGTERM.", min=0.1),
    ] = None,
    bad_fraction: Annotated[
        float,
        typer.Option(help="Share of deliberately malformed messages (0..1), for testing."),
    ] = 0.0,
    seed: Annotated[int | None, typer.Option(help="Random seed, for repeatable traffic.")] = None,
    topic_file: Annotated[
        Path | None,
        typer.Option(
            hidden=True,
            help="Produce to the topic this file names and follow it (used by `adpulse up`).",
        ),
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Produce realistic ad events (the model `adpulse seed` uses) at a steady rate."""
    with domain_errors():
        import signal
        import threading

        from rich.progress import Progress, TextColumn, TimeElapsedColumn

        from adpulse.generate import GenerateSummary, TopicFile, generate
        from adpulse.settings import get_settings

        settings = get_settings()
        stopping = threading.Event()
        # SIGTERM (from `adpulse up` or systemd) ends the run cleanly, with a final count.
        signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        with Progress(
            TextColumn("{task.description}"), TimeElapsedColumn(), disable=json, transient=True
        ) as bar:
            task = bar.add_task("starting", total=None)

            def show(s: GenerateSummary) -> None:
                bar.update(task, description=f"sent {s.sent:,} ({s.bad:,} bad), {s.rate:,.0f}/s")

            try:
                summary = generate(
                    settings,
                    rate=rate,
                    duration=duration,
                    bad_fraction=bad_fraction,
                    seed=seed,
                    progress=show,
                    should_stop=stopping.is_set,
                    topic_file=TopicFile(topic_file) if topic_file else None,
                )
            except KeyboardInterrupt:
                raise typer.Exit(code=130) from None
    if json:
        print_json({**summary.__dict__, "rate": summary.rate})
    else:
        typer.echo(
            f"sent {summary.sent:,} messages ({summary.bad:,} malformed) to "
            f"{settings.events_topic} in {summary.seconds:.1f} s ({summary.rate:,.0f}/s)"
        )


def consume_command(
    stop_after_idle: Annotated[
        float | None,
        typer.Option(help="Exit after this many seconds without messages (backfills, tests)."),
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Consume events into ClickHouse in micro-batches until SIGTERM/Ctrl-C.

    Flushes every ADPULSE_BATCH_INTERVAL_S (5 s) or at ADPULSE_BATCH_MAX_ROWS/BYTES; commits
    offsets only after ClickHouse acknowledged; bad messages go to the dead-letter topic.
    Metrics on ADPULSE_METRICS_PORT (/metrics).
    """
    with domain_errors():
        from adpulse.settings import get_settings
        from consumers.service import run_consumer

        summary = run_consumer(get_settings(), stop_after_idle=stop_after_idle)
    if json:
        print_json(summary.__dict__)
    else:
        typer.echo(
            f"wrote {summary.rows:,} events in {summary.batches:,} batches; "
            f"{summary.dead_letters:,} dead letters, {summary.duplicates:,} duplicates dropped"
        )


def register(app: typer.Typer) -> None:
    app.add_typer(kafka_app, name="kafka")
    app.command("generate")(generate_command)
    app.command("consume")(consume_command)
