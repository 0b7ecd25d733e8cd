"""Admin commands against a stack's real endpoints, run on its first app host over SSH.

ClickHouse, MSK and RDS sit in private subnets that the deployer's machine usually cannot
reach, but the app hosts can: `adpulse schema migrate | status | unlock` and `adpulse kafka
topics apply` run there, as the service user, with a release's own venv (`current`, or an
installed release by name), and print JSON (`--json`) that comes back parsed.

Their settings are the ones the services get from the stack (`deploy.settings_env`), plus the
admin credentials only this step holds: the ClickHouse admin password and the Kafka SCRAM
login. Settings come from the inventory, not from the host's /etc/adpulse/common.env: the
rolling deploy migrates before any host has this deploy's env files (a first deploy has none),
and the inventory is what they will say. Everything travels on the command's stdin and becomes
its environment (`set -a; . /dev/stdin`): no secret is in a command line, `ps`, a file on the
host, a log or the audit log. A failure is one line ending in the command's own last words,
every secret in them masked.

Before the command runs, the host gets the two files of the stack that it reads, when they
differ: the ClickHouse CA in the system trust store (`clickhouses://` verifies the nodes with it,
as the nodes' own clients do) and the topology file when the stack's shape is not `cluster`.
The rolling deploy manages the same paths with the same bytes.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from adpulse.clickhouse.roles import password_variable
from adpulse.errors import AdpulseError, ConfigError
from deploy import layout
from deploy.inventory import InventoryError, StackInventory, host_order
from deploy.settings_env import service_environment
from deploy.ssh import CommandTimeout, Target
from deploy.stack_secrets import JSON_SECRETS, login_of
from deploy.units import env_line

if TYPE_CHECKING:
    from deploy.sources import Source
    from deploy.ssh import Access, Connection

# stacks/userdata.py CA_FILE: where the nodes trust the stack's CA; app hosts use the same path.
CA_FILE = "/usr/local/share/ca-certificates/adpulse-clickhouse-ca.crt"
ADMIN_SECRET = "clickhouse-admin-password"  # noqa: S105 (a secret's name, not its value)
KAFKA_PASSWORD_VARIABLE = "ADPULSE_KAFKA_SASL_PASSWORD"  # noqa: S105 (Settings.kafka_sasl_password)
MIGRATE_TIMEOUT_S = 3600.0  # ON CLUSTER DDL on big tables waits for every replica
ADMIN_TIMEOUT_S = 300.0
_MASK = "***"

Say = Callable[[str], None]


class RemoteAdminError(AdpulseError):
    """An admin command could not run on the stack's host, or failed there; one line."""


@dataclass(frozen=True)
class AdminResult:
    """What an admin command printed (`output`, its parsed `--json`) on `host`, run with
    `release`. `code` is 0, or 1 when the command reported problems in its output (`schema
    status`: a failed or changed migration; `kafka topics apply`: a topic that differs)."""

    host: str
    release: str
    command: str  # `adpulse schema migrate`, for people
    code: int
    output: Any
    wrote: tuple[str, ...] = ()  # stack files brought up to date on the host first


def admin_target(inv: StackInventory, user: str) -> Target:
    """The host admin commands run on: the stack's first app host by name (the lock's host)."""
    if not inv.app_hosts:
        raise RemoteAdminError(f"stack {inv.stack} has no app hosts to run admin commands on")
    first = host_order(inv.app_hosts)[0]
    return Target(first.name, first.private_ip, user=user, instance_id=first.instance_id)


def stack_inventory(stack: str, source: Source, session: Any = None) -> StackInventory:
    """The stack's inventory with its secret values (`with_secrets`; discovery reads them)."""
    from deploy.sources import load
    from deploy.stack_secrets import with_secrets

    inv = load(stack, source)
    return inv if inv.secrets else with_secrets(inv, session)


def secret_values(inv: StackInventory) -> list[str]:
    """Every secret value of the inventory as it could appear in text: as stored, the password
    inside a JSON login, URL-quoted and env-file escaped. Longest first, for masking."""
    values = set()
    for key, value in inv.secrets.items():
        if not value:
            continue
        found = [value]
        if key in JSON_SECRETS:
            found.append(login_of(key, value)[1])
        for text in found:
            values |= {text, quote(text, safe="")}
            try:
                values.add(env_line("X", text)[3:-1])  # as the env file escapes it
            except ConfigError:
                pass  # a value env_line refuses is never sent as one

    return sorted(values, key=len, reverse=True)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every one of `secrets` masked."""
    for value in secrets:
        if value:
            text = text.replace(value, _MASK)
    return text


def admin_environment(inv: StackInventory) -> dict[str, str]:
    """The admin command's `ADPULSE_*` variables: the services' plain settings, the Kafka SCRAM
    password when the stack uses SASL, and the ClickHouse admin password (which the services
    never hold); no other secret. Raises InventoryError if a needed secret value is missing."""
    plain, secret = service_environment(inv)
    env = dict(plain)
    if KAFKA_PASSWORD_VARIABLE in secret:
        env[KAFKA_PASSWORD_VARIABLE] = secret[KAFKA_PASSWORD_VARIABLE]
    admin = inv.secrets.get(ADMIN_SECRET)
    if not admin:
        raise InventoryError(
            f"the inventory of stack {inv.stack} has no value for secret {ADMIN_SECRET}: read "
            "the secrets first (deploy.stack_secrets.with_secrets)"
        )
    env[password_variable("admin")] = admin
    return env


def environment_text(env: dict[str, str]) -> bytes:
    """`KEY="value"` lines that sh's `.` reads back to exactly the values (`deploy.units`)."""
    return "".join(env_line(key, env[key]) + "\n" for key in sorted(env)).encode()


def admin_script(version: str, args: Sequence[str]) -> str:
    """The one-line shell script that runs `adpulse ARGS --json` from release `version` as the
    service user, its environment read from stdin. It holds no secret: it is what `ps` shows."""
    release = layout.release_dir(version)
    command = [str(release / layout.VENV / "bin" / "adpulse"), *args, "--json"]
    return "; ".join(
        [
            "set -eu",
            f"cd {shlex.quote(str(release))}",  # no .env of anyone else's is read
            "set -a",
            ". /dev/stdin",
            "set +a",
            "export PYTHONDONTWRITEBYTECODE=1",  # the release is root's, read-only to the user
            f"exec runuser -u {layout.SERVICE_USER} -- {shlex.join(command)}",
        ]
    )


def stack_files(inv: StackInventory) -> dict[str, str]:
    """The files of the stack an admin command reads on the host: path -> content."""
    files = {}
    if inv.clickhouse_url.startswith("clickhouses://"):
        files[CA_FILE] = inv.clickhouse_ca_pem
    if inv.topology not in ("single", "cluster"):
        if not PurePosixPath(inv.topology).is_absolute():
            raise InventoryError(
                f"stack {inv.stack}: output `topology` is {inv.topology!r}, neither `cluster` "
                "nor an absolute path for clickhouse_topology_toml; run `pulumi up` with this "
                "version of stacks/"
            )
        files[inv.topology] = inv.clickhouse_topology_toml
    return files


def ensure_stack_files(conn: Connection, inv: StackInventory) -> list[str]:
    """Write each of `stack_files` whose content differs on the host (root:root 0644), and
    refresh the trust store when the CA changed; the paths written."""
    import hashlib

    written = []
    for path, content in stack_files(inv).items():
        data = content.encode()
        have = conn.run(f"sha256sum < {shlex.quote(path)} 2>/dev/null | cut -c1-64", check=False)
        if have.stdout.strip() == hashlib.sha256(data).hexdigest():
            continue
        conn.put(path, data, mode=0o644)
        if path == CA_FILE:
            conn.run("update-ca-certificates >/dev/null")
        written.append(path)
    return written


def installed_release(conn: Connection, stack: str, version: str | None) -> str:
    """`version` if it is installed completely on the host, else the release `current` points
    at; RemoteAdminError saying what to do when there is none, or no service user."""
    probe = (
        f"id -u {layout.SERVICE_USER} >/dev/null 2>&1 && echo user; "
        f'echo "current=$(readlink -e {layout.CURRENT} || true)"; '
        f"for d in {layout.RELEASES}/*; do "
        f'[ -f "$d/manifest.json" ] && [ -x "$d/{layout.VENV}/bin/adpulse" ] && '
        'echo "release=${d##*/}"; done; true'
    )
    lines = conn.run(probe).stdout.splitlines()
    host = conn.target.name
    installed = [line[8:] for line in lines if line.startswith("release=")]
    installed = [name for name in installed if layout.is_version(name)]
    if version is None:
        current = next((line[8:] for line in lines if line.startswith("current=")), "")
        version = layout.release_of(current)
        if version is None:
            link = f"points at {current}" if current else "is missing"
            other = f", or name an installed one with --release: {', '.join(installed)}"
            raise RemoteAdminError(
                f"{host} runs no release ({layout.CURRENT} {link}): deploy one first "
                f"(`adpulse deploy --stack {stack}`)" + (other if installed else "")
            )
        if version not in installed:
            raise RemoteAdminError(
                f"{host}: {layout.CURRENT} points at release {version}, which is incomplete "
                f"(no manifest or no venv): deploy again (`adpulse deploy --stack {stack}`)"
            )
    elif layout.check_version(version) not in installed:
        raise RemoteAdminError(
            f"release {version} is not installed on {host} (installed: "
            f"{', '.join(installed) or 'none'}): install it with `adpulse deploy`, or name one "
            "of those"
        )
    if "user" not in lines:
        raise RemoteAdminError(
            f"{host} has no user {layout.SERVICE_USER}, which admin commands run as: deploy "
            f"first (`adpulse deploy --stack {stack}` creates it)"
        )
    return version


def run_admin(
    conn: Connection,
    inv: StackInventory,
    args: Sequence[str],
    *,
    release: str | None = None,
    changes: bool = True,
    timeout: float = ADMIN_TIMEOUT_S,
    say: Say | None = None,
) -> AdminResult:
    """Run `adpulse ARGS --json` on the host `conn` reaches, with `release` (default: the one
    `current` points at) and the stack's admin settings; its parsed output.

    A command that `changes` something is recorded in the host's audit log (command, release,
    who, outcome; never a secret). Raises RemoteAdminError, one line naming the host, the
    command and its last words (secrets masked), when it fails without JSON output or runs
    past `timeout`; InventoryError when the inventory lacks a secret it needs.
    """
    from deploy.audit import default_owner, record

    shown = shlex.join(["adpulse", *args])
    secrets = secret_values(inv)
    env = environment_text(admin_environment(inv))
    version = installed_release(conn, inv.stack, release)
    wrote = tuple(ensure_stack_files(conn, inv))
    host = conn.target.name
    if say is not None:
        say(f"running `{shown}` on {host} ({conn.target.address}), release {version}")
    try:
        done = conn.run(admin_script(version, args), stdin=env, check=False, timeout=timeout)
    except CommandTimeout:
        code, output, outcome = 124, None, f"timed out after {timeout:g} s"
        failure: RemoteAdminError | None = RemoteAdminError(
            f"{host}: `{shown}` (release {version}) still ran after {timeout:g} s: stopped; "
            "check what it waits for (ClickHouse's system.processes, the brokers)"
        )
    else:
        code, (output, parsed) = done.code, _parse(done.stdout)
        outcome, failure = ("ok" if code == 0 else "reported problems"), None
        if not parsed or code not in (0, 1):
            outcome = f"failed (exit {code})"
            failure = RemoteAdminError(
                f"{host}: `{shown}` (release {version}) failed: "
                + _for_this_machine(_last_words(done.stderr or done.stdout, code, secrets), inv)
            )
    if changes:
        event: dict[str, object] = {"event": "admin", "stack": inv.stack, "command": shown}
        event |= {"release": version, "by": default_owner(), "outcome": outcome}
        event["wrote"] = list(wrote)
        try:
            record(conn, event, secrets)
        except AdpulseError as exc:
            did = str(failure) if failure is not None else f"{host}: `{shown}` succeeded"
            raise RemoteAdminError(f"{did}; and its audit line was not written: {exc}") from None
    if failure is not None:
        raise failure
    return AdminResult(host, version, shown, code, output, wrote)


def run_on_stack(
    stack: str,
    source: Source,
    access: Access,
    args: Sequence[str],
    *,
    release: str | None = None,
    changes: bool = True,
    timeout: float = ADMIN_TIMEOUT_S,
    say: Say | None = None,
) -> AdminResult:
    """`run_admin` on the first app host of `stack` (inventory and secrets from `source`),
    reached as `access` says."""
    from deploy.ssh import open_host

    inv = stack_inventory(stack, source)
    with open_host(admin_target(inv, access.user), stack, access) as conn:
        return run_admin(
            conn, inv, args, release=release, changes=changes, timeout=timeout, say=say
        )


def migrate_on_stack(
    conn: Connection, inv: StackInventory, version: str | None = None, *, to: int | None = None
) -> list[int]:
    """Apply the pending migrations from release `version` (default: `current`) on the host
    `conn` reaches; the versions applied. For the rolling deploy, between installing a release
    and rolling the hosts. Raises RemoteAdminError (the migration's own error) on failure."""
    args = ["schema", "migrate", *(["--to", str(to)] if to is not None else [])]
    result = run_admin(conn, inv, args, release=version, timeout=MIGRATE_TIMEOUT_S)
    return [int(v) for v in result.output["applied"]]


def apply_topics_on_stack(
    conn: Connection, inv: StackInventory, version: str | None = None
) -> list[dict[str, Any]]:
    """Create the stack's missing topics from release `version` (default: `current`); the
    reports (`name`, `action`, `problems`). Raises RemoteAdminError naming each difference
    when an existing topic differs from the settings (never altered: a person decides)."""
    result = run_admin(conn, inv, ["kafka", "topics", "apply"], release=version)
    reports: list[dict[str, Any]] = list(result.output)
    differ = [r for r in reports if r.get("action") == "mismatch"]
    if differ:
        problems = "; ".join(f"{r['name']}: {', '.join(r['problems'])}" for r in differ)
        raise RemoteAdminError(
            f"stack {inv.stack}: topics differ from the settings ({problems}); existing topics "
            "are never altered: change the topic or the settings, then run again"
        )
    return reports


def _parse(stdout: str) -> tuple[Any, bool]:
    if not stdout.strip():
        return None, False
    try:
        return json.loads(stdout), True
    except ValueError:
        return None, False


def _for_this_machine(words: str, inv: StackInventory) -> str:
    """The host's advice, as a command to run here: `adpulse schema unlock` on a host is
    `adpulse schema unlock --stack NAME` from the operator's machine."""
    return words.replace("`adpulse schema unlock`", f"`adpulse schema unlock --stack {inv.stack}`")


def _last_words(text: str, code: int, secrets: Sequence[str]) -> str:
    """The command's one-line error, or the last lines of what it printed, secrets masked."""
    lines = [line.strip() for line in scrub(text, secrets).splitlines() if line.strip()]
    errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    if errors:
        return errors[-1]
    return " | ".join(lines[-3:]) if lines else f"exit code {code} and no output"
