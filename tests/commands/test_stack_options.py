"""`with_stack_args`: the options it adds, where --help shows them, and the `StackArgs` the
command gets from them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from commands.stack_options import StackArgs, with_stack_args

NameOption = Annotated[str, typer.Option(help="A name.")]
SSH = ["ssh_user", "ssh_key", "bastion", "proxy_command", "state_dir"]


Calls = list[tuple[StackArgs, str, str]]


def command_app(required: bool, after_stack: tuple[str, ...] = ()) -> tuple[typer.Typer, Calls]:
    """An app of one command that records what it is called with."""
    app = typer.Typer(add_completion=False)
    calls: Calls = []

    @app.command()
    @with_stack_args(required=required, after_stack=after_stack)
    def show(reach: StackArgs, name: NameOption = "n", other: NameOption = "o") -> None:
        """Show what it got."""
        calls.append((reach, name, other))

    return app, calls


def option_names(app: typer.Typer) -> list[str | None]:
    return [param.name for param in get_command(app).params]


def test_an_optional_stack_comes_after_the_command_options_with_release_last() -> None:
    app, calls = command_app(required=False)
    assert option_names(app) == [
        "name", "other", "stack", "outputs", "discover", *SSH, "release"
    ]  # fmt: skip
    result = CliRunner().invoke(app, ["--name", "x", "--bastion", "jump", "--release", "v1"])
    assert result.exit_code == 0, result.output
    assert calls == [
        (
            StackArgs(
                stack=None, outputs=None, discover=None, ssh_user="admin", ssh_key=None,
                bastion="jump", proxy_command=None, state_dir=Path(".adpulse"), release="v1",
            ),
            "x",
            "o",
        )
    ]  # fmt: skip


def test_a_required_stack_leads_and_the_ssh_options_close(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app, calls = command_app(required=True, after_stack=("other",))
    assert option_names(app) == [
        "stack", "other", "outputs", "discover", "name", *SSH
    ]  # fmt: skip
    monkeypatch.setenv("ADPULSE_STACK", "prod")
    result = CliRunner().invoke(app, ["--ssh-user", "ops", "--state-dir", "/s"])
    assert result.exit_code == 0, result.output
    [(reach, _, _)] = calls
    assert (reach.stack, reach.ssh_user, reach.state_dir, reach.release) == (
        "prod", "ops", Path("/s"), None
    )  # fmt: skip


def test_a_command_without_reach_or_with_an_option_of_the_same_name_is_refused() -> None:
    def no_reach(name: NameOption = "n") -> None:
        """No reach."""

    def clash(reach: StackArgs, bastion: NameOption = "b") -> None:
        """Its own --bastion."""

    with pytest.raises(TypeError, match="no_reach has no `reach: StackArgs` parameter"):
        with_stack_args(required=False)(no_reach)
    with pytest.raises(TypeError, match="clash has its own bastion"):
        with_stack_args(required=True)(clash)
