"""The stack's inventory: hosts, endpoints and secret ARNs, whichever source they come from.

Three sources give the same `StackInventory`: `pulumi stack output --json --show-secrets`
(`from_pulumi_cli`), that document saved to a file (`load_outputs_file`), and the AWS resources
carrying the stack's tags (`deploy.discover.discover`). Field names are the stack's output
names, which are the settings' names (STYLE rule 2). Secret values are not outputs: the stack
exports their ARNs, and `deploy.stack_secrets.with_secrets` reads the values into `secrets`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from adpulse.errors import AdpulseError
from deploy.stack_facts import STACK_SECRETS

ROOT = Path(__file__).resolve().parents[1]  # Pulumi.yaml: where `pulumi stack output` runs
KAFKA_SCRAM = "kafka-scram"  # `secret_arns` key of `kafka_scram_secret_arn`
POSTGRES_MASTER = "postgres-master"  # `secret_arns` key of `postgres_master_secret_arn`
Role = Literal["app", "clickhouse"]

# Outputs read as they are, by the type `pulumi stack output --json` writes them in.
_TEXT = (
    "clickhouse_url", "topology", "clickhouse_topology_toml", "clickhouse_ca_pem",
    "kafka_bootstrap", "kafka_security_protocol", "kafka_sasl_mechanism", "kafka_sasl_username",
    "redis_url", "postgres_url", "api_host", "dashboard_url",
)  # fmt: skip
_INTEGER = ("topic_replication_factor", "api_port", "dashboard_port")
_HOST_KEYS = ("name", "instance_id", "private_ip", "availability_zone")
_MASKED = "[secret]"  # what `pulumi stack output` prints for a secret without --show-secrets


class InventoryError(AdpulseError):
    """The stack's outputs or resources lack something the deploy needs; the message says what."""


@dataclass(frozen=True)
class Host:
    """One EC2 instance of the stack, as the deploy reaches it."""

    name: str  # the Name tag: app-1, ch-1
    role: Role
    instance_id: str
    private_ip: str
    availability_zone: str
    fqdn: str = ""  # ClickHouse nodes: the private-zone name their certificates carry


@dataclass(frozen=True, repr=False)
class StackInventory:
    """What the deploy knows of one stack; equal whichever source built it.

    Hosts are in name order (ch-2 before ch-10). `secret_arns` is keyed by the stack's secret
    names (stacks/secret_store.py) plus `kafka-scram` and `postgres-master`; `secrets` holds the
    values read so far, never shown by repr.
    """

    stack: str
    region: str
    app_hosts: tuple[Host, ...]
    clickhouse_hosts: tuple[Host, ...]
    clickhouse_url: str
    topology: str  # ADPULSE_TOPOLOGY: `cluster`, or where to write clickhouse_topology_toml
    clickhouse_topology_toml: str
    clickhouse_ca_pem: str
    kafka_bootstrap: str
    kafka_security_protocol: str
    kafka_sasl_mechanism: str
    kafka_sasl_username: str
    topic_replication_factor: int
    redis_url: str  # without the token (secrets["redis-auth-token"])
    postgres_url: str  # without the password (secrets["postgres-app-password"])
    api_host: str
    api_port: int
    dashboard_port: int
    dashboard_url: str
    cloudwatch_metrics: bool
    secret_arns: Mapping[str, str]
    secrets: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        shown = [f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.name != "secrets"]
        masked = {key: "***" for key in sorted(self.secrets)}
        return f"StackInventory({', '.join(shown)}, secrets={masked!r})"


def host_order(hosts: Iterable[Host]) -> tuple[Host, ...]:
    """Hosts by name, numbers compared as numbers: ch-2 before ch-10."""

    def key(host: Host) -> list[tuple[int, int | str]]:
        parts = re.split(r"(\d+)", host.name)
        return [(1, int(part)) if part.isdigit() else (0, part) for part in parts]

    return tuple(sorted(hosts, key=key))


def outputs_command(stack: str) -> str:
    """The command that writes the outputs document, for error messages."""
    return f"pulumi stack output --json --show-secrets --stack {stack}"


def from_outputs(
    doc: Mapping[str, Any], stack: str, source: str = "outputs", save_as: str = "outputs.json"
) -> StackInventory:
    """The inventory from a `pulumi stack output --json --show-secrets` document.

    Raises InventoryError, one line naming `source`, the first missing or malformed output and
    the command that writes them all (to `save_as`); extra outputs are ignored (the stack
    exports more than the deploy reads).
    """
    fix = f"write the stack's outputs with `{outputs_command(stack)} > {save_as}`"

    def fail(problem: str) -> InventoryError:
        return InventoryError(f"{source}: {problem}; {fix}")

    def output(name: str, kind: type) -> Any:
        if name not in doc:
            raise fail(f"no output `{name}` (run `pulumi up` with this version of stacks/ first)")
        value = doc[name]
        if value == _MASKED:
            raise fail(f"output `{name}` is masked as {_MASKED} (add --show-secrets)")
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise fail(f"output `{name}` is {_kind(value)}, not {_KINDS[kind]}")
        if kind is str and not value:
            raise fail(f"output `{name}` is empty")
        return value

    def hosts(name: str, role: Role) -> tuple[Host, ...]:
        found = []
        for i, entry in enumerate(output(name, list), start=1):
            needed = (*_HOST_KEYS, "fqdn") if role == "clickhouse" else _HOST_KEYS
            if not isinstance(entry, dict):
                raise fail(f"output `{name}` entry {i} is {_kind(entry)}, not an object")
            missing = [key for key in needed if not isinstance(entry.get(key), str)]
            if missing:
                raise fail(f"output `{name}` entry {i} lacks `{missing[0]}`")
            found.append(Host(role=role, **{key: entry[key] for key in needed}))
        if not found:
            raise fail(f"output `{name}` lists no hosts")
        return host_order(found)

    named = output("stack_name", str)
    if named != stack:
        raise fail(f"it is the outputs of stack {named!r}, not {stack!r}")
    arns = output("clickhouse_secret_arns", dict)
    missing = [key for key in STACK_SECRETS if not isinstance(arns.get(key), str)]
    if missing:
        raise fail(f"output `clickhouse_secret_arns` lacks `{missing[0]}`")
    return StackInventory(
        stack=stack,
        region=output("aws_region", str),
        app_hosts=hosts("app_hosts", "app"),
        clickhouse_hosts=hosts("clickhouse_hosts", "clickhouse"),
        cloudwatch_metrics=output("cloudwatch_metrics", bool),
        secret_arns={
            **{key: arns[key] for key in STACK_SECRETS},
            KAFKA_SCRAM: output("kafka_scram_secret_arn", str),
            POSTGRES_MASTER: output("postgres_master_secret_arn", str),
        },
        **{name: output(name, str) for name in _TEXT},
        **{name: output(name, int) for name in _INTEGER},
    )


def load_outputs_file(path: Path, stack: str) -> StackInventory:
    """`from_outputs` of a saved document; InventoryError naming the path if it is missing,
    unreadable, not JSON, or not the object `pulumi stack output --json` writes."""
    fix = f"write it with `{outputs_command(stack)} > {path}`"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InventoryError(f"no outputs file {path}: {fix}") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise InventoryError(f"cannot read outputs file {path} ({reason}): {fix}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InventoryError(
            f"outputs file {path} is not JSON ({exc.msg} at line {exc.lineno}): {fix}"
        ) from None
    if not isinstance(doc, dict):
        raise InventoryError(
            f"outputs file {path} holds {_kind(doc)}, not the JSON object of outputs: {fix}"
        )
    return from_outputs(doc, stack, source=f"outputs file {path}", save_as=str(path))


def from_pulumi_cli(stack: str, cwd: Path = ROOT) -> StackInventory:
    """`from_outputs` of what the Pulumi CLI prints for `stack`, run in the project at `cwd`.

    The printed document holds any secret outputs in clear, so it is parsed in memory and never
    written or logged. InventoryError if the CLI is not on PATH or refuses (its last line).
    """
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise InventoryError(
            f"the Pulumi CLI is not on PATH: install it (https://www.pulumi.com/docs/install/) "
            f"or pass --outputs FILE, written where it is installed by `{outputs_command(stack)}`"
        )
    command = [pulumi, "stack", "output", "--json", "--show-secrets", "--stack", stack]
    command.append("--non-interactive")
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    source = f"`{outputs_command(stack)}`"
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        last = lines[-1] if lines else f"exit code {done.returncode}"
        raise InventoryError(
            f"{source} failed for stack {stack!r}: {last.removeprefix('error: ')} "
            "(`pulumi stack ls` lists the stacks; `pulumi login` selects the backend)"
        )
    try:
        doc = json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise InventoryError(f"{source} printed no JSON ({exc.msg}): upgrade the CLI") from None
    if not isinstance(doc, dict):
        raise InventoryError(f"{source} printed {_kind(doc)}, not an object of outputs")
    return from_outputs(doc, stack, source=source)


_KINDS: dict[type, str] = {
    str: "a string",
    int: "an integer",
    bool: "true or false",
    list: "a list",
    dict: "an object",
    type(None): "null",
    float: "a number",
}


def _kind(value: Any) -> str:
    """What a JSON value is, for a message; never the value, which may be a secret output."""
    return _KINDS.get(type(value), type(value).__name__)
