"""A client for a URL or target: the one place that knows both backends, so neither backend
module imports the other or the protocol module imports a backend."""

from __future__ import annotations

from adpulse.clickhouse.client import ClickHouseClient
from adpulse.clickhouse.url import EmbeddedTarget, NativeTarget, parse_clickhouse_url


def connect(url: str | EmbeddedTarget | NativeTarget) -> ClickHouseClient:
    """Open a client for a `clickhouse_url` or a parsed target; imports the backend lazily.

    Services connect through `adpulse.clickhouse.roles.connect_as`, which picks the user."""
    target = parse_clickhouse_url(url) if isinstance(url, str) else url
    if isinstance(target, EmbeddedTarget):
        from adpulse.clickhouse.embedded import EmbeddedClient

        return EmbeddedClient(target)
    assert isinstance(target, NativeTarget)
    from adpulse.clickhouse.native import NativeClient

    return NativeClient(target)
