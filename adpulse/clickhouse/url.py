"""Parse `clickhouse_url` into where to connect. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from adpulse import names
from adpulse.errors import ConfigError


@dataclass(frozen=True)
class EmbeddedTarget:
    """chDB: an in-process engine over a data directory."""

    path: str
    database: str = names.DATABASE
    # Engine (server) settings from the URL's query, e.g. `?mark_cache_size=1073741824`.
    engine: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class NativeTarget:
    """A ClickHouse server (or several, tried in order) over the native protocol."""

    hosts: tuple[tuple[str, int], ...]
    database: str = names.DATABASE
    user: str = "default"
    password: str = field(default="", repr=False)
    secure: bool = False


def parse_clickhouse_url(url: str) -> EmbeddedTarget | NativeTarget:
    """`chdb://PATH[?database=db]` or `clickhouse[s]://user:pass@h1:9000,h2:9000/db`."""
    if url.startswith("chdb://"):
        rest, _, query = url[len("chdb://") :].partition("?")
        if not rest:
            raise ConfigError(
                "ADPULSE_CLICKHOUSE_URL: chdb:// needs a data path, e.g. chdb://.adpulse/chdb"
            )
        fields = parse_qs(query)
        database = fields.pop("database", [names.DATABASE])[0]
        engine = tuple(
            (_setting_name(key), _engine_value(key, values[-1])) for key, values in fields.items()
        )
        return EmbeddedTarget(path=rest, database=_identifier(database), engine=engine)
    parts = urlsplit(url)
    if parts.scheme not in ("clickhouse", "clickhouses"):
        raise ConfigError(f"ADPULSE_CLICKHOUSE_URL: unknown scheme {parts.scheme!r}")
    secure = parts.scheme == "clickhouses"
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    hosts = []
    for item in hostlist.split(","):
        host, _, port = item.partition(":")
        if not host:
            raise ConfigError(f"ADPULSE_CLICKHOUSE_URL: empty host in {hostlist!r}")
        try:
            hosts.append((host, int(port) if port else (9440 if secure else 9000)))
        except ValueError:
            raise ConfigError(f"ADPULSE_CLICKHOUSE_URL: port {port!r} is not a number") from None
    database = parts.path.strip("/") or names.DATABASE
    return NativeTarget(
        hosts=tuple(hosts),
        database=_identifier(database),
        user=unquote(user) or "default",
        password=unquote(password),
        secure=secure,
    )


def _identifier(name: str) -> str:
    from adpulse.clickhouse.identifiers import validate_identifier

    return validate_identifier(name, what="database in ADPULSE_CLICKHOUSE_URL")


def _setting_name(name: str) -> str:
    from adpulse.clickhouse.identifiers import validate_identifier

    return validate_identifier(name, what="chdb:// setting in ADPULSE_CLICKHOUSE_URL")


def _engine_value(key: str, value: str) -> str:
    if not value.replace("_", "").replace(".", "").isalnum():
        raise ConfigError(
            f"ADPULSE_CLICKHOUSE_URL: chdb:// setting {key}={value!r} must be a number or a word"
        )
    return value
