"""Run the Pulumi program once per session against mocks: no AWS account, no Pulumi CLI.

The mocks install before the program is imported (Pulumi reads the runtime settings when a
resource is constructed), answer the few lookups the program makes, and record every resource
so tests can sweep all of them, not only the ones a component exposes.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from types import ModuleType
from typing import Any, TypeVar, cast

import pulumi
import pytest
from pulumi.runtime.stack import wait_for_rpcs
from pulumi.runtime.sync_await import _sync_await

# The mocks live in stacks/ so `adpulse stack check` runs the program exactly as these tests do.
from stacks.inventory import (
    Inventory,
    StackFile,
    collect,
    collect_with_config,
    read_stack_file,
)
from stacks.mocks import REGION, SECRET_SIG, Monitor
from stacks.mocks import Mocks as Mocks  # re-exported for the tests
from stacks.mocks import Recorded as Recorded

# Long, random-looking values, so a leak into any output or input is unambiguous.
SECRETS = {
    "adpulse:clickhouseAdminPassword": "adm-Q3v8Zr6tW1yHx5",
    "adpulse:clickhouseIngestPassword": "ing-K9p2Lm4Nb7Vc1X",
    "adpulse:clickhouseApiPassword": "api-R5t8Yu2Io4Pa6S",
    "adpulse:clickhouseClusterSecret": "cls-D3f6Gh9Jk2Lz5Xc8",
    "adpulse:redisAuthToken": "rds-Tok3nW1thS1xteen",
}
CONFIG = {
    "aws:region": REGION,
    "adpulse:alarmEmail": "oncall@example.com",
    "adpulse:egress": "nat",
    "adpulse:clickhouseVolumeSizeGb": "800",
    "adpulse:clickhouseVolumeIops": "8000",
    "adpulse:clickhouseVolumeThroughput": "400",
    **SECRETS,
}


MOCKS = Mocks()


def set_config(config: dict[str, str], secret_keys: list[str]) -> None:
    pulumi.runtime.set_all_config(config, secret_keys)


# Pulumi's Outputs live on the thread's current event loop. Suites that ran before this one
# (asyncio.run in the API tests) leave none set, so this folder brings its own.
_LOOP = asyncio.new_event_loop()


@pytest.fixture(autouse=True)
def _pulumi_event_loop() -> None:
    asyncio.set_event_loop(_LOOP)


@pytest.fixture(scope="session")
def program() -> Iterator[ModuleType]:
    """The stack program, run once with mocks; pulumi_aws takes seconds to import."""
    asyncio.set_event_loop(_LOOP)
    # Monitor also records each resource's lifecycle options (retain_on_delete, protect).
    pulumi.runtime.set_mocks(
        MOCKS, project="adpulse", stack="test", preview=False, monitor=Monitor(MOCKS)
    )
    set_config(CONFIG, list(SECRETS))
    module = importlib.import_module("stacks.__main__")
    # Let every registration reach the mocks, so sweeps over MOCKS.resources see them all.
    _sync_await(wait_for_rpcs())
    yield module


@pytest.fixture(scope="session")
def mocks(program: ModuleType) -> Mocks:
    return MOCKS


@pytest.fixture(scope="session")
def outputs(program: ModuleType) -> dict[str, Any]:
    """The stack's exports as Outputs (or plain values), by name."""
    root = pulumi.runtime.settings.get_root_resource()
    assert root is not None
    return dict(root.outputs)  # type: ignore[attr-defined]


def secret_value(value: Any) -> Any:
    """The plain value of a secret-marked input; fails if the input is not marked secret."""
    assert isinstance(value, dict) and value.get(SECRET_SIG[0]) == SECRET_SIG[1], (
        f"expected a secret-marked value, got {value!r}"
    )
    return value["value"]


F = TypeVar("F", bound=Callable[..., Any])


def pulumi_test(fn: F) -> F:
    """`pulumi.runtime.test`, typed: run the test and wait for the Output it returns."""
    return cast(F, pulumi.runtime.test(fn))  # type: ignore[no-untyped-call]


def of_type(mocks: Mocks, typ: str) -> list[Recorded]:
    return [r for r in mocks.resources if r.type == typ]


def run_program(
    config: Mapping[str, str], secret_keys: Sequence[str] = (), stack: str = "test"
) -> Inventory:
    """The program run under mocks with exactly this config (full keys, e.g. `adpulse:egress`),
    in a child process: Pulumi keeps one runtime per process, and the session's is taken."""
    return collect_with_config(stack, StackFile(dict(config), tuple(secret_keys), ()))


# What step 4 of stacks/README.md has the operator set on a prod stack: the one account-specific
# value the committed file cannot hold.
OPERATOR_CERTIFICATE = (
    "arn:aws:acm:us-east-1:123456789012:certificate/8f1c2d3e-aaaa-4bbb-8ccc-0123456789ab"
)


@pytest.fixture(scope="session")
def committed_prod_inventory() -> Inventory:
    """The program with the committed Pulumi.prod.yaml alone, as stack `prod`."""
    return collect("prod")


@pytest.fixture(scope="session")
def prod_inventory() -> Inventory:
    """The prod stack as an operator runs it: the committed Pulumi.prod.yaml plus the
    certificate README step 4 sets (`pulumi config set adpulse:certificateArn ...`)."""
    committed = read_stack_file("prod")
    config = {**committed.config, "adpulse:certificateArn": OPERATOR_CERTIFICATE}
    return collect_with_config("prod", replace(committed, config=config))


@pytest.fixture(scope="session")
def dev_inventory() -> Inventory:
    """The program with the committed Pulumi.dev.yaml, as stack `dev`."""
    return collect("dev")


@pytest.fixture(scope="session")
def two_by_two_inventory() -> Inventory:
    """The test config with a 2-shard x 2-replica ClickHouse topology (four nodes)."""
    return run_program({**CONFIG, "adpulse:clickhouseTopology": "2x2"}, list(SECRETS))
