"""`adpulse config render`: the ClickHouse server configuration each node of a topology needs.

Commands parse options and hand off to `adpulse.clickhouse.config`; adpulse modules are imported
inside the commands so `adpulse --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
