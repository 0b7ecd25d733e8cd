"""`adpulse deploy trust | unlock | inventory`: the stack's hosts as the deploy reaches them.

Parsing only; the work is in `deploy/`. The rolling deploy itself (`adpulse deploy`, `status`,
`rollback`) builds on these: its inventory and its strict host keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

deploy_app = typer.Typer(
    help="The services onto the stack's hosts over SSH. Start with `adpulse deploy trust`.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(deploy_app, name="deploy")


StackOption = Annotated[
    str, typer.Option("--stack", help="The Pulumi stack.", envvar="ADPULSE_STACK")
]
OutputsOption = Annotated[
    Path | None,
    typer.Option(
        "--outputs",
        help="The stack's outputs saved by `pulumi stack output --json "
        "--show-secrets > FILE` [default: ask the Pulumi CLI].",
    ),
]
DiscoverOption = Annotated[
    str | None,
    typer.Option(
        "--discover",
        metavar="REGION",
        help="Find the stack in AWS by its tags instead (boto3, the usual credentials).",
    ),
]
StateOption = Annotated[
    Path, typer.Option(help="Where the stack's known_hosts is kept.", envvar="ADPULSE_STATE_DIR")
]


@deploy_app.command("trust")
def deploy_trust(
    stack: StackOption = "prod",
    outputs: OutputsOption = None,
    discover: DiscoverOption = None,
    host: Annotated[
        list[str] | None,
        typer.Option("--host", help="Only this host (repeatable), e.g. after replacing it."),
    ] = None,
    ssh_user: Annotated[str, typer.Option(help="The login user.")] = "admin",
    yes: Annotated[bool, typer.Option("--yes", help="Record without asking.")] = False,
    state_dir: StateOption = Path(".adpulse"),
) -> None:
    """Record the hosts' SSH keys in the stack's known_hosts (.adpulse/known_hosts/STACK).

    Compare each printed fingerprint with the host's console output (EC2: Actions > Monitor >
    Get system log, the lines after `BEGIN SSH HOST KEY FINGERPRINTS`) before answering yes.
    Every later deploy refuses a host whose key is not recorded or has changed."""
    from commands.support import domain_errors
    from deploy.sources import Source, load, targets
    from deploy.ssh import fingerprint, known_hosts_path, scan, trust

    with domain_errors():
        inv = load(stack, Source(outputs, discover))
        chosen = targets(inv, ssh_user, host)
        # Scanned once: what is recorded is exactly what was shown and confirmed.
        found = {target: scan(target) for target in chosen}
        for target, keys in found.items():
            for kind, key in keys:
                typer.echo(f"{target.name} {target.address} {kind} {fingerprint(key)}")
        if not yes and not typer.confirm("Do these fingerprints match the hosts' console output?"):
            typer.echo("nothing recorded")
            raise typer.Exit(code=1)
        path = known_hosts_path(stack, state_dir)
        recorded = trust(found, path)
    typer.echo(f"recorded {len(recorded)} key(s) of {len(chosen)} host(s) in {path}")


@deploy_app.command("unlock")
def deploy_unlock(
    stack: StackOption = "prod",
    outputs: OutputsOption = None,
    discover: DiscoverOption = None,
    ssh_user: Annotated[str, typer.Option(help="The login user.")] = "admin",
    ssh_key: Annotated[
        Path | None, typer.Option(help="The private key [default: your ssh-agent's keys].")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Clear without asking.")] = False,
    state_dir: StateOption = Path(".adpulse"),
) -> None:
    """Show who holds the stack's deploy lock, and clear it after asking.

    Clear it only when the deploy that took it is no longer running (killed, lost its
    connection): such a lock blocks every later deploy. Only the lock shown is cleared; the
    clearing goes into the audit log of the host that keeps the lock (the first app host)."""
    from commands.support import domain_errors
    from deploy.audit import clear, default_owner
    from deploy.lock import Holder, lock_target
    from deploy.sources import Source, load
    from deploy.ssh import connect, known_hosts_path

    def ask(held: Holder) -> bool:
        typer.echo(f"stack {stack} is locked on {target.name} by {held.describe()}")
        if yes:
            return True
        fresh = held.info is not None and not held.stale
        return typer.confirm(
            "Clear it? Only if that deploy is no longer running" if fresh else "Clear it?"
        )

    with domain_errors():
        inv = load(stack, Source(outputs, discover))
        target = lock_target(inv, ssh_user)
        with connect(target, stack, known_hosts_path(stack, state_dir), ssh_key) as conn:
            held, cleared = clear(conn, stack, default_owner(), ask, inv.secrets.values())
    if held is None:
        typer.echo(f"stack {stack} is not locked (its lock is kept on {target.name})")
    elif not cleared:
        typer.echo("lock kept")
        raise typer.Exit(code=1)
    else:
        typer.echo(f"cleared the deploy lock of stack {stack}")


@deploy_app.command("inventory")
def deploy_inventory(
    stack: StackOption = "prod",
    outputs: OutputsOption = None,
    discover: DiscoverOption = None,
    json: Annotated[bool, typer.Option("--json", help="As JSON, for scripts.")] = False,
) -> None:
    """The hosts and endpoints the deploy would use, from the chosen source (no secret shown)."""
    from commands.support import domain_errors, print_json
    from deploy.sources import Source, load

    with domain_errors():
        inv = load(stack, Source(outputs, discover))
    hosts = [
        {
            "name": h.name,
            "role": h.role,
            "private_ip": h.private_ip,
            "availability_zone": h.availability_zone,
            "instance_id": h.instance_id,
        }
        for h in (*inv.app_hosts, *inv.clickhouse_hosts)
    ]
    endpoints = {
        "clickhouse_url": inv.clickhouse_url,
        "kafka_bootstrap": inv.kafka_bootstrap,
        "redis_url": inv.redis_url,
        "postgres_url": inv.postgres_url,
        "dashboard_url": inv.dashboard_url,
    }
    if json:
        print_json(
            {"stack": inv.stack, "region": inv.region, "hosts": hosts, "endpoints": endpoints}
        )
        return
    typer.echo(f"stack {inv.stack} in {inv.region}")
    for h in hosts:
        typer.echo(
            f"  {h['name']:<8} {h['role']:<10} {h['private_ip']:<15} "
            f"{h['availability_zone']:<12} {h['instance_id']}"
        )
    for name, value in endpoints.items():
        typer.echo(f"  {name}: {value}")
