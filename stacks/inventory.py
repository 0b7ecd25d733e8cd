"""The stack's resource inventory: the program run under mocks with a stack's config.

`collect(stack)` reads `Pulumi.<stack>.yaml` at the project root and runs the program in a child
process (`python -m stacks.inventory`), because Pulumi keeps its runtime (the mock monitor, the
root stack, the config) in module globals: a second run in one process would see the first.
Secrets in the file are `secure:` ciphertexts only the Pulumi CLI can decrypt, so each one is
replaced by a fake placeholder and the inventory says so.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from adpulse.errors import AdpulseError
from stacks.mocks import is_secret_marked, unwrap

PROJECT = "adpulse"
ROOT = Path(__file__).resolve().parents[1]
# Secret-marked strings shorter than this (flags, ports) are not searched for as leaks.
_MIN_SECRET_LEN = 8


class InventoryError(AdpulseError):
    """The stack file is missing or the program failed under mocks; the message says why."""


@dataclass(frozen=True)
class Resource:
    """One resource as the program declared it: its inputs, and what the mocks computed."""

    type: str
    name: str
    id: str
    inputs: dict[str, Any]  # as recorded: secret values keep Pulumi's secret mark
    outputs: dict[str, Any] = field(default_factory=dict)
    taggable: bool = False  # the provider's resource takes `tags`
    provider: str = ""  # `<urn>::<id>` of an explicit provider; empty for the default one

    @property
    def settings(self) -> dict[str, Any]:
        """The inputs with secret marks removed."""
        return dict(unwrap(self.inputs))

    @property
    def is_component(self) -> bool:
        """A Pulumi component (adpulse:...): a grouping, nothing in the cloud."""
        return self.type.split(":")[0] == PROJECT


@dataclass(frozen=True)
class Export:
    name: str
    value: Any
    secret: bool  # a Pulumi secret: encrypted in the state, masked by `pulumi stack output`


@dataclass(frozen=True)
class Inventory:
    """Everything `stack check` judges; a plain value, so a fault is a pure transformation."""

    stack: str
    resources: tuple[Resource, ...]
    exports: tuple[Export, ...] = ()
    config: dict[str, str] = field(default_factory=dict)  # plain config; secrets left out
    secret_values: tuple[str, ...] = ()  # every value the program holds as a secret
    notes: tuple[str, ...] = ()  # placeholders used, program warnings

    def of_type(self, typ: str) -> list[Resource]:
        return [r for r in self.resources if r.type == typ]

    @property
    def cloud_resources(self) -> list[Resource]:
        return [r for r in self.resources if not r.is_component]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Inventory:
        return cls(
            stack=data["stack"],
            resources=tuple(Resource(**r) for r in data["resources"]),
            exports=tuple(Export(**e) for e in data["exports"]),
            config=dict(data["config"]),
            secret_values=tuple(data["secret_values"]),
            notes=tuple(data["notes"]),
        )


@dataclass(frozen=True)
class StackFile:
    """A stack's config as the program would get it, with placeholders for `secure:` values."""

    config: dict[str, str]
    secret_keys: tuple[str, ...]
    placeholders: tuple[str, ...]  # secret keys whose value is a fake placeholder


def placeholder(key: str) -> str:
    """A fake secret, long and plain enough to pass the config checks, and obviously fake."""
    return f"stack-check-fake-{hashlib.sha256(key.encode()).hexdigest()[:24]}"


def _full_key(key: str) -> str:
    return key if ":" in key else f"{PROJECT}:{key}"


def read_stack_file(stack: str, config_dir: Path = ROOT) -> StackFile:
    """Read `Pulumi.<stack>.yaml` into the flat key -> string config Pulumi hands a program."""
    import yaml

    path = config_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise InventoryError(
            f"no stack file {path}: create it with `pulumi stack init {stack}` and "
            f"`pulumi config set` (stacks/README.md); Pulumi.dev.yaml and Pulumi.prod.yaml "
            "are the committed examples"
        )
    data = yaml.safe_load(path.read_text()) or {}
    raw = data.get("config") or {}
    if not isinstance(raw, dict):
        raise InventoryError(f"{path}: `config` must be a mapping of keys to values")
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    placeholders: list[str] = []
    for key, value in raw.items():
        full = _full_key(str(key))
        if isinstance(value, dict) and set(value) == {"secure"}:
            config[full] = placeholder(full)
            secret_keys.append(full)
            placeholders.append(full)
        elif isinstance(value, str):
            config[full] = value
        elif isinstance(value, bool):
            config[full] = "true" if value else "false"
        elif isinstance(value, int | float):
            config[full] = str(value)
        else:  # structured values reach the program as JSON, as Pulumi passes them
            config[full] = json.dumps(value)
    return StackFile(config, tuple(secret_keys), tuple(placeholders))


def collect(stack: str, config_dir: Path = ROOT) -> Inventory:
    """Run the program with `config_dir/Pulumi.<stack>.yaml` under mocks in a child process."""
    return collect_with_config(stack, read_stack_file(stack, config_dir))


def collect_with_config(stack: str, stack_file: StackFile) -> Inventory:
    """Run the program with this config under mocks in a child process."""
    with tempfile.TemporaryDirectory(prefix="adpulse-inventory-") as tmp:
        request = Path(tmp) / "config.json"
        result = Path(tmp) / "inventory.json"
        request.write_text(json.dumps(asdict(stack_file)))
        done = subprocess.run(
            [sys.executable, "-m", "stacks.inventory", stack, str(request), str(result)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0 or not result.exists():
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            last = lines[-1] if lines else f"exit code {done.returncode}"
            raise InventoryError(
                f"the stack program failed under mocks: {last.removeprefix('error: ')}"
            )
        inventory = Inventory.from_json(json.loads(result.read_text()))
    notes = list(inventory.notes)
    if stack_file.placeholders:
        notes.insert(
            0,
            f"{len(stack_file.placeholders)} secure: value(s) replaced by fake placeholders "
            f"(the mocks cannot decrypt them): {', '.join(stack_file.placeholders)}",
        )
    return replace(inventory, notes=tuple(notes))


def secret_strings(value: Any) -> Iterator[str]:
    """The strings of a secret value, and of the JSON document it may hold."""
    if isinstance(value, str):
        if len(value) >= _MIN_SECRET_LEN:
            yield value
        try:
            parsed = json.loads(value)
        except ValueError:
            return
        if isinstance(parsed, dict | list):
            yield from secret_strings(parsed)
    elif isinstance(value, dict):
        for item in value.values():
            yield from secret_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from secret_strings(item)


def marked_secrets(value: Any) -> Iterator[str]:
    """The strings under every secret mark in an input."""
    if is_secret_marked(value):
        yield from secret_strings(unwrap(value))
    elif isinstance(value, dict):
        for item in value.values():
            yield from marked_secrets(item)
    elif isinstance(value, list):
        for item in value:
            yield from marked_secrets(item)


def _is_taggable(typ: str) -> bool:
    """Whether the provider SDK's resource class accepts `tags`."""
    import importlib
    import inspect

    provider, _, rest = typ.partition(":")
    module, _, cls_name = rest.partition(":")
    package = f"pulumi_{provider}"
    section = module.split("/")[0]
    try:
        mod = importlib.import_module(package if section == "index" else f"{package}.{section}")
    except ImportError:
        return False
    cls = getattr(mod, cls_name, None)
    init = getattr(cls, "_internal_init", None)
    return init is not None and "tags" in inspect.signature(init).parameters


def _run(stack: str, stack_file: StackFile) -> Inventory:
    """Run the program in this process; it must be a fresh one (see the module docstring)."""
    import asyncio
    import runpy

    import pulumi
    from pulumi.runtime.stack import wait_for_rpcs
    from pulumi.runtime.sync_await import _sync_await

    from stacks.mocks import Mocks

    asyncio.set_event_loop(asyncio.new_event_loop())
    mocks = Mocks()
    # The program's pulumi.log warnings (e.g. "no certificate: plain HTTP") become notes.
    warnings = _Collector(logging.WARNING)
    logger = logging.getLogger("adpulse.stack-check.program")
    logger.propagate = False
    logger.addHandler(warnings)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, logger=logger)
    pulumi.runtime.set_all_config(stack_file.config, list(stack_file.secret_keys))
    runpy.run_path(str(ROOT / "stacks"), run_name="__main__")
    _sync_await(wait_for_rpcs())
    root = pulumi.runtime.settings.get_root_resource()
    exports = []
    for name, value in dict(getattr(root, "outputs", {})).items():
        output = pulumi.Output.from_input(value)
        resolved = _sync_await(output.future())
        exports.append(Export(name, resolved, bool(_sync_await(output.is_secret()))))
    resources = tuple(
        Resource(r.type, r.name, r.id, r.inputs, r.outputs, _is_taggable(r.type), r.provider)
        for r in mocks.resources
    )
    secrets = {stack_file.config[key] for key in stack_file.secret_keys}
    for resource in resources:
        for value in resource.inputs.values():
            secrets.update(marked_secrets(value))
    plain = {k: v for k, v in stack_file.config.items() if k not in stack_file.secret_keys}
    notes = tuple(f"program warning: {message}" for message in warnings.messages)
    return Inventory(stack, resources, tuple(exports), plain, tuple(sorted(secrets)), notes)


class _Collector(logging.Handler):
    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def main(argv: list[str] | None = None) -> int:
    """`python -m stacks.inventory STACK CONFIG_JSON OUT_JSON`: the child side of collect()."""
    import pulumi

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("stack")
    parser.add_argument("config", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    raw = json.loads(args.config.read_text())
    stack_file = StackFile(
        dict(raw["config"]), tuple(raw["secret_keys"]), tuple(raw["placeholders"])
    )
    try:
        inventory = _run(args.stack, stack_file)
    except (pulumi.RunError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.write_text(json.dumps(inventory.to_json(), default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
