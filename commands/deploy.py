"""`adpulse deploy`, `adpulse rollback`, `adpulse status`, and `adpulse deploy trust | unlock |
inventory`: the services onto the stack's hosts over SSH, and the hosts as the deploy sees them.

Parsing only; the work is in `deploy/` (`deploy.run` for the rolling deploy).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from commands.stack_options import (
    BastionOption,
    DiscoverOption,
    OutputsOption,
    ProxyCommandOption,
    SshKeyOption,
    SshUserOption,
    StackOption,
    StateOption,
)

deploy_app = typer.Typer(
    help="Deploy the services onto the stack's app hosts over SSH, one host at a time.\n\n"
    "First time: `adpulse deploy trust --stack NAME` records the hosts' SSH keys; then "
    "`adpulse deploy --stack NAME --dry-run` shows the plan and `adpulse deploy --stack NAME` "
    "carries it out. `adpulse status` and `adpulse rollback` follow it.",
    no_args_is_help=True,
)

__all__ = ["DiscoverOption", "OutputsOption", "StackOption", "StateOption", "register"]


def register(app: typer.Typer) -> None:
    from commands import rollout

    rollout.attach(deploy_app, app)
    app.add_typer(deploy_app, name="deploy")


@deploy_app.command("trust")
def deploy_trust(
    stack: StackOption = "prod",
    outputs: OutputsOption = None,
    discover: DiscoverOption = None,
    host: Annotated[
        list[str] | None,
        typer.Option("--host", help="Only this host (repeatable), e.g. after replacing it."),
    ] = None,
    ssh_user: SshUserOption = "admin",
    ssh_key: SshKeyOption = None,
    bastion: BastionOption = None,
    proxy_command: ProxyCommandOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Record without asking.")] = False,
    state_dir: StateOption = Path(".adpulse"),
) -> None:
    """Record the hosts' SSH keys in the stack's known_hosts (.adpulse/known_hosts/STACK).

    Compare each printed fingerprint with the host's console output (EC2: Actions > Monitor >
    Get system log, the lines after `BEGIN SSH HOST KEY FINGERPRINTS`) before answering yes.
    Every later deploy refuses a host whose key is not recorded or has changed."""
    from commands.stack_options import access_of
    from commands.support import domain_errors
    from deploy.sources import Source, load, targets
    from deploy.ssh import fingerprint, known_hosts_path, scan, trust

    with domain_errors():
        access = access_of(ssh_user, ssh_key, bastion, proxy_command, state_dir)
        inv = load(stack, Source(outputs, discover))
        chosen = targets(inv, ssh_user, host)
        # Scanned once: what is recorded is exactly what was shown and confirmed.
        found = {target: scan(target, access, stack) for target in chosen}
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
    ssh_user: SshUserOption = "admin",
    ssh_key: SshKeyOption = None,
    bastion: BastionOption = None,
    proxy_command: ProxyCommandOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Clear without asking.")] = False,
    state_dir: StateOption = Path(".adpulse"),
) -> None:
    """Show who holds the stack's deploy lock, and clear it after asking.

    Clear it only when the deploy that took it is no longer running (killed, lost its
    connection): such a lock blocks every later deploy. Only the lock shown is cleared; the
    clearing goes into the audit log of the host that keeps the lock (the first app host)."""
    from commands.stack_options import access_of
    from commands.support import domain_errors
    from deploy.audit import clear, default_owner
    from deploy.lock import Holder, lock_target
    from deploy.sources import Source, load
    from deploy.ssh import open_host

    def ask(held: Holder) -> bool:
        typer.echo(f"stack {stack} is locked on {target.name} by {held.describe()}")
        if yes:
            return True
        fresh = held.info is not None and not held.stale
        return typer.confirm(
            "Clear it? Only if that deploy is no longer running" if fresh else "Clear it?"
        )

    with domain_errors():
        access = access_of(ssh_user, ssh_key, bastion, proxy_command, state_dir)
        inv = load(stack, Source(outputs, discover))
        target = lock_target(inv, ssh_user)
        with open_host(target, stack, access) as conn:
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
