"""Secret overrides from `pulumi config set --secret`: refused in plain text or as placeholders."""

from __future__ import annotations

import pulumi
from pulumi.runtime.config import is_config_secret

from stacks.config.model import SecretValues
from stacks.config.validate import StackConfigError, key

_PLACEHOLDERS = {"changeme", "change-me", "password", "secret", "admin", "example"}
# ElastiCache refuses these in an AUTH token.
_REDIS_FORBIDDEN = set('@"/ ')


def _secret(cfg: pulumi.Config, name: str, min_len: int, hint: str) -> pulumi.Output[str] | None:
    """Read an optional secret override; refuse plain-text or placeholder values."""
    how = (
        f"set it with `pulumi config set --secret {key(name)} <value>` ({hint}), or remove "
        f"it (`pulumi config rm {key(name)}`) and the stack generates one"
    )
    value = cfg.get(name)
    if not value:
        return None
    if not is_config_secret(key(name)):
        raise StackConfigError(f"config {key(name)} is stored in plain text: {how}")
    if value.lower() in _PLACEHOLDERS or len(value) < min_len:
        raise StackConfigError(
            f"config {key(name)} is a placeholder or shorter than {min_len} characters: {how}"
        )
    return pulumi.Output.secret(value)


def secret_values(cfg: pulumi.Config) -> SecretValues:
    """Every override, unset ones None; the Redis token also within ElastiCache's rules."""
    secrets = SecretValues(
        clickhouse_admin_password=_secret(cfg, "clickhouseAdminPassword", 12, "12+ characters"),
        clickhouse_ingest_password=_secret(cfg, "clickhouseIngestPassword", 12, "12+ characters"),
        clickhouse_api_password=_secret(cfg, "clickhouseApiPassword", 12, "12+ characters"),
        clickhouse_cluster_secret=_secret(cfg, "clickhouseClusterSecret", 16, "16+ characters"),
        redis_auth_token=_secret(
            cfg, "redisAuthToken", 16, '16..128 characters, no @ " / or space'
        ),
    )
    token = cfg.get("redisAuthToken") or ""
    if token and (len(token) > 128 or _REDIS_FORBIDDEN & set(token)):
        raise StackConfigError(
            f"config {key('redisAuthToken')} must be 16..128 printable characters without "
            '@, ", / or spaces; generate one with `openssl rand -hex 32`'
        )
    return secrets
