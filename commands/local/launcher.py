"""`adpulse up`: the whole stack in one process tree on embedded defaults.

Broker (tansu) and traffic generator run as child processes; the consumer and the API share
this process because they share the one chDB session a process may open.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType

import typer

from adpulse.clickhouse.client import ClickHouseClient, QueryError
from adpulse.clickhouse.migrate import Migrator
from adpulse.clickhouse.roles import connect_as
from adpulse.clickhouse.schema import schema_options, schema_topology
from adpulse.clickhouse.url import EmbeddedTarget, parse_clickhouse_url
from adpulse.errors import ConfigError
from adpulse.generate import TopicFile
from adpulse.kafka.broker import local_broker
from adpulse.local import processes
from adpulse.local.ports import Port, ensure_free
from adpulse.settings import Settings
from commands.local.rotation import CLOSE_DRAIN_S, RotatingIngest
from consumers.metrics import ConsumerMetrics

log = logging.getLogger("adpulse.up")

# A new events topic this often; the old one is deleted once committed (see rotation.py).
DEFAULT_BROKER_WINDOW_S = 60.0
STATUS_EVERY_S = 10.0


def run_local(
    settings: Settings,
    *,
    rate: float,
    generate: bool,
    dashboard: bool = True,
    broker_window_s: float = DEFAULT_BROKER_WINDOW_S,
) -> None:
    """Start everything, print where it is, and run until Ctrl-C; then stop in order."""
    target = parse_clickhouse_url(settings.clickhouse_url)
    if not isinstance(target, EmbeddedTarget):
        raise ConfigError(
            "ADPULSE_CLICKHOUSE_URL points at a server; `adpulse up` runs the local stack on the "
            "embedded engine. Unset it (or use chdb://PATH), or use `adpulse schema migrate`"
        )
    if broker_window_s <= 0:
        raise ConfigError(f"--broker-window must be positive, got {broker_window_s:g}")
    ensure_free(_ports(settings, dashboard))
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
        # One embedded session serves the migrator, the consumer and the API; chDB has no
        # users, and admin is the role allowed all three.
        client = connect_as(settings, "admin")
        stack.callback(client.close)
        applied = _migrate(client, settings)
        typer.echo(f"ClickHouse  embedded chDB at {Path(target.path).resolve()}")
        typer.echo(f"            database {client.database}, {applied} migration(s) applied now")

        bootstrap, own_broker = stack.enter_context(_broker(settings, logs))
        settings = settings.model_copy(update={"kafka_bootstrap": bootstrap})
        ingest = _start_ingest(
            settings,
            client,
            stack,
            own_broker=own_broker,
            rotate=generate and own_broker,
            window_s=broker_window_s,
        )
        if ingest.topic_file is not None:
            typer.echo(
                f"Kafka       {bootstrap} (tansu, started by this run)  topics "
                f"{settings.events_topic}.{ingest.run_id}.N, {settings.dlq_topic}"
            )
            typer.echo(
                f"            a new events topic every {broker_window_s:g} s; each is deleted "
                "once committed, so the broker holds about two windows"
            )
        else:
            owner = "tansu, started by this run" if own_broker else "external"
            typer.echo(
                f"Kafka       {bootstrap} ({owner})  topics "
                f"{settings.events_topic}, {settings.dlq_topic}"
            )
        typer.echo(
            f"Consumer    flushing every {settings.batch_interval_s:g} s; "
            f"metrics http://127.0.0.1:{settings.metrics_port}/metrics"
        )
        if generate:
            stack.enter_context(_generator(settings, rate, logs, ingest.topic_file))
            typer.echo(f"Generator   {rate:,.0f} events/s (logs in {logs})")
        named = _name_demo_campaigns(settings)
        typer.echo(f"Metadata    {named} demo campaign names added (imports are never replaced)")
        api_url = stack.enter_context(_api(settings, client))
        typer.echo(f"API         {api_url}/docs (open: bound to 127.0.0.1, no API key)")
        if dashboard:
            from commands.local.dashboard import run_dashboard

            url = stack.enter_context(run_dashboard(settings, api_url, None, logs))
            typer.echo(f"Dashboard   {url}")
        typer.echo("Ctrl-C stops everything cleanly.")
        _run_until(stop, ingest)
        typer.echo(
            "stopping: generator first, then the consumer reads to the end, flushes, commits"
        )
    typer.echo(
        f"stopped: {ingest.rows:,} events written this run, {ingest.dead_letters:,} dead letters"
    )


def _ports(settings: Settings, dashboard: bool) -> list[Port]:
    """Every port this run will listen on, checked before anything starts."""
    ports = [Port("API", settings.api_port, "ADPULSE_API_PORT")]
    if settings.metrics_port:
        ports.append(Port("consumer metrics", settings.metrics_port, "ADPULSE_METRICS_PORT"))
    if dashboard:
        ports.append(Port("dashboard", settings.dashboard_port, "ADPULSE_DASHBOARD_PORT"))
    host, port = _bootstrap_address(settings)
    if _is_loopback(host):
        ports.append(Port("Kafka broker", port, "ADPULSE_KAFKA_BOOTSTRAP (127.0.0.1:PORT)"))
    return ports


def _migrate(client: ClickHouseClient, settings: Settings) -> int:
    migrator = Migrator(client, schema_topology(settings), schema_options(settings))
    return len(migrator.migrate())


def _bootstrap_address(settings: Settings) -> tuple[str, int]:
    host, _, port = settings.kafka_bootstrap.split(",")[0].rpartition(":")
    if not port.isdigit():
        raise ConfigError(
            f"ADPULSE_KAFKA_BOOTSTRAP={settings.kafka_bootstrap} needs HOST:PORT, "
            "for example 127.0.0.1:9092"
        )
    return host or "127.0.0.1", int(port)


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


@contextmanager
def _broker(settings: Settings, logs: Path) -> Iterator[tuple[str, bool]]:
    """Start tansu on the loopback address configured; an address elsewhere is the user's own
    Kafka, used as it is. Yields (bootstrap, whether this run started the broker)."""
    host, port = _bootstrap_address(settings)
    if not _is_loopback(host):
        yield settings.kafka_bootstrap, False
        return
    with local_broker(port, host=host, log=logs / "broker.log") as bootstrap:
        yield bootstrap, True


def _start_ingest(
    settings: Settings,
    client: ClickHouseClient,
    stack: ExitStack,
    *,
    own_broker: bool,
    rotate: bool,
    window_s: float,
) -> RotatingIngest:
    metrics = ConsumerMetrics()
    if settings.metrics_port:
        server = metrics.serve(settings.metrics_port)
        stack.callback(server.shutdown)
    topic_file = TopicFile(settings.state_dir / "events-topic") if rotate else None
    ingest = RotatingIngest(settings, client, metrics, topic_file, window_s)
    ingest.start()
    # Our broker forgets everything when it stops: read it to the end first. A Kafka of the
    # user's own keeps what is unread for the next run.
    stack.callback(ingest.close, CLOSE_DRAIN_S if own_broker else 0)
    return ingest


@contextmanager
def _generator(
    settings: Settings, rate: float, logs: Path, topic_file: TopicFile | None
) -> Iterator[None]:
    env = {**os.environ, "ADPULSE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap}
    args = [sys.executable, "-m", "cli", "generate", "--rate", str(rate)]
    if topic_file is not None:
        args += ["--topic-file", str(topic_file.path)]
    with (logs / "generator.log").open("ab") as out:
        # Stopped by us, in order, not by the terminal's Ctrl-C; dies with us if we are killed.
        proc = processes.spawn(args, env=env, out=out, cwd=Path(__file__).resolve().parents[2])
        try:
            yield
        finally:
            processes.stop(proc, timeout=15)


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


def _run_until(stop: threading.Event, ingest: RotatingIngest) -> None:
    """Move the events to a new topic when due, and print a status line every 10 s."""
    last_rows, last_at = ingest.rows, time.monotonic()
    while not stop.wait(1):
        ingest.tick()
        now = time.monotonic()
        if now - last_at < STATUS_EVERY_S:
            continue
        rows = ingest.rows
        freshness = ingest.metrics.freshness._value.get()
        typer.echo(
            f"{time.strftime('%H:%M:%S')}  written {rows:,} events, "
            f"{(rows - last_rows) / (now - last_at):,.0f}/s, freshness {freshness:.1f} s, "
            f"dead letters {ingest.dead_letters:,}"
        )
        last_rows, last_at = rows, now
        _log_memory(ingest.client)


def _log_memory(client: ClickHouseClient) -> None:
    """Where this process's memory is, for `adpulse.log`: the whole process against what the
    embedded ClickHouse accounts for (its own tracker and caches)."""
    try:
        rows = client.query(
            "SELECT metric, value FROM system.metrics "
            "WHERE metric = 'MemoryTracking' OR metric LIKE '%CacheBytes'"
        )
        rss_kb = next(
            int(line.split()[1])
            for line in Path("/proc/self/status").read_text().splitlines()
            if line.startswith("VmRSS:")
        )
    except (OSError, StopIteration, QueryError) as exc:
        log.debug("memory not sampled: %s", exc)
        return
    held = {name: int(value) for name, value in rows if int(value)}
    log.info(
        "memory: process RSS %d MB; ClickHouse %s",
        rss_kb // 1024,
        ", ".join(f"{name} {value // 2**20} MB" for name, value in sorted(held.items())),
    )
