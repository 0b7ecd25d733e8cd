"""Settings -> a ClickHouse connection for one role: the one way every process logs in.

The roles are the users of `templates/clickhouse/users.xml.j2`: `admin` changes the schema
(`adpulse schema`, `adpulse seed`), `ingest` writes events (the consumer), `api` reads under the
read-only profile and the shared quota.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Literal, get_args

from adpulse.clickhouse.url import EmbeddedTarget, NativeTarget, parse_clickhouse_url
from adpulse.errors import ConfigError

if TYPE_CHECKING:
    from pydantic import SecretStr

    from adpulse.clickhouse.client import ClickHouseClient
    from adpulse.settings import Settings

log = logging.getLogger("adpulse.clickhouse")

Role = Literal["admin", "ingest", "api"]
ROLES: tuple[Role, ...] = get_args(Role)

# The user each role logs in as: the user names of templates/clickhouse/users.xml.j2.
ROLE_USERS: dict[Role, str] = {"admin": "admin", "ingest": "ingest", "api": "api"}

# Codes of a refused login. 18.x servers say which part was wrong; since 20.x every refusal is
# 516, so that a client cannot probe which user names exist.
_LOGIN_REFUSED = {
    192: "no such user",
    193: "wrong password",
    194: "a password is required",
    516: "wrong password or no such user",
}


def password_variable(role: Role) -> str:
    """The environment variable holding `role`'s password, e.g. ADPULSE_CLICKHOUSE_API_PASSWORD."""
    return f"ADPULSE_CLICKHOUSE_{role.upper()}_PASSWORD"


def clickhouse_target_for(settings: Settings, role: Role) -> EmbeddedTarget | NativeTarget:
    """Where, and as which user, `role` connects. Pure.

    - `chdb://`: the embedded engine has no users; every role gets the URL's target.
    - A server URL with ADPULSE_CLICKHOUSE_<ROLE>_PASSWORD set: the role's user with that
      password, replacing any user and password written in the URL (the stack's URL names the
      `ingest` user for every process); hosts, TLS and database stay the URL's.
    - A server URL without that variable: the URL as given (a dev server's passwordless
      `default`, or credentials written into the URL), as before roles existed.

    The password lives only in the returned target, whose repr leaves it out.
    """
    target = parse_clickhouse_url(settings.clickhouse_url)
    password = _password(settings, role)
    if isinstance(target, EmbeddedTarget) or password is None:
        return target
    return replace(target, user=ROLE_USERS[role], password=password.get_secret_value())


def connect_as(settings: Settings, role: Role) -> ClickHouseClient:
    """Open a client for `role` and log in once, so that a refused login fails here, by name.

    Raises `ConfigError` when the server refuses the login: one line naming the role, the user
    and the variable to set, never the password. Other refusals raise `QueryError`. An
    unreachable server is not a login problem: the client is returned and its calls raise
    `UnavailableError` until the server answers, which the consumer retries and the API
    reports on /readyz, as before.
    """
    from adpulse.clickhouse.client import QueryError, UnavailableError
    from adpulse.clickhouse.connection import connect

    target = clickhouse_target_for(settings, role)
    client = connect(target)
    if isinstance(target, EmbeddedTarget):
        return client
    try:
        client.query("SELECT 1")
    except UnavailableError as exc:
        log.info("%s; the %s role logs in when it first reaches ClickHouse", exc, role)
    except QueryError as exc:
        client.close()
        if exc.code in _LOGIN_REFUSED:
            raise ConfigError(login_refused(settings, role, target, exc.code)) from None
        raise
    return client


def login_refused(settings: Settings, role: Role, target: NativeTarget, code: int | None) -> str:
    """The one line a refused login becomes: who, where, why and what to set."""
    from adpulse.clickhouse.config import SECRET_ENV

    variable, user = password_variable(role), ROLE_USERS[role]
    hosts = ",".join(f"{host}:{port}" for host, port in target.hosts)
    reason = _LOGIN_REFUSED.get(code or 0, "login refused")
    if _password(settings, role) is None:
        fix = (
            f"{variable} is not set, so the user of ADPULSE_CLICKHOUSE_URL was used; set "
            f"{variable} to the password of ClickHouse user {user!r}"
        )
    else:
        fix = (
            f"check {variable}: it must be the password of ClickHouse user {user!r}, whose "
            f"SHA-256 the servers read from {SECRET_ENV[role]}"
        )
    return (
        f"ClickHouse at {hosts} refused the {role} role's login as user {target.user!r} "
        f"({reason}, code {code}): {fix}"
    )


def _password(settings: Settings, role: Role) -> SecretStr | None:
    passwords = {
        "admin": settings.clickhouse_admin_password,
        "ingest": settings.clickhouse_ingest_password,
        "api": settings.clickhouse_api_password,
    }
    return passwords[role]
