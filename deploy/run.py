"""What `adpulse deploy`, `adpulse rollback` and `adpulse status` do, from their options to the
rolling deploy: the inventory with its secrets, the release, the load balancer, the SSH access.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path

from adpulse.errors import ConfigError
from deploy.balancer import Balancer, BalancerError
from deploy.inventory import Host, StackInventory
from deploy.release import Release
from deploy.rollout import (
    DeployError,
    HostOutcome,
    Opener,
    Options,
    Say,
    deploy,
    previous_release,
)
from deploy.sources import Source
from deploy.ssh import Access, Connection, Target, open_host
from deploy.status import HostStatus, stack_status

RELEASES_DIR = Path(".adpulse") / "releases"  # where `adpulse deploy` builds releases


@dataclass(frozen=True)
class BalancerChoice:
    """`alb` (the stack's target groups, found by its tags), `haproxy` (its runtime API at
    `socket`, for `backends`), or `none` (hosts restart while serving: only for a stack with
    one host or none in service)."""

    kind: str
    socket: Path | None = None
    backends: tuple[str, ...] = ("api", "dashboard")


@dataclass(frozen=True)
class Request:
    stack: str
    source: Source
    access: Access
    balancer: BalancerChoice
    options: Options
    migrate: bool = True


def parse_balancer(value: str, backends: Sequence[str]) -> BalancerChoice:
    """`alb`, `none` or `haproxy:/path/to/admin.sock`; ConfigError naming the allowed values."""
    if value in ("alb", "none"):
        return BalancerChoice(value)
    kind, _, socket = value.partition(":")
    if kind == "haproxy" and socket:
        return BalancerChoice("haproxy", Path(socket), tuple(backends) or ("api", "dashboard"))
    raise ConfigError(
        f"--balancer {value!r}: use `alb` (the stack's ALB, default), "
        "`haproxy:/path/to/admin.sock` (HAProxy's runtime API) or `none`"
    )


class NoBalancer:
    """For `--balancer none`: nothing is drained; requests to a restarting host fail."""

    def drain(self, host: Host) -> None:
        pass

    def enable(self, host: Host) -> None:
        pass

    def state(self, host: Host) -> str:
        return "serving"


def make_balancer(inv: StackInventory, choice: BalancerChoice) -> Balancer:
    if choice.kind == "none":
        return NoBalancer()
    if choice.kind == "haproxy":
        from deploy.balancer_haproxy import HaproxyBalancer

        assert choice.socket is not None
        return HaproxyBalancer(choice.socket, list(choice.backends))
    from deploy.aws_calls import session_for
    from deploy.balancer_alb import AlbBalancer, stack_target_groups
    from deploy.tagged import TaggedStack

    elbv2 = session_for(inv.region, None).client("elbv2", region_name=inv.region)
    groups = stack_target_groups(elbv2, TaggedStack(inv.stack, inv.region))
    if not groups:
        raise BalancerError(f"stack {inv.stack} has no target groups: use --balancer")
    return AlbBalancer(elbv2, groups)


def load_stack(stack: str, source: Source) -> StackInventory:
    from deploy.remote_admin import stack_inventory

    return stack_inventory(stack, source)


def opener_for(stack: str, access: Access) -> Opener:
    def opener(target: Target) -> AbstractContextManager[Connection]:
        return open_host(target, stack, access)

    return opener


def run_deploy(
    req: Request, say: Say, *, release: Release | None = None, version: str | None = None
) -> tuple[list[HostOutcome], StackInventory]:
    """Deploy `release` (or roll to the installed `version`) onto the stack; the outcomes."""
    inv = load_stack(req.stack, req.source)
    return _deploy_on(inv, req, say, release=release, version=version), inv


def run_rollback(
    req: Request, to: str | None, say: Say
) -> tuple[str, list[HostOutcome], StackInventory]:
    """`adpulse rollback`: roll to `to`, or to the release before current on every chosen host;
    the version, the outcomes and the inventory, which is loaded (secrets and all) once."""
    inv = load_stack(req.stack, req.source)
    version = to if to is not None else _previous_everywhere(inv, req)
    say(f"rolling back to release {version}")
    return version, _deploy_on(inv, req, say, version=version), inv


def _deploy_on(
    inv: StackInventory,
    req: Request,
    say: Say,
    *,
    release: Release | None = None,
    version: str | None = None,
) -> list[HostOutcome]:
    balancer = make_balancer(inv, req.balancer) if not req.options.dry_run else NoBalancer()
    before_roll = None
    if req.migrate and release is not None:
        from deploy.remote_admin import apply_topics_on_stack, migrate_on_stack

        def before_roll(conn: Connection, new: str) -> None:
            say(f"{conn.target.name}: Kafka topics and ClickHouse migrations with release {new}")
            apply_topics_on_stack(conn, inv, new)
            applied = migrate_on_stack(conn, inv, new)
            say(f"{conn.target.name}: applied migrations {applied or 'none (up to date)'}")

    return deploy(
        inv,
        opener_for(req.stack, req.access),
        balancer,
        req.options,
        say,
        release=release,
        version=version,
        before_roll=before_roll,
    )


def _previous_everywhere(inv: StackInventory, req: Request) -> str:
    from deploy.remote_state import read_state
    from deploy.rollout import chosen_hosts

    opener = opener_for(req.stack, req.access)
    found: dict[str, str | None] = {}
    for host in chosen_hosts(inv, req.options.hosts):
        with opener(Target(host.name, host.private_ip)) as conn:
            found[host.name] = previous_release(read_state(conn, ()))
    targets = set(found.values())
    if len(targets) != 1 or None in targets:
        shown = ", ".join(f"{h}: {v or 'none'}" for h, v in found.items())
        raise DeployError(
            f"the hosts do not share one previous release ({shown}): name it with --to VERSION "
            f"(see `adpulse status --stack {req.stack}`)"
        )
    return str(targets.pop())


def run_status(stack: str, source: Source, access: Access) -> list[HostStatus]:
    inv = load_stack(stack, source)
    return stack_status(inv, opener_for(stack, access), access.user)


def build(platform: str, allow_dirty: bool, out: Path = RELEASES_DIR) -> Release:
    from deploy.release import build_release

    return build_release(out, platform=platform, allow_dirty=allow_dirty)


def with_options(req: Request, **changes: object) -> Request:
    return replace(req, options=replace(req.options, **changes))  # type: ignore[arg-type]
