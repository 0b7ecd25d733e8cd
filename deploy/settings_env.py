"""Stack inventory -> the services' `ADPULSE_*` environment: the one crossing from stack outputs
to settings (STYLE rule 12).

Variable names come from `adpulse.settings.Settings` itself (its prefix and field names), which
are the stack's output names, so values cross as they are. Secrets come back apart, for the
deploy to write to root-owned 0600 files only: the passwords, the two URLs that need one joined
in (`postgres_url`, `redis_url`; stacks/README.md), and the dashboard's API key, under two
names (the API registers it, the dashboard sends it). Two facts are files, not variables:
`clickhouse_topology_toml` goes where `topology` points unless it is `cluster`, and
`clickhouse_ca_pem` into the hosts' trust store.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit, urlunsplit

from adpulse.settings import Settings
from deploy.inventory import KAFKA_SCRAM, InventoryError, StackInventory
from deploy.stack_secrets import login_of

# Inventory fields that are settings fields of the same name.
SAME_NAME = (
    "clickhouse_url",
    "topology",
    "kafka_bootstrap",
    "kafka_security_protocol",
    "kafka_sasl_mechanism",
    "kafka_sasl_username",
    "topic_replication_factor",
    "api_host",
    "api_port",
    "dashboard_port",
    "cloudwatch_metrics",
)
# Read by the dashboard's server (dashboard/src/lib/server-api.ts), not by Settings.
DASHBOARD_KEY_VARIABLE = "ADPULSE_API_KEY"


def service_environment(inv: StackInventory) -> tuple[dict[str, str], dict[str, str]]:
    """(plain, secret) `ADPULSE_*` variables for the consumer, the API and the dashboard.

    The ClickHouse admin password and the Postgres master login stay out: only the deploy's
    migration step uses them. The dashboard's key is in `secret` twice, with one value:
    `ADPULSE_DASHBOARD_API_KEY` for the API, which registers it, and `ADPULSE_API_KEY` for the
    dashboard, which sends it. Raises InventoryError if `inv.secrets` lacks a value the
    services need (build the inventory with `deploy.stack_secrets.with_secrets`).
    """
    plain: dict[str, object] = {name: getattr(inv, name) for name in SAME_NAME}
    plain |= {"stack_name": inv.stack, "aws_region": inv.region}
    # The consumer's /healthz and /metrics bind as the API does (the stack's api_host, every
    # interface): the hosts sit in private subnets, and the app security group admits the
    # metrics port from inside the VPC only, for the deploy's health checks.
    plain["metrics_host"] = inv.api_host
    _, kafka_password = login_of(KAFKA_SCRAM, _secret(inv, KAFKA_SCRAM))
    dashboard_key = _secret(inv, "dashboard-api-key")
    secret: dict[str, object] = {
        "clickhouse_ingest_password": _secret(inv, "clickhouse-ingest-password"),
        "clickhouse_api_password": _secret(inv, "clickhouse-api-password"),
        "kafka_sasl_password": kafka_password,
        "postgres_url": joined(inv.postgres_url, _secret(inv, "postgres-app-password")),
        "redis_url": joined(inv.redis_url, _secret(inv, "redis-auth-token")),
        "dashboard_api_key": dashboard_key,
    }
    if not inv.kafka_security_protocol.startswith("SASL"):
        # Settings refuses a SASL login beside a protocol without SASL: the stack's brokers
        # take no login, so none is passed.
        for name in ("kafka_sasl_mechanism", "kafka_sasl_username"):
            plain.pop(name)
        secret.pop("kafka_sasl_password")
    return _variables(plain), _variables(secret) | {DASHBOARD_KEY_VARIABLE: dashboard_key}


def joined(url: str, password: str) -> str:
    """`url` with `password` after its user (none for Redis: `rediss://:token@host`), quoted."""
    parts = urlsplit(url)
    user, _, host = parts.netloc.rpartition("@")
    if ":" in user:
        raise InventoryError(f"{parts.scheme} URL of the stack already holds a password")
    return urlunsplit(parts._replace(netloc=f"{user}:{quote(password, safe='')}@{host}"))


def _secret(inv: StackInventory, key: str) -> str:
    value = inv.secrets.get(key)
    if not value:
        raise InventoryError(
            f"the inventory of stack {inv.stack} has no value for secret {key}: read the "
            "secrets first (deploy.stack_secrets.with_secrets)"
        )
    return value


def _variables(values: dict[str, object]) -> dict[str, str]:
    """`ADPULSE_<NAME>` for each settings field, values as pydantic reads them back."""
    fields = Settings.model_fields
    unknown = sorted(name for name in values if name not in fields)
    if unknown:
        # Settings ignores unknown variables, so a renamed field would silently go unset.
        raise RuntimeError(
            f"adpulse.settings.Settings has no field {unknown[0]}: rename it in "
            "deploy/settings_env.py to the field's new name"
        )
    prefix = str(Settings.model_config.get("env_prefix", ""))
    return {f"{prefix}{name}".upper(): _text(value) for name, value in values.items()}


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
