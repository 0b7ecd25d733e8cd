"""The systemd units and environment files an app host runs the services with.

Pure: ports and values in, file texts out (`deploy.plan` decides what to write). The units name
no release and hold no secret: secrets reach a service only through `/etc/adpulse/<service>.env`
(root:root 0600, read by systemd before it drops to the service user), never a unit file, a
process argument or a log line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from adpulse.errors import ConfigError
from adpulse.render import render
from deploy import layout
from deploy.stack_facts import API_HOST

# The stack's `api_host`: the ALB reaches the API, and the dashboard, on the host's private IP.
API_BIND = DASHBOARD_BIND = API_HOST

EnvFiles = dict[str, tuple[str, int]]  # path -> (content, mode); all owned root:root

# The secret variables each service reads (adpulse/clickhouse/roles.py, adpulse/kafka/,
# api/context.py, adpulse/metadata/store.py, dashboard/src/lib/server-api.ts): each service's
# file holds only its own, so a compromised dashboard holds no database password. A service
# that starts reading another secret needs it added here, or it starts without it.
SECRETS_OF = {
    "consumer": ("ADPULSE_CLICKHOUSE_INGEST_PASSWORD", "ADPULSE_KAFKA_SASL_PASSWORD"),
    "api": (
        "ADPULSE_CLICKHOUSE_API_PASSWORD",
        "ADPULSE_POSTGRES_URL",
        "ADPULSE_REDIS_URL",
        "ADPULSE_DASHBOARD_API_KEY",  # registered at startup as the `dashboard` key
    ),
    "dashboard": ("ADPULSE_API_KEY",),
}

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Inside double quotes systemd's env-file parser (src/basic/env-file.c) unescapes exactly these
# after a backslash and keeps the backslash before anything else, like sh.
_ESCAPED = str.maketrans({c: "\\" + c for c in '"\\`$'})
_HEADER = "# {path}: written by `adpulse deploy`, which overwrites edits. Mode {mode:04o}.\n"


def render_units(api_port: int, dashboard_port: int) -> dict[str, str]:
    """The three unit files, by path under /etc/systemd/system."""
    for name, port in (("api_port", api_port), ("dashboard_port", dashboard_port)):
        if not 1 <= port <= 65535:
            raise ConfigError(f"{name} {port} is not a TCP port (1-65535)")
    if api_port == dashboard_port:
        raise ConfigError(
            f"api_port and dashboard_port are both {api_port}: the two services share a host, "
            "give them different ports"
        )
    common = {
        "user": layout.SERVICE_USER,
        "group": layout.SERVICE_GROUP,
        "current": layout.CURRENT,
        "common_env": layout.COMMON_ENV,
        "state_dir": layout.STATE_DIR,
        "adpulse_bin": layout.ADPULSE_BIN,
        "node_bin": layout.NODE_BIN,
        "dashboard_server": layout.DASHBOARD_SERVER,
        "api_bind": API_BIND,
        "api_port": api_port,
        "api_url": f"http://127.0.0.1:{api_port}",
        "api_unit": layout.unit_name("api"),
        "dashboard_bind": DASHBOARD_BIND,
        "dashboard_port": dashboard_port,
        "w_xor_x": True,
        "state_writable": True,
    }
    units = {}
    for service in layout.SERVICES:
        unit = layout.unit_name(service)
        units[str(layout.unit_path(service))] = render(
            f"deploy/{unit}.j2",
            **common,
            unit=unit,
            unit_stem=unit.removesuffix(".service"),
            service_env=layout.service_env(service),
        )
    return units


def env_line(key: str, value: str) -> str:
    """`KEY="value"` as systemd's EnvironmentFile= reads back to exactly `value`.

    Raises ConfigError naming the key (never the value, which may be a secret) when the key is
    not a variable name or the value holds a line break or another control character.
    """
    if not _KEY.fullmatch(key):
        raise ConfigError(
            f"environment variable name {key!r} is not valid: use letters, digits and _, "
            "not starting with a digit"
        )
    if "\n" in value or "\r" in value:
        raise ConfigError(
            f"the value of {key} holds a line break, which an EnvironmentFile cannot carry "
            "safely: store it base64-encoded, or as a file the service reads"
        )
    bad = sorted({f"U+{ord(c):04X}" for c in value if (ord(c) < 0x20 and c != "\t") or c == "\x7f"})
    if bad:
        raise ConfigError(
            f"the value of {key} holds control characters ({', '.join(bad)}): remove them"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"the value of {key} is not valid Unicode text: fix it") from None
    return f'{key}="{value.translate(_ESCAPED)}"'


def render_env_file(path: str, values: Mapping[str, str], mode: int) -> str:
    """A header naming the file, then one `KEY="value"` line per key in key order (stable, so
    the same values give the same checksum and restart nothing)."""
    lines = [env_line(key, values[key]) for key in sorted(values)]
    return _HEADER.format(path=path, mode=mode) + "".join(line + "\n" for line in lines)


def render_env_files(plain: Mapping[str, str], secret: Mapping[str, Mapping[str, str]]) -> EnvFiles:
    """`/etc/adpulse/common.env` (0644) from `plain`, and one `/etc/adpulse/<service>.env` (0600)
    per service from `secret[service]`, empty for a service without secrets so a secret taken
    out of the stack leaves the host too.

    Raises ConfigError for an unknown service, a key in both `plain` and a secret file (the
    secret would silently win), and whatever `env_line` refuses.
    """
    unknown = sorted(set(secret) - set(layout.SERVICES))
    if unknown:
        raise ConfigError(
            f"secrets for unknown services {', '.join(unknown)}: the services are "
            + ", ".join(layout.SERVICES)
        )
    for service, values in sorted(secret.items()):
        both = sorted(set(values) & set(plain))
        if both:
            raise ConfigError(
                f"{', '.join(both)} set both as plain settings and as secrets of {service}: "
                "keep each key in one place"
            )
    common = str(layout.COMMON_ENV)
    files = {
        common: (render_env_file(common, plain, layout.COMMON_ENV_MODE), layout.COMMON_ENV_MODE)
    }
    for service in layout.SERVICES:
        path = str(layout.service_env(service))
        content = render_env_file(path, secret.get(service, {}), layout.SECRET_ENV_MODE)
        files[path] = (content, layout.SECRET_ENV_MODE)
    return files


def secrets_by_service(secret: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Flat secret variables (as `deploy.settings_env.service_environment` gives them) split
    into what each service reads (`SECRETS_OF`), for `render_env_files`.

    Raises ConfigError for a variable no service reads: it would otherwise be dropped unseen.
    """
    known = {key for keys in SECRETS_OF.values() for key in keys}
    unread = sorted(set(secret) - known)
    if unread:
        raise ConfigError(
            f"no service reads the secret {', '.join(unread)}: add it to SECRETS_OF in "
            "deploy/units.py for the service that needs it"
        )
    return {
        service: {key: secret[key] for key in keys if key in secret}
        for service, keys in SECRETS_OF.items()
    }
