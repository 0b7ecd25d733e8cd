"""Run the API under uvicorn: `adpulse serve` alone, or inside `adpulse up`."""

from __future__ import annotations

import ipaddress

import uvicorn

from adpulse.clickhouse.client import ClickHouseClient
from adpulse.errors import ConfigError
from adpulse.metadata.store import MetadataStore
from adpulse.settings import Settings
from api.app import create_app


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, *, auth_required: bool) -> None:
    """Refuse to serve without API keys anywhere but on this machine's loopback."""
    if not auth_required and not is_loopback(host):
        raise ConfigError(
            f"--no-auth on {host} would serve every number to anyone who can reach it; "
            "bind to 127.0.0.1 (or ::1) or drop --no-auth and use API keys"
        )


def build_server(
    settings: Settings,
    host: str | None = None,
    port: int | None = None,
    *,
    auth_required: bool,
    clickhouse_client: ClickHouseClient | None = None,
    store: MetadataStore | None = None,
) -> uvicorn.Server:
    """A uvicorn server for the API; `.run()` blocks, `await .serve()` runs in a loop.

    One process only: the embedded engine may be opened by one process, and on a server
    the API scales by running more containers.
    """
    host = host or settings.api_host
    check_bind(host, auth_required=auth_required)
    app = create_app(settings, clickhouse_client, auth_required=auth_required, store=store)
    config = uvicorn.Config(
        app,
        host=host,
        port=port or settings.api_port,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
        server_header=False,
    )
    return uvicorn.Server(config)
