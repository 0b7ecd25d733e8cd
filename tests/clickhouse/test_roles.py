"""Settings -> a connection per role: the pure choice of user, and real logins on a server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from adpulse.clickhouse.config import SECRET_ENV, USERS_FILE, render_node_configs
from adpulse.clickhouse.roles import (
    ROLE_USERS,
    ROLES,
    Role,
    clickhouse_target_for,
    connect_as,
    login_refused,
    password_variable,
)
from adpulse.clickhouse.url import EmbeddedTarget, NativeTarget, parse_clickhouse_url
from adpulse.errors import ConfigError
from adpulse.settings import Settings, load_settings
from adpulse.topology import single
from tests.support.clickhouse_server import ROLE_PASSWORDS

SERVERS = "clickhouses://ingest@ch-1:9440,ch-2:9440,ch-3:9440/adpulse"  # as the stack exports it
HOSTILE = "p@ss:w/rd%41#?,h9:1 &<x>"
WRONG = "not-the-password-at-all"


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No `.env` or ADPULSE_* variable of the developer's shell picks a user or password."""
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("ADPULSE_")]:
        monkeypatch.delenv(key)


def settings_with(url: str, **passwords: str) -> Settings:
    return load_settings(
        clickhouse_url=url, **{f"clickhouse_{role}_password": p for role, p in passwords.items()}
    )


@pytest.mark.parametrize("role", ROLES)
def test_each_role_logs_in_as_its_user_with_its_password(role: Role) -> None:
    passwords = {r: f"{r}-password-{i}xyz" for i, r in enumerate(ROLES)}
    target = clickhouse_target_for(settings_with(SERVERS, **passwords), role)
    assert target == NativeTarget(
        hosts=(("ch-1", 9440), ("ch-2", 9440), ("ch-3", 9440)),
        database="adpulse",
        user=ROLE_USERS[role],
        password=passwords[role],
        secure=True,
    )


def test_the_role_replaces_the_user_and_password_written_in_the_url() -> None:
    url = "clickhouse://bob:bobs-password@h1:9000/analytics"
    target = clickhouse_target_for(settings_with(url, admin="admin-password-1"), "admin")
    assert isinstance(target, NativeTarget)
    assert (target.user, target.password) == ("admin", "admin-password-1")
    assert (target.hosts, target.database, target.secure) == ((("h1", 9000),), "analytics", False)


@pytest.mark.parametrize(
    "url",
    [
        "clickhouse://127.0.0.1:9000/default",
        "clickhouse://bob:b%40b@h1:9000,h2:9001/x",
        SERVERS,
    ],
)
def test_without_the_roles_password_the_url_is_used_as_given(url: str) -> None:
    # Another role's password does not change this one's login.
    settings = settings_with(url, api="api-password-123")
    assert clickhouse_target_for(settings, "ingest") == parse_clickhouse_url(url)
    assert clickhouse_target_for(settings, "admin") == parse_clickhouse_url(url)


def test_special_characters_reach_the_server_unchanged() -> None:
    target = clickhouse_target_for(settings_with(SERVERS, ingest=HOSTILE), "ingest")
    assert isinstance(target, NativeTarget)
    assert target.password == HOSTILE
    assert len(target.hosts) == 3 and target.database == "adpulse"


@pytest.mark.parametrize("role", ROLES)
def test_embedded_url_is_unchanged_for_every_role(role: Role) -> None:
    url = "chdb://.adpulse/chdb?database=d1"
    settings = settings_with(url, **{r: f"{r}-password-xyz" for r in ROLES})
    assert clickhouse_target_for(settings, role) == EmbeddedTarget(".adpulse/chdb", "d1")


@pytest.mark.parametrize("role", ROLES)
def test_the_variable_named_in_messages_is_the_one_settings_read(
    role: Role, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADPULSE_CLICKHOUSE_URL", SERVERS)
    monkeypatch.setenv(password_variable(role), HOSTILE)
    target = clickhouse_target_for(load_settings(), role)
    assert isinstance(target, NativeTarget)
    assert (target.user, target.password) == (ROLE_USERS[role], HOSTILE)


def test_each_roles_user_is_a_user_of_the_rendered_users_file() -> None:
    users = render_node_configs(single())[f"localhost/{USERS_FILE}"]
    for role in ROLES:
        assert f'<{ROLE_USERS[role]} replace="true">' in users
        assert f'from_env="{SECRET_ENV[role]}"' in users


@pytest.mark.parametrize("code", [192, 193, 194, 516])
@pytest.mark.parametrize("role", ROLES)
def test_no_password_in_the_refusal_or_the_repr(role: Role, code: int) -> None:
    settings = settings_with(SERVERS, **{role: HOSTILE})
    target = clickhouse_target_for(settings, role)
    assert isinstance(target, NativeTarget)
    message = login_refused(settings, role, target, code)
    for text in (message, repr(target), repr(settings), str(settings)):
        assert HOSTILE not in text
    assert "\n" not in message
    assert f"the {role} role's login as user '{ROLE_USERS[role]}'" in message
    assert f"code {code}" in message and password_variable(role) in message


# Real logins: Debian's clickhouse-server 18.16 with the fixture's role users.


def server(native_port: int, user: str = "") -> str:
    return f"clickhouse://{user + '@' if user else ''}127.0.0.1:{native_port}/default"


@pytest.mark.parametrize("role", ROLES)
def test_each_role_logs_in_with_its_password(native_port: int, role: Role) -> None:
    settings = settings_with(server(native_port, "default"), **ROLE_PASSWORDS)
    client = connect_as(settings, role)
    try:
        assert client.query("SELECT 1") == [(1,)]
        [(user,)] = client.query(
            "SELECT user FROM system.processes WHERE query LIKE '%adpulse-whoami%'"
        )
        assert user == ROLE_USERS[role]
    finally:
        client.close()


@pytest.mark.parametrize("role", ROLES)
def test_a_wrong_password_is_one_line_naming_the_role_and_variable(
    native_port: int, role: Role
) -> None:
    settings = settings_with(server(native_port), **{role: WRONG})
    with pytest.raises(ConfigError) as info:
        connect_as(settings, role)
    message = str(info.value)
    assert message == (
        f"ClickHouse at 127.0.0.1:{native_port} refused the {role} role's login as user "
        f"'{ROLE_USERS[role]}' (wrong password, code 193): check {password_variable(role)}: "
        f"it must be the password of ClickHouse user '{ROLE_USERS[role]}', whose SHA-256 the "
        f"servers read from {SECRET_ENV[role]}"
    )
    assert WRONG not in message


def test_an_unset_password_names_the_variable_to_set(native_port: int) -> None:
    # The stack's URL names `ingest`; without its password the server asks for one.
    settings = settings_with(server(native_port, "ingest"))
    with pytest.raises(ConfigError) as info:
        connect_as(settings, "ingest")
    message = str(info.value)
    assert "as user 'ingest' (a password is required, code 194)" in message
    assert message.endswith(
        "ADPULSE_CLICKHOUSE_INGEST_PASSWORD is not set, so the user of ADPULSE_CLICKHOUSE_URL "
        "was used; set ADPULSE_CLICKHOUSE_INGEST_PASSWORD to the password of ClickHouse user "
        "'ingest'"
    )


def test_an_unknown_user_is_named(native_port: int) -> None:
    with pytest.raises(ConfigError, match=r"as user 'nobody' \(no such user, code 192\)"):
        connect_as(settings_with(server(native_port, "nobody")), "api")


def test_an_unreachable_server_is_not_a_login_error() -> None:
    from adpulse.clickhouse.client import UnavailableError
    from tests.support.clickhouse_server import free_port

    client = connect_as(settings_with(server(free_port()), admin="admin-password-1"), "admin")
    try:
        with pytest.raises(UnavailableError):
            client.query("SELECT 1")
    finally:
        client.close()
