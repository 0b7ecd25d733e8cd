"""`adpulse config render` and `adpulse schema render`: write what the templates produce.

Commands parse options and hand off to `adpulse.clickhouse.config`; adpulse modules are imported
inside the commands so `adpulse --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from adpulse.cli_schema import TopologyOpt

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
    from adpulse.cli_support import domain_errors
    from adpulse.clickhouse.config import render_node_configs, write_rendered
    from adpulse.topology import load_topology

    with domain_errors():
        written = write_rendered(render_node_configs(load_topology(topology)), out)
    _report(written, json)


def schema_render(
    topology: TopologyOpt = None,
    out: Annotated[
        Path,
        typer.Option(help="Folder to write one NNNN_name.sql file per migration into."),
    ] = Path("out/schema"),
    json: JsonOption = False,
) -> None:
    """Render the DDL of every migration for a topology, to review or apply by hand."""
    from adpulse.cli_support import domain_errors
    from adpulse.clickhouse.config import render_schema, write_rendered
    from adpulse.clickhouse.schema import schema_options, schema_topology
    from adpulse.settings import load_settings

    with domain_errors():
        # Topology, database and retention as `schema migrate` picks them: the files match
        # what it applies.
        settings = load_settings()
        chosen = schema_topology(settings, topology)
        written = write_rendered(render_schema(chosen, schema_options(settings)), out)
    _report(written, json)


def _report(written: list[Path], as_json: bool) -> None:
    if as_json:
        from adpulse.cli_support import print_json

        print_json([str(path) for path in written])
    else:
        for path in written:
            typer.echo(f"wrote {path}")
