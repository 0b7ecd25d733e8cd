"""Options of the commands that reach a stack's hosts, declared once (as `adpulse deploy` has
them) and added to a command by `with_stack_args`, their values as given (`StackArgs`), and
their parsing into what `deploy/` takes: an `OnStack` (the stack, a `Source` and an `Access`),
where `run_on` runs an admin command.

Light imports only: `adpulse --help` loads this module.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

if TYPE_CHECKING:
    from deploy.sources import Source
    from deploy.ssh import Access

StackOption = Annotated[
    str, typer.Option("--stack", help="The Pulumi stack.", envvar="ADPULSE_STACK")
]
# For the commands that only run on a stack (deploy, rollback, status).
RequiredStackOption = Annotated[
    str,
    typer.Option(
        "--stack", help="The Pulumi stack (required: no default).", envvar="ADPULSE_STACK"
    ),
]
# For commands that run locally unless told otherwise: no environment variable, so a shell
# that exports ADPULSE_STACK for deploys does not send `schema migrate` to production.
OnStackOption = Annotated[
    str | None,
    typer.Option(
        "--stack",
        help="Run against this Pulumi stack's endpoints instead of local settings: on its first "
        "app host over SSH, with the stack's admin credentials.",
        show_default=False,
    ),
]
OutputsOption = Annotated[
    Path | None,
    typer.Option(
        "--outputs",
        help="The stack's outputs saved by `pulumi stack output --json "
        "--show-secrets > FILE` [default: ask the Pulumi CLI].",
    ),
]
DiscoverOption = Annotated[
    str | None,
    typer.Option(
        "--discover",
        metavar="REGION",
        help="Find the stack in AWS by its tags instead (boto3, the usual credentials).",
    ),
]
StateOption = Annotated[
    Path, typer.Option(help="Where the stack's known_hosts is kept.", envvar="ADPULSE_STATE_DIR")
]
SshUserOption = Annotated[str, typer.Option(help="The login user.")]
SshKeyOption = Annotated[
    Path | None, typer.Option(help="The private key [default: your ssh-agent's keys].")
]
BastionOption = Annotated[
    str | None,
    typer.Option(
        "--bastion",
        metavar="[USER@]HOST[:PORT]",
        help="Reach the hosts through this jump host (its key in the stack's known_hosts too; "
        "the user defaults to --ssh-user).",
    ),
]
ProxyCommandOption = Annotated[
    str | None,
    typer.Option(
        "--proxy-command",
        help="Carry SSH over this command, as OpenSSH's ProxyCommand (%h host, %p port, "
        "%i instance id); SSM: `aws ssm start-session --target %i --document-name "
        "AWS-StartSSHSession --parameters portNumber=%p`.",
    ),
]
ReleaseOption = Annotated[
    str | None,
    typer.Option(
        "--release",
        metavar="VERSION",
        help="With --stack: run the code of this installed release [default: the one the "
        "hosts run].",
    ),
]


@dataclass(frozen=True, kw_only=True)
class StackArgs:
    """The stack and SSH options as a command got them, before any check: built by
    `with_stack_args`, then turned into an `OnStack` by `on_stack` or `required_stack`.
    `release` is the installed release of `--release VERSION`."""

    stack: str | None
    outputs: Path | None
    discover: str | None
    ssh_user: str
    ssh_key: Path | None
    bastion: str | None
    proxy_command: str | None
    state_dir: Path
    release: str | None = None

    def access(self) -> Access:
        """The SSH options as one `Access`; ConfigError for a bad --bastion."""
        return access_of(
            self.ssh_user, self.ssh_key, self.bastion, self.proxy_command, self.state_dir
        )


R = TypeVar("R")


def _stack_parameters(required: bool) -> dict[str, inspect.Parameter]:
    """The options `StackArgs` holds, as parameters in --help order; `--release VERSION` only
    for the commands that may run locally (deploy's `--release` is an archive)."""
    options: dict[str, tuple[Any, object]] = {
        "stack": (RequiredStackOption, "") if required else (OnStackOption, None),
        "outputs": (OutputsOption, None),
        "discover": (DiscoverOption, None),
        "ssh_user": (SshUserOption, "admin"),
        "ssh_key": (SshKeyOption, None),
        "bastion": (BastionOption, None),
        "proxy_command": (ProxyCommandOption, None),
        "state_dir": (StateOption, Path(".adpulse")),
    }
    if not required:
        options["release"] = (ReleaseOption, None)
    return {
        name: inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
        )
        for name, (annotation, default) in options.items()
    }


def with_stack_args(
    *, required: bool, after_stack: tuple[str, ...] = ()
) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Give a command the stack and SSH options and call it with them as `reach: StackArgs`.

    `required` (deploy, rollback, status): `--stack` is required (or ADPULSE_STACK) and leads
    --help with `--outputs` and `--discover`, the SSH options close it. Otherwise `--stack` is
    optional, with no environment variable, and all of them, then `--release`, follow the
    command's own options. `after_stack` names own options shown right after `--stack`.
    Raises TypeError, at import, for a command without `reach` or with an option of the same
    name as one of these."""

    def decorate(command: Callable[..., R]) -> Callable[..., R]:
        # Evaluated here, in the command's module: Typer takes `__signature__` as it is, so
        # `from __future__ import annotations` strings would reach it unresolved.
        signature = inspect.signature(command, eval_str=True)
        own = dict(signature.parameters)
        if own.pop("reach", None) is None:
            raise TypeError(f"{command.__name__} has no `reach: StackArgs` parameter")
        added = _stack_parameters(required)
        if clash := sorted(own.keys() & added.keys()):
            raise TypeError(f"{command.__name__} has its own {', '.join(clash)}")
        lead = [own.pop(name) for name in after_stack]
        where = [added["stack"], *lead, added["outputs"], added["discover"]]
        ssh = [p for name, p in added.items() if name not in ("stack", "outputs", "discover")]
        mine = list(own.values())
        ordered = [*where, *mine, *ssh] if required else [*mine, *where, *ssh]
        # Keyword-only: `typer.Context`, without a default, may follow `--stack`.
        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in ordered]

        @functools.wraps(command)
        def run(**given: Any) -> R:
            reach = StackArgs(**{name: given.pop(name) for name in added})
            return command(reach=reach, **given)

        # Typer reads both; typeshed does not declare a function's `__signature__`.
        run.__dict__["__signature__"] = signature.replace(parameters=params)
        run.__annotations__ = {p.name: p.annotation for p in params}
        run.__annotations__["return"] = signature.return_annotation
        return run

    return decorate


@dataclass(frozen=True)
class OnStack:
    """Where a `--stack` command runs: the stack, its inventory's source, how to reach it."""

    stack: str
    source: Source
    access: Access
    release: str | None


def access_of(
    ssh_user: str,
    ssh_key: Path | None,
    bastion: str | None,
    proxy_command: str | None,
    state_dir: Path,
) -> Access:
    """The SSH options as one `Access`; `--bastion [USER@]HOST[:PORT]` parsed."""
    from adpulse.errors import ConfigError
    from deploy.ssh import Access, Target

    jump = None
    if bastion is not None:
        user, _, rest = bastion.rpartition("@")
        host, _, port = rest.partition(":")
        if not host or (port and not port.isdigit()):
            raise ConfigError(
                f"--bastion {bastion!r} is not [USER@]HOST[:PORT], e.g. admin@203.0.113.7:22"
            )
        jump = Target(host, host, int(port or 22), user=user or ssh_user)
    return Access(ssh_user, ssh_key, jump, proxy_command, state_dir)


def required_stack(args: StackArgs) -> OnStack:
    """For the commands that only run on a stack (deploy, rollback, status): typer's usage
    error without --stack, ConfigError for a bad --bastion."""
    from deploy.sources import Source

    if not args.stack:
        raise typer.BadParameter("give --stack NAME (or ADPULSE_STACK)", param_hint="--stack")
    return OnStack(args.stack, Source(args.outputs, args.discover), args.access(), args.release)


def on_stack(args: StackArgs, local_only: dict[str, object] | None = None) -> OnStack | None:
    """The stack to run on, or None to run locally. Raises ConfigError, naming the option,
    for a bad --bastion, a stack option without --stack, or a local-only option (`local_only`,
    set ones only) with it."""
    from adpulse.errors import ConfigError
    from deploy.sources import Source

    access = args.access()
    if args.stack is None:
        given = [
            name
            for name, value in (
                ("--outputs", args.outputs),
                ("--discover", args.discover),
                ("--release", args.release),
                ("--bastion", access.jump),
                ("--proxy-command", access.proxy_command),
                ("--ssh-key", access.key_file),
            )
            if value is not None
        ]
        if given:
            raise ConfigError(f"{given[0]} needs --stack NAME: it says how to reach a stack")
        return None
    for name, value in (local_only or {}).items():
        if value is not None:
            raise ConfigError(
                f"{name} is for local runs: with --stack, the stack's own settings apply"
            )
    if args.outputs is not None and args.discover is not None:
        raise ConfigError("give --outputs FILE or --discover REGION, not both")
    return OnStack(args.stack, Source(args.outputs, args.discover), access, args.release)


def run_on(
    where: OnStack, args: list[str], json: bool, *, changes: bool, timeout: float | None = None
) -> Any:
    """`adpulse ARGS --json` on the stack's first app host (`deploy.remote_admin`); its parsed
    output. Says on stderr where it runs unless `json`."""
    from deploy.remote_admin import ADMIN_TIMEOUT_S, run_on_stack

    result = run_on_stack(
        where.stack,
        where.source,
        where.access,
        args,
        release=where.release,
        changes=changes,
        timeout=timeout or ADMIN_TIMEOUT_S,
        say=None if json else lambda line: typer.echo(line, err=True),
    )
    return result.output
