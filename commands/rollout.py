"""`adpulse deploy --stack NAME`, `adpulse rollback` and `adpulse status`. Parsing only; the
work is in `deploy.run` and `deploy.rollout`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from commands.stack_options import StackArgs, with_stack_args

if TYPE_CHECKING:
    from commands.stack_options import OnStack
    from deploy.run import Request

HostsOption = Annotated[
    list[str] | None,
    typer.Option("--host", help="Only this app host (repeatable) [default: every app host]."),
]
DryRunOption = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="Print each host's plan (upload, files that would change, units that would "
        "restart); change nothing.",
    ),
]
BalancerOption = Annotated[
    str,
    typer.Option(
        "--balancer",
        help="How hosts leave and rejoin the load balancer: `alb` (the stack's target groups), "
        "`haproxy:/path/admin.sock` (HAProxy's runtime API, backends `api` and `dashboard` "
        "unless --haproxy-backend), or `none` (restarts drop requests).",
    ),
]
BackendOption = Annotated[
    list[str] | None, typer.Option("--haproxy-backend", help="HAProxy backend (repeatable).")
]
HealthOption = Annotated[
    float,
    typer.Option(help="Seconds a restarted host has to pass its health checks.", min=1),
]
GateWindowOption = Annotated[
    float,
    typer.Option(
        help="Seconds the SLO gate watches a host after it rejoins (0: skip the gate).", min=0
    ),
]
P95Option = Annotated[float, typer.Option(help="SLO gate: the API's P95 limit, ms.", min=1)]
FreshnessOption = Annotated[
    float, typer.Option(help="SLO gate: the consumer's freshness limit, s.", min=0.1)
]


def attach(deploy_app: typer.Typer, app: typer.Typer) -> None:
    deploy_app.callback(invoke_without_command=True)(deploy_command)
    app.command("rollback")(rollback_command)
    app.command("status")(status_command)


def _request(
    where: OnStack,
    balancer: str,
    backends: list[str] | None,
    hosts: list[str] | None,
    dry_run: bool,
    health_timeout: float,
    gate_window: float,
    slo_p95_ms: float,
    slo_freshness_s: float,
    command: str,
    migrate: bool = True,
) -> Request:
    from deploy.rollout import Gate, Options
    from deploy.run import Request, parse_balancer

    gate = Gate(gate_window, slo_p95_ms, slo_freshness_s) if gate_window > 0 else None
    options = Options(
        user=where.access.user,
        hosts=tuple(hosts or ()),
        dry_run=dry_run,
        health_timeout_s=health_timeout,
        gate=gate,
        command=f"adpulse {command} --stack {where.stack}",
    )
    return Request(
        where.stack,
        where.source,
        where.access,
        parse_balancer(balancer, backends or []),
        options,
        migrate,
    )


@with_stack_args(required=True)
def deploy_command(
    ctx: typer.Context,
    reach: StackArgs,
    dry_run: DryRunOption = False,
    host: HostsOption = None,
    release: Annotated[
        Path | None,
        typer.Option(
            "--release", help="Deploy this release archive (built before) instead of building."
        ),
    ] = None,
    platform: Annotated[
        str, typer.Option(help="The hosts' platform for the build (r6g/t4g: aarch64).")
    ] = "manylinux_2_36_aarch64",
    allow_dirty: Annotated[
        bool, typer.Option(help="Build from a tree with uncommitted changes (`-dirty`).")
    ] = False,
    skip_migrations: Annotated[
        bool,
        typer.Option(help="Do not apply Kafka topics and ClickHouse migrations first."),
    ] = False,
    balancer: BalancerOption = "alb",
    haproxy_backend: BackendOption = None,
    health_timeout: HealthOption = 120.0,
    slo_window: GateWindowOption = 30.0,
    slo_p95_ms: P95Option = 500.0,
    slo_freshness_s: FreshnessOption = 60.0,
) -> None:
    """Build the release (or take --release) and roll it onto the app hosts, one at a time.

    Under the stack's deploy lock: the release is installed beside the running one on every
    host first; then each host leaves the load balancer, switches, restarts what changed,
    must pass its health checks and the SLO gate, and rejoins. Any failure rolls that host
    back and stops, with the failing unit's journal. Re-running the same release restarts
    nothing. Ends with the dashboard URL."""
    if ctx.invoked_subcommand is not None:
        return
    from commands.stack_options import required_stack
    from commands.support import domain_errors
    from deploy.release_file import read_release
    from deploy.run import build, run_deploy

    with domain_errors():
        req = _request(
            required_stack(reach), balancer, haproxy_backend, host, dry_run, health_timeout,
            slo_window, slo_p95_ms, slo_freshness_s, "deploy",
            not skip_migrations,
        )  # fmt: skip
        built = read_release(release) if release else build(platform, allow_dirty)
        typer.echo(f"release {built.version} ({built.archive})", err=True)
        outcomes, inv = run_deploy(req, lambda line: typer.echo(line, err=True), release=built)
    if not dry_run:
        changed = sum(o.verdict != "unchanged" for o in outcomes)
        typer.echo(f"release {built.version} runs on {len(outcomes)} host(s) ({changed} changed)")
        typer.echo(f"dashboard: {inv.dashboard_url}")


@with_stack_args(required=True, after_stack=("to",))
def rollback_command(
    reach: StackArgs,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            metavar="VERSION",
            help="The installed release to go to [default: the one before current].",
        ),
    ] = None,
    dry_run: DryRunOption = False,
    host: HostsOption = None,
    balancer: BalancerOption = "alb",
    haproxy_backend: BackendOption = None,
    health_timeout: HealthOption = 120.0,
    slo_window: GateWindowOption = 30.0,
    slo_p95_ms: P95Option = 500.0,
    slo_freshness_s: FreshnessOption = 60.0,
) -> None:
    """Roll the app hosts back to the previous release (or --to VERSION), one at a time.

    The same path as a deploy (lock, drain, health, SLO gate), with a release the hosts
    already have: nothing is uploaded and no migration runs. `adpulse status` shows each
    host's releases and its rollback target."""
    from commands.stack_options import required_stack
    from commands.support import domain_errors
    from deploy.run import run_rollback

    with domain_errors():
        req = _request(
            required_stack(reach), balancer, haproxy_backend, host, dry_run, health_timeout,
            slo_window, slo_p95_ms, slo_freshness_s, "rollback", False,
        )  # fmt: skip
        version, outcomes, inv = run_rollback(req, to, lambda line: typer.echo(line, err=True))
    if not dry_run:
        typer.echo(f"release {version} runs on {len(outcomes)} host(s)")
        typer.echo(f"dashboard: {inv.dashboard_url}")


@with_stack_args(required=True)
def status_command(
    reach: StackArgs,
    json: Annotated[bool, typer.Option("--json", help="As JSON, for scripts.")] = False,
) -> None:
    """Per app host: the release, each unit's state, health, consumer lag and freshness, and
    the API's P95 since it started. Exits 1 when a host is unreachable or unhealthy."""
    from commands.stack_options import required_stack
    from commands.support import domain_errors, print_json
    from deploy.run import run_status
    from deploy.status import render

    with domain_errors():
        where = required_stack(reach)
        statuses = run_status(where.stack, where.source, where.access)
    if json:
        print_json({"stack": where.stack, "hosts": [s.as_json() for s in statuses]})
    else:
        for line in render(statuses):
            typer.echo(line)
    healthy = all(
        s.reachable and all(why == "ok" for why in (s.health or {}).values()) for s in statuses
    )
    if not healthy:
        raise typer.Exit(code=1)
