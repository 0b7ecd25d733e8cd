"""Render ClickHouse DDL for a topology, as lists of single statements."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adpulse.clickhouse.identifiers import validate_identifier
from adpulse.clickhouse.url import EmbeddedTarget, parse_clickhouse_url
from adpulse.render import ROOT, render
from adpulse.topology import Topology, load_topology, single

if TYPE_CHECKING:
    from adpulse.settings import Settings

MIGRATIONS_DIR = ROOT / "clickhouse_ddl" / "migrations"
_STATEMENT_END = re.compile(r";[ \t]*(?:\n|$)")
_MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql\.j2$")


@dataclass(frozen=True)
class SchemaOptions:
    """What the DDL depends on besides the topology."""

    database: str
    retention_days: int = 90
    rollup_retention_days: int = 730
    live_retention_days: int = 2
    dedup_window: int = 10_000

    def context(self, topology: Topology) -> dict[str, Any]:
        return {
            "db": validate_identifier(self.database, what="database"),
            "topology": topology,
            "retention_days": int(self.retention_days),
            "rollup_retention_days": int(self.rollup_retention_days),
            "live_retention_days": int(self.live_retention_days),
            "dedup_window": int(self.dedup_window),
        }


def schema_options(settings: Settings) -> SchemaOptions:
    """The options every command renders and migrates with: the database of
    ADPULSE_CLICKHOUSE_URL and the retention settings, so `schema render` writes what
    `schema migrate`, `seed` and `up` apply."""
    return SchemaOptions(
        database=parse_clickhouse_url(settings.clickhouse_url).database,
        retention_days=settings.retention_days,
        rollup_retention_days=settings.rollup_retention_days,
        live_retention_days=settings.live_retention_days,
    )


def schema_topology(settings: Settings, override: str | None = None) -> Topology:
    """The topology every command renders and migrates for.

    A command's `--topology` (`override`) wins. Otherwise ADPULSE_TOPOLOGY, except that the
    embedded engine (`chdb://`) is one node whatever ADPULSE_TOPOLOGY says: it runs inside one
    process, and ON CLUSTER DDL has no cluster there. Raises ConfigError for a bad spec.
    """
    if override is not None:
        return load_topology(override)
    if isinstance(parse_clickhouse_url(settings.clickhouse_url), EmbeddedTarget):
        return single()
    return load_topology(settings.topology)


def split_statements(sql: str) -> list[str]:
    """Split rendered DDL on `;` at line ends, dropping comment-only and empty pieces."""
    statements = []
    for piece in _STATEMENT_END.split(sql):
        lines = [line for line in piece.splitlines() if not line.strip().startswith("--")]
        text = "\n".join(lines).strip()
        if text:
            statements.append(text)
    return statements


def render_statements(
    template: str | Path, topology: Topology, options: SchemaOptions
) -> list[str]:
    """Render one DDL template into its statements."""
    return split_statements(render(template, **options.context(topology)))


@dataclass(frozen=True)
class MigrationFile:
    """A versioned migration: a template listing the table templates it applies."""

    version: int
    name: str
    path: Path

    @property
    def template(self) -> Path:
        return self.path


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[MigrationFile]:
    """Migrations in version order; a stray or duplicate-numbered file is an error."""
    from adpulse.errors import MigrationError

    found: dict[int, MigrationFile] = {}
    for path in sorted(directory.glob("*.sql.j2")):
        match = _MIGRATION_FILE.match(path.name)
        if not match:
            raise MigrationError(
                f"{path}: migration files are named NNNN_snake_name.sql.j2; rename it"
            )
        version = int(match.group(1))
        if version in found:
            raise MigrationError(
                f"{path.name} and {found[version].path.name} share version {version}; renumber one"
            )
        found[version] = MigrationFile(version, match.group(2), path)
    return [found[v] for v in sorted(found)]
