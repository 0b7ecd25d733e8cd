"""`adpulse config render | apply`: the ClickHouse server configuration each node of a topology
needs, and pushing it to the stack's nodes.

Commands parse options and hand off to `adpulse.clickhouse.config` and `deploy.config_apply`;
those are imported inside the commands so `adpulse --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from commands.deploy import DiscoverOption, OutputsOption, StackOption, StateOption

TopologyOption = Annotated[
    str,
    typer.Option(
        "--topology",
        help="'single' (one server, no Keeper), 'cluster' (1 shard x 3 replicas, Keeper on all "
        "three) or the path of a TOML file with `cluster`, `shards` (lists of hosts) and `keeper`.",
    ),
]
JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print the written paths as one JSON list, for scripts."),
]


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")


config_app = typer.Typer(
    help="ClickHouse server configuration for each node of a topology.", no_args_is_help=True
)


@config_app.command("render")
def config_render(
    topology: TopologyOption = "cluster",
    out: Annotated[
        Path,
        typer.Option(
            help="Folder to write into: one subfolder per node holding config.d/ and users.d/, "
            "to copy under /etc/clickhouse-server/ on that node.",
        ),
    ] = Path("out/clickhouse-config"),
    json: JsonOption = False,
) -> None:
    """Render config.d and users.d files per node; passwords stay in the server's environment."""
    from adpulse.clickhouse.config import render_node_configs, write_rendered
    from adpulse.topology import load_topology
    from commands.support import domain_errors

    with domain_errors():
        written = write_rendered(render_node_configs(load_topology(topology)), out)
    report_written(written, json)


def report_written(written: list[Path], as_json: bool) -> None:
    """Print the paths a render wrote: one line each, or one JSON list."""
    if as_json:
        from commands.support import print_json

        print_json([str(path) for path in written])
    else:
        for path in written:
            typer.echo(f"wrote {path}")


@config_app.command("apply")
def config_apply(
    stack: StackOption = "prod",
    outputs: OutputsOption = None,
    discover: DiscoverOption = None,
    ssh_user: Annotated[str, typer.Option(help="The login user.")] = "admin",
    ssh_key: Annotated[
        Path | None, typer.Option(help="The private key [default: your ssh-agent's keys].")
    ] = None,
    state_dir: StateOption = Path(".adpulse"),
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what each node would get; change nothing.")
    ] = False,
    wait: Annotated[
        float,
        typer.Option(help="Seconds a restarted node may take to answer and catch up."),
    ] = 600.0,
    json: Annotated[
        bool, typer.Option("--json", help="Print the plan as JSON (progress goes to stderr).")
    ] = False,
) -> None:
    """Push the rendered configs to the stack's ClickHouse nodes, one at a time.

    Changes the server takes live get SYSTEM RELOAD CONFIG; others a restart of one replica at
    a time, each waiting until it answers and its replicas are under 10 s behind, never a
    second Keeper node down. Holds the stack's deploy lock; each node's audit log records it."""
    from commands.support import domain_errors, print_json
    from deploy.config_apply import Policy, Ssh, Step, apply_stack
    from deploy.sources import Source, load
    from deploy.ssh import known_hosts_path

    def show(step: Step) -> None:
        typer.echo(
            f"{step.host}: {step.step}" + (f" ({step.detail})" if step.detail else ""), err=json
        )

    with domain_errors():
        inv = load(stack, Source(outputs, discover))
        if not dry_run:
            from deploy.stack_secrets import with_secrets

            inv = with_secrets(inv)
        ssh = Ssh(known_hosts_path(stack, state_dir), ssh_key)
        plan = apply_stack(
            inv, ssh_user, ssh, dry_run=dry_run, policy=Policy(timeout_s=wait), progress=show
        )
    if json:
        print_json({"stack": stack, "dry_run": dry_run, "nodes": plan.as_json()})
        return
    for line in plan.describe():
        typer.echo(("would: " if dry_run else "done: ") + line)
