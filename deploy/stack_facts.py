"""What the stack program fixes and AWS does not record, for discovering a stack without Pulumi.

Copies of constants in stacks/ modules that import Pulumi (the `infra` extra, which the deploy
does not need); tests/deploy/test_inventory.py holds each equal to its source, so a change there
fails a test here instead of making discovery disagree with `pulumi stack output`.
"""

from __future__ import annotations

PROJECT = "adpulse"  # stacks/config/validate.py PROJECT: the Project tag
# stacks/secret_store.py GENERATED_LENGTH: the secrets named `adpulse-<stack>/<key>-<suffix>`.
STACK_SECRETS = (
    "clickhouse-admin-password",
    "clickhouse-ingest-password",
    "clickhouse-api-password",
    "clickhouse-cluster-secret",
    "redis-auth-token",
    "postgres-app-password",
    "dashboard-api-key",
)
MSK_SECRET_PREFIX = "AmazonMSK_"  # noqa: S105 (stacks/msk.py: a name prefix, not a secret)
APP_USER = "adpulse_app"  # stacks/database.py APP_USER: the services' Postgres login
API_HOST = "0.0.0.0"  # noqa: S104 (stacks/__main__.py `api_host`: the ALB reaches private IPs)
API_PORT = 8000  # stacks/network.py
DASHBOARD_PORT = 3000  # stacks/network.py
METRICS_PORT = 9108  # stacks/network.py: the consumer's /healthz and /metrics, open to the VPC
# stacks/msk.py: the clients of MSK's SASL/SCRAM listener, the only SCRAM mechanism MSK offers.
KAFKA_SECURITY_PROTOCOL = "SASL_SSL"
KAFKA_SASL_MECHANISM = "SCRAM-SHA-512"


def name_prefix(stack: str) -> str:
    """`adpulse-<stack>`, as stacks/config/names.py prefixes the stack's physical names."""
    return f"{PROJECT}-{stack}"


def scram_secret_prefix(stack: str) -> str:
    """stacks/msk.py `scram_secret_prefix("adpulse", stack)`: the MSK SCRAM secret's name."""
    return f"{MSK_SECRET_PREFIX}{PROJECT}-{stack}-"


def postgres_url(host: str, port: int, db: str) -> str:
    """stacks/database.py `postgres_url`: the services' login, without its password."""
    return f"postgresql://{APP_USER}@{host}:{port}/{db}?sslmode=require"


def redis_url(host: str, port: int, tls: bool) -> str:
    """stacks/cache.py `redis_url` (`rediss://`, TLS); `redis://` for a group without it."""
    return f"{'rediss' if tls else 'redis'}://{host}:{port}"
