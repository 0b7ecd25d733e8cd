"""A stack made of real parts on this machine, for the rolling-deploy tests.

Three Debian 12 test hosts (systemd, sshd) are the app hosts. What production's services reach
inside the VPC is here on this machine, reached at the bridge's gateway address:
- Kafka: tansu, listening and advertising on the gateway (production: MSK). The events topic
  is not created: on its first partition the consumer reads its in-flight batches from
  ClickHouse with query parameters, which 18.16 lacks, so here the consumer starts, joins its
  group, polls and answers /healthz with no partition to ingest. Ingest itself is tested
  against chDB in tests/consumers;
- ClickHouse: Debian's clickhouse-server 18.16 behind a forwarder, with the role users the
  services log in as (production: the ClickHouse nodes). 18.16 answers the API's readiness query
  and the logins; it cannot hold adpulse's schema, so these tests do not ingest or query events;
- Postgres and Redis on loopback, behind forwarders (production: RDS and ElastiCache).
The services connect with plaintext URLs (`clickhouse://`, `PLAINTEXT`, `redis://`), which
production's settings also accept; TLS to the stack's endpoints is not exercised here.
HAProxy is the load balancer, its `api` and `dashboard` backends over the three hosts.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import paramiko

from adpulse.kafka.broker import local_broker
from deploy.inventory import KAFKA_SCRAM, POSTGRES_MASTER, StackInventory, load_outputs_file
from deploy.ssh import Target, connect
from deploy.stack_secrets import DEPLOY_SECRETS
from tests.support.clickhouse_server import ROLE_PASSWORDS, clickhouse_server, free_port
from tests.support.forward import forward
from tests.support.haproxy import Frontends, haproxy_over
from tests.support.hosts import Host

FIXTURES = Path(__file__).parent / "fixtures"
STACK = "e2e"
# Distinctive values, so a grep for them cannot match by accident.
SECRETS = {
    "clickhouse-admin-password": ROLE_PASSWORDS["admin"],
    "clickhouse-ingest-password": ROLE_PASSWORDS["ingest"],
    "clickhouse-api-password": ROLE_PASSWORDS["api"],
    "redis-auth-token": "e2e-redis-token-Vq7Xw2",
    "postgres-app-password": "e2e-pg-app-pass-K9dLm4",
    POSTGRES_MASTER: json.dumps({"username": "postgres", "password": "e2e-pg-master-Hh31Qs"}),
    KAFKA_SCRAM: json.dumps({"username": "adpulse", "password": "e2e-scram-pass-Ty6Bn0"}),
    "dashboard-api-key": "adp_e2eDashboardKey7Rk2Pw9Zx4Lm8Qs3Tv6Yb1Nc5Hd0",
}


@dataclass
class StackOnHosts:
    hosts: list[Host]
    inventory: StackInventory  # with its secrets
    outputs: Path
    known_hosts: Path
    key_file: Path
    balancer: Frontends
    gateway: str

    def opener(self, target: Target):  # type: ignore[no-untyped-def]
        return connect(target, STACK, self.known_hosts, self.key_file)

    @property
    def secret_values(self) -> list[str]:
        values = []
        for value in self.inventory.secrets.values():
            values.append(value)
            if value.startswith("{"):
                values.append(json.loads(value)["password"])
        return values

    def secret_forms(self) -> dict[str, str]:
        """Each secret value, and the forms it takes in a URL, by names that say which: what a
        grep for a leaked secret looks for (a password inside a connection URL is encoded)."""
        named: dict[str, str] = {}
        for key, value in self.inventory.secrets.items():
            plain = {key: value}
            if value.startswith("{"):
                plain[f"{key} password"] = json.loads(value)["password"]
            for name, text in plain.items():
                named[name] = text
                named[f"{name} (URL-encoded)"] = urllib.parse.quote(text, safe="")
                named[f"{name} (form-encoded)"] = urllib.parse.quote_plus(text)
        forms: dict[str, str] = {}
        for name, text in named.items():
            assert len(text) >= 8, f"secret {name} is too short to grep for safely"
            if text not in forms.values():
                forms[name] = text
        return forms

    def leaks(self, text: str) -> list[str]:
        """The names of the secret forms found in `text` (never the values themselves)."""
        return [name for name, form in self.secret_forms().items() if form in text]


def outputs_doc(
    hosts: list[Host], gateway: str, ch: str, kafka: str, pg: str, redis: str
) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / "outputs-dev.json").read_text())
    doc |= {
        "stack_name": STACK,
        "app_hosts": [
            {
                "name": h.name,
                "instance_id": f"i-{h.name}",
                "private_ip": h.ip,
                "availability_zone": "us-east-1a",
                "private_dns": h.name,
            }
            for h in hosts
        ],
        "clickhouse_url": f"clickhouse://ingest@{ch}/default",
        "topology": "single",
        "kafka_bootstrap": kafka,
        "kafka_security_protocol": "PLAINTEXT",
        "topic_replication_factor": 1,
        "postgres_url": f"postgresql://adpulse_app@{pg}/adpulse_e2e_{uuid.uuid4().hex[:8]}",
        "redis_url": f"redis://{redis}",
        "cloudwatch_metrics": False,
        "dashboard_url": "http://dashboard.e2e.invalid",
    }
    return doc


def _postgres_database(url: str) -> None:
    """The services' login and an empty database for them (trust auth: any password)."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        exists = c.execute("SELECT 1 FROM pg_roles WHERE rolname = 'adpulse_app'").fetchone()
        if not exists:
            c.execute("CREATE ROLE adpulse_app LOGIN")
        c.execute(f'CREATE DATABASE "{name}" OWNER adpulse_app')


@contextmanager
def stack_on_hosts(hosts: list[Host], work: Path) -> Iterator[StackOnHosts]:
    gateway = hosts[0].ip.rsplit(".", 1)[0] + ".1"
    with ExitStack() as stack:
        ch_port = stack.enter_context(clickhouse_server(work / "clickhouse"))
        ch = stack.enter_context(forward(gateway, 0, ch_port))
        pg = stack.enter_context(forward(gateway, 0, 5432))
        redis = stack.enter_context(forward(gateway, 0, 6379))
        kafka = stack.enter_context(local_broker(free_port(), host=gateway, log=work / "tansu.log"))
        doc = outputs_doc(hosts, gateway, ch, kafka, pg, redis)
        _postgres_database(doc["postgres_url"])
        outputs = work / "outputs.json"
        outputs.write_text(json.dumps(doc))
        inv = load_outputs_file(outputs, STACK)
        secrets = {key: SECRETS[key] for key in DEPLOY_SECRETS}
        inv = replace(inv, secrets=secrets)
        known_hosts = work / "known_hosts"
        known_hosts.write_text("".join(h.known_hosts_line + "\n" for h in hosts))
        known_hosts.chmod(0o600)
        servers = {
            "api": ("/readyz", {h.name: f"{h.ip}:{inv.api_port}" for h in hosts}),
            "dashboard": ("/healthz", {h.name: f"{h.ip}:{inv.dashboard_port}" for h in hosts}),
        }
        (work / "haproxy").mkdir(exist_ok=True)
        fronts = stack.enter_context(haproxy_over(work / "haproxy", servers))
        try:
            yield StackOnHosts(
                hosts, inv, outputs, known_hosts, hosts[0].ssh_key_path, fronts, gateway
            )
        finally:
            # While Kafka still runs: a consumer stopped after it waits out its stop timeout
            # trying to commit, and the hosts' poweroff with it.
            for host in hosts:
                try:
                    host.ssh("systemctl stop adpulse-consumer adpulse-api adpulse-dashboard")
                except (OSError, paramiko.SSHException):  # TimeoutError is an OSError
                    pass  # a host a test broke: its poweroff just takes longer


class ProcessArgs:
    """`ps -eo args` on every host, over and over from a thread while the block runs (each host
    on its own SSH session, not the deploy's): `samples` counts the rounds, `leaks` holds
    `host: secret name: the process line with the value cut out` for every secret seen."""

    def __init__(self, stack: StackOnHosts) -> None:
        self.stack = stack
        self.samples = 0
        self.leaks: list[str] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ProcessArgs:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)

    def _run(self) -> None:
        forms = self.stack.secret_forms()
        while not self._stop.is_set():
            for host in self.stack.hosts:
                try:
                    out = host.ssh("ps -eo args", timeout=30).stdout
                except Exception as exc:  # reported by the test: a sampler that never ran
                    self.errors.append(f"{host.name}: {type(exc).__name__}: {exc}")
                    continue
                for line in out.splitlines():
                    for name, form in forms.items():
                        if form in line:
                            self.leaks.append(f"{host.name}: {name}: {line.replace(form, '***')}")
            self.samples += 1
