"""The stack's secret values, read from Secrets Manager by the ARNs its inventory holds."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from deploy.aws_calls import aws_errors, session_for
from deploy.inventory import KAFKA_SCRAM, POSTGRES_MASTER, InventoryError, StackInventory

# What the deploy and the services it installs read: the ClickHouse logins (admin for the
# schema migration), the Redis token, both Postgres logins (the master creates adpulse_app),
# the Kafka SCRAM login and the dashboard's API key. Not the cluster secret: only the
# ClickHouse nodes hold it.
DEPLOY_SECRETS = (
    "clickhouse-admin-password",
    "clickhouse-ingest-password",
    "clickhouse-api-password",
    "redis-auth-token",
    "postgres-app-password",
    "dashboard-api-key",
    POSTGRES_MASTER,
    KAFKA_SCRAM,
)
# Secrets holding JSON {"username", "password"}; the others are plain strings.
JSON_SECRETS = (KAFKA_SCRAM, POSTGRES_MASTER)


def with_secrets(inv: StackInventory, session: Any = None) -> StackInventory:
    """`inv` with `secrets` holding the current value of each DEPLOY_SECRETS key.

    Raises InventoryError naming the key and ARN (never a value) when a secret cannot be read
    or is not in the form the stack stores.
    """
    client = session_for(inv.region, session).client("secretsmanager", region_name=inv.region)
    values: dict[str, str] = {}
    for key in DEPLOY_SECRETS:
        arn = inv.secret_arns[key]
        with aws_errors(f"reading secret {key} ({arn}) of stack {inv.stack}"):
            answer = client.get_secret_value(SecretId=arn)
        value = answer.get("SecretString")
        if not isinstance(value, str) or not value:
            raise InventoryError(f"secret {key} ({arn}) holds no text; the stack stores text")
        if key in JSON_SECRETS:
            login_of(key, value, arn)
        values[key] = value
    return dataclasses.replace(inv, secrets=values)


def login_of(key: str, value: str, arn: str = "") -> tuple[str, str]:
    """(username, password) of a JSON login secret; InventoryError, without the value, if not."""
    try:
        doc = json.loads(value)
    except json.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict) or not all(
        isinstance(doc.get(part), str) and doc[part] for part in ("username", "password")
    ):
        where = f" ({arn})" if arn else ""
        raise InventoryError(
            f"secret {key}{where} is not JSON with a username and a password, as the stack "
            "writes it; restore its value with `pulumi up`"
        )
    return doc["username"], doc["password"]
