"""`adpulse up`: the whole stack in one process tree on embedded defaults.

Broker (tansu) and traffic generator run as child processes; the consumer and the API share
this process because they share the one chDB session a process may open.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType

import typer

from adpulse.clickhouse.client import ClickHouseClient, connect
from adpulse.clickhouse.migrate import Migrator
from adpulse.clickhouse.schema import SchemaOptions
from adpulse.clickhouse.url import EmbeddedTarget, parse_clickhouse_url
from adpulse.errors import ConfigError
from adpulse.kafka.broker import local_broker, port_open
from adpulse.kafka.topics import apply_topics
from adpulse.settings import Settings
from adpulse.topology import single
from consumers.consumer import IngestConsumer
from consumers.metrics import ConsumerMetrics

log = logging.getLogger("adpulse.up")


def run_local(settings: Settings, *, rate: float, generate: bool, dashboard: bool = True) -> None:
    """Start everything, print where it is, and run until Ctrl-C; then stop in order."""
    target = parse_clickhouse_url(settings.clickhouse_url)
    if not isinstance(target, EmbeddedTarget):
        raise ConfigError(
            "ADPULSE_CLICKHOUSE_URL points at a server; `adpulse up` runs the local stack on the "
            "embedded engine. Unset it (or use chdb://PATH), or use `adpulse schema migrate`"
        )
    logs = settings.state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        filename=logs / "adpulse.log",
        level=settings.log_level,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    stop = threading.Event()
    _on_signals(stop)
    with ExitStack() as stack:
        client = connect(settings.clickhouse_url)
        stack.callback(client.close)
        applied = _migrate(client, settings)
        typer.echo(f"ClickHouse  embedded chDB at {Path(target.path).resolve()}")
        typer.echo(f"            database {client.database}, {applied} migration(s) applied now")

        bootstrap = stack.enter_context(_broker(settings, logs))
        settings = settings.model_copy(update={"kafka_bootstrap": bootstrap})
        apply_topics(settings)
        typer.echo(f"Kafka       {bootstrap}  topics {settings.events_topic}, {settings.dlq_topic}")

        consumer = _start_consumer(settings, client, stack)
        typer.echo(
            f"Consumer    flushing every {settings.batch_interval_s:g} s; "
            f"metrics http://127.0.0.1:{settings.metrics_port}/metrics"
        )
        if generate:
            stack.enter_context(_generator(settings, rate, logs))
            typer.echo(f"Generator   {rate:,.0f} events/s (logs in {logs})")
        named = _name_demo_campaigns(settings)
        typer.echo(f"Metadata    {named} demo campaign names added (imports are never replaced)")
        api_url = stack.enter_context(_api(settings, client))
        typer.echo(f"API         {api_url}/docs (open: bound to 127.0.0.1, no API key)")
        if dashboard:
            from adpulse.local.dashboard import run_dashboard

            url = stack.enter_context(run_dashboard(settings, api_url, None, logs))
            typer.echo(f"Dashboard   {url}")
        typer.echo("Ctrl-C stops everything cleanly.")
        _report_until(stop, consumer)
        typer.echo("stopping: generator first, then the consumer flushes and commits")
    typer.echo(
        f"stopped: {consumer.summary.rows:,} events written this run, "
        f"{consumer.summary.dead_letters:,} dead letters"
    )


def _migrate(client: ClickHouseClient, settings: Settings) -> int:
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
    return len(migrator.migrate())


@contextmanager
def _broker(settings: Settings, logs: Path) -> Iterator[str]:
    """Use the configured Kafka if one answers there; else start tansu on that address."""
    host, _, port = settings.kafka_bootstrap.split(",")[0].rpartition(":")
    if port_open(host or "127.0.0.1", int(port)):
        yield settings.kafka_bootstrap
        return
    if host not in ("127.0.0.1", "localhost", ""):
        raise ConfigError(
            f"ADPULSE_KAFKA_BOOTSTRAP={settings.kafka_bootstrap} does not answer, and a local "
            "broker can only be started on 127.0.0.1"
        )
    with local_broker(int(port), log=logs / "broker.log") as bootstrap:
        yield bootstrap


def _start_consumer(
    settings: Settings, client: ClickHouseClient, stack: ExitStack
) -> IngestConsumer:
    metrics = ConsumerMetrics()
    if settings.metrics_port:
        server = metrics.serve(settings.metrics_port)
        stack.callback(server.shutdown)
    consumer = IngestConsumer(settings, client, metrics=metrics, name="adpulse-up")
    thread = threading.Thread(target=consumer.run, name="consumer", daemon=True)
    thread.start()

    def stop_consumer() -> None:
        consumer.stop()
        thread.join(30)

    stack.callback(stop_consumer)
    return consumer


@contextmanager
def _generator(settings: Settings, rate: float, logs: Path) -> Iterator[None]:
    env = {**os.environ, "ADPULSE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap}
    with (logs / "generator.log").open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "generate", "--rate", str(rate)],
            env=env,
            stdout=out,
            stderr=out,
            cwd=Path(__file__).resolve().parents[2],
            start_new_session=True,  # stopped by us, in order, not by the terminal's Ctrl-C
        )
        try:
            yield
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def _name_demo_campaigns(settings: Settings) -> int:
    """Give the generator's campaigns names, so the campaigns table reads like a real one."""
    from adpulse.metadata.campaigns import ensure_demo_campaigns
    from adpulse.metadata.store import open_store
    from adpulse.traffic import TrafficModel, campaigns

    table = campaigns(TrafficModel())
    store = open_store(settings)
    try:
        return ensure_demo_campaigns(store, [(i + 1, a) for i, a in enumerate(table.advertiser_id)])
    finally:
        store.close()


@contextmanager
def _api(settings: Settings, client: ClickHouseClient) -> Iterator[str]:
    """The API in a thread of this process: it must share the consumer's chDB session."""
    from api.server import build_server

    # Warnings only: request logs would bury the status lines a person reads.
    quiet = settings.model_copy(update={"log_level": "WARNING"})
    server = build_server(
        quiet, "127.0.0.1", settings.api_port, auth_required=False, clickhouse_client=client
    )
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise ConfigError(
                f"the API did not start on 127.0.0.1:{settings.api_port}; is the port taken? "
                "Set ADPULSE_API_PORT to a free one"
            )
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{settings.api_port}"
    finally:
        server.should_exit = True
        thread.join(15)


def _on_signals(stop: threading.Event) -> None:
    def handler(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _report_until(stop: threading.Event, consumer: IngestConsumer) -> None:
    """One status line every 10 s until stopped."""
    metrics = consumer.metrics
    while not stop.wait(10):
        freshness = metrics.freshness._value.get()
        typer.echo(
            f"{time.strftime('%H:%M:%S')}  written {consumer.summary.rows:,} events, "
            f"{metrics.rows_per_second._value.get():,.0f}/s, freshness {freshness:.1f} s, "
            f"dead letters {consumer.summary.dead_letters:,}"
        )
