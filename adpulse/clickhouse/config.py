"""Render per-node ClickHouse server and users files, and the schema, for a topology.

Pure: rendering returns text keyed by relative path; `write_rendered` is the only I/O.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from adpulse import names
from adpulse.clickhouse.identifiers import validate_identifier
from adpulse.clickhouse.schema import SchemaOptions, migration_files, render_statements
from adpulse.errors import ConfigError
from adpulse.render import render
from adpulse.topology import Topology

# The rendered files name these variables (ClickHouse `from_env`) instead of holding secrets;
# the deployer sets them in the server's environment. Passwords are SHA-256 hex digests.
SECRET_ENV = {
    "admin": "CLICKHOUSE_ADMIN_PASSWORD_SHA256",
    "ingest": "CLICKHOUSE_INGEST_PASSWORD_SHA256",
    "api": "CLICKHOUSE_API_PASSWORD_SHA256",
    "cluster": "CLICKHOUSE_CLUSTER_SECRET",
}

CONFIG_FILE = "config.d/adpulse.xml"
USERS_FILE = "users.d/adpulse-users.xml"

_LIMITS = (
    "api_max_execution_time",
    "api_max_memory_usage",
    "api_max_rows_to_read",
    "quota_queries",
    "quota_errors",
    "quota_read_rows",
    "quota_execution_time",
)
_PATHS = ("data_dir", "tls_cert", "tls_key")


@dataclass(frozen=True)
class ConfigOptions:
    """What the server and users files depend on besides the topology.

    Limits apply to the read-only `api` user; quota numbers are per hour for that user.
    """

    data_dir: str = "/var/lib/clickhouse"
    tls_cert: str = "/etc/clickhouse-server/tls/server.crt"
    tls_key: str = "/etc/clickhouse-server/tls/server.key"
    # Replicas, Keeper peers and clients reach each node over the VPC, not only on loopback.
    listen_host: str = "0.0.0.0"  # noqa: S104
    database: str = names.DATABASE
    networks: tuple[str, ...] = ("10.0.0.0/16", "::1", "127.0.0.1")
    api_max_execution_time: int = 10
    api_max_memory_usage: int = 4_000_000_000
    api_max_rows_to_read: int = 2_000_000_000
    quota_queries: int = 360_000
    quota_errors: int = 10_000
    quota_read_rows: int = 1_000_000_000_000
    quota_execution_time: int = 36_000

    def __post_init__(self) -> None:
        for key in _LIMITS:
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(
                    f"clickhouse config: {key} must be a positive whole number, got {value!r}; "
                    "in ClickHouse 0 would mean unlimited"
                )
        for key in _PATHS:
            value = getattr(self, key)
            if not PurePosixPath(value).is_absolute():
                raise ConfigError(
                    f"clickhouse config: {key} must be an absolute path, got {value!r}"
                )
        if not self.networks:
            raise ConfigError("clickhouse config: networks is empty; no client could log in")
        for network in self.networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ConfigError(
                    f"clickhouse config: networks entry {network!r} is not an IP address or CIDR"
                ) from None
        try:
            ipaddress.ip_address(self.listen_host)
        except ValueError:
            raise ConfigError(
                f"clickhouse config: listen_host {self.listen_host!r} is not an IP address"
            ) from None
        validate_identifier(self.database, what="clickhouse config: database")

    def context(self) -> dict[str, Any]:
        """Template values shared by every node's files."""
        return {
            # Templates append "/..."; the filesystem root becomes "" so "/" is not doubled.
            "data_dir": self.data_dir.rstrip("/"),
            "tls_cert": self.tls_cert,
            "tls_key": self.tls_key,
            "listen_host": self.listen_host,
            "db": self.database,
            "networks": self.networks,
            "secret_env": SECRET_ENV,
            **{key: getattr(self, key) for key in _LIMITS},
        }


def render_node_configs(topology: Topology, options: ConfigOptions | None = None) -> dict[str, str]:
    """Map `HOST/config.d/adpulse.xml` and `HOST/users.d/adpulse-users.xml` to their text."""
    options = options or ConfigOptions()
    if topology.clustered and not topology.keeper:
        # ON CLUSTER DDL travels through Keeper even when no table is replicated.
        raise ConfigError(
            f"topology: {len(topology.hosts)} servers but no 'keeper' hosts; "
            "ON CLUSTER DDL needs Keeper, list 3 of the nodes under 'keeper'"
        )
    context = options.context()
    users = render("clickhouse/users.xml.j2", **context)
    files: dict[str, str] = {}
    for node in topology.nodes:
        files[f"{node.host}/{CONFIG_FILE}"] = render(
            "clickhouse/config.xml.j2",
            topology=topology,
            node=node,
            ports=topology.ports,
            **context,
        )
        files[f"{node.host}/{USERS_FILE}"] = users
    return files


def render_schema(topology: Topology, options: SchemaOptions) -> dict[str, str]:
    """Map `NNNN_name.sql` to every statement of that migration, `;`-terminated."""
    files: dict[str, str] = {}
    for migration in migration_files():
        statements = render_statements(migration.template, topology, options)
        files[f"{migration.version:04d}_{migration.name}.sql"] = ";\n\n".join(statements) + ";\n"
    return files


def write_rendered(files: dict[str, str], out: Path) -> list[Path]:
    """Write each file under `out`, creating folders; returns the written paths in order."""
    written: list[Path] = []
    for relative, text in files.items():
        rel = PurePosixPath(relative)
        if rel.is_absolute() or ".." in rel.parts:
            raise ConfigError(f"refusing to write {relative!r} outside {out}")
        path = out.joinpath(*rel.parts)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write {path}: {exc.strerror}; check --out") from None
        written.append(path)
    return written
