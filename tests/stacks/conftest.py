"""Run the Pulumi program once per session against mocks: no AWS account, no Pulumi CLI.

The mocks install before the program is imported (Pulumi reads the runtime settings when a
resource is constructed), answer the few lookups the program makes, and record every resource
so tests can sweep all of them, not only the ones a component exposes.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar, cast

import pulumi
import pytest
from pulumi.runtime.stack import wait_for_rpcs
from pulumi.runtime.sync_await import _sync_await

REGION = "us-east-1"
AZS = ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d"]
ACCOUNT = "123456789012"

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
    "adpulse:enableVpcEndpoints": "true",
    "adpulse:clickhouseVolumeSizeGb": "800",
    "adpulse:clickhouseVolumeIops": "8000",
    "adpulse:clickhouseVolumeThroughput": "400",
    **SECRETS,
}


@dataclass
class Recorded:
    type: str
    name: str
    inputs: dict[str, Any]
    id: str


class Mocks(pulumi.runtime.Mocks):
    """Echo inputs back with the computed outputs AWS would add; answer the lookups we make."""

    def __init__(self) -> None:
        self.resources: list[Recorded] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._az_of_subnet: dict[str, str] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        kind = args.typ.split(":")[-1].lower()
        rid = f"{args.name}-{kind}-id"
        out: dict[str, Any] = {
            **args.inputs,
            "arn": f"arn:aws:{args.typ.split(':')[1].split('/')[0]}:{REGION}:{ACCOUNT}:{rid}",
            "name": args.inputs.get("name", f"{args.name}-abc123"),
        }
        extra: dict[str, dict[str, Any]] = {
            "aws:ec2/subnet:Subnet": {},
            "aws:ec2/instance:Instance": {
                "privateIp": f"10.0.{len(self.resources) % 250}.10",
                "privateDns": f"ip-10-0-0-{len(self.resources)}.ec2.internal",
                "availabilityZone": self._az_of_subnet.get(args.inputs.get("subnetId", ""), ""),
            },
            "aws:msk/cluster:Cluster": {
                "clusterName": args.inputs.get("clusterName", f"{args.name}-abc123"),
                "bootstrapBrokersTls": ",".join(
                    f"b-{i}.adpulse.abc123.c2.kafka.{REGION}.amazonaws.com:9094" for i in (1, 2, 3)
                ),
            },
            "aws:msk/configuration:Configuration": {"latestRevision": 1},
            "aws:elasticache/replicationGroup:ReplicationGroup": {
                "primaryEndpointAddress": f"master.{args.name}.abc123.use1.cache.amazonaws.com",
                "memberClusters": [f"{args.name}-002", f"{args.name}-001"],
            },
            "aws:rds/instance:Instance": {
                "address": f"{args.name}.abc123.{REGION}.rds.amazonaws.com",
                "identifier": f"{args.name}-abc123",
                "masterUserSecrets": [
                    {
                        "secretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:rds!db-1",
                        "secretStatus": "active",
                    }
                ],
            },
            "aws:lb/loadBalancer:LoadBalancer": {
                "dnsName": f"{args.name}-123.{REGION}.elb.amazonaws.com",
                "arnSuffix": f"app/{args.name}/abc123",
            },
            "aws:lb/targetGroup:TargetGroup": {"arnSuffix": f"targetgroup/{args.name}/abc"},
            "aws:route53/zone:Zone": {"zoneId": "Z0123456789ABC"},
            "aws:route53/record:Record": {"fqdn": f"{args.inputs.get('name')}.adpulse.internal"},
        }
        out.update(extra.get(args.typ, {}))
        if args.typ == "aws:ec2/subnet:Subnet":
            self._az_of_subnet[rid] = args.inputs.get("availabilityZone", "")
        self.resources.append(Recorded(args.typ, args.name, dict(args.inputs), rid))
        return rid, out

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        self.calls.append((args.token, dict(args.args)))
        answers: dict[str, dict[str, Any]] = {
            "aws:ec2/getAmi:getAmi": {"id": "ami-0abc1234def567890", "architecture": "arm64"},
            "aws:index/getAvailabilityZones:getAvailabilityZones": {
                "names": AZS,
                "zoneIds": ["use1-az1", "use1-az2", "use1-az4", "use1-az6"],
            },
            "aws:index/getRegion:getRegion": {"name": REGION, "region": REGION},
        }
        return answers.get(args.token, {})


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
    pulumi.runtime.set_mocks(MOCKS, project="adpulse", stack="test", preview=False)
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


# How the mock monitor hands over an input that is marked secret (encrypted in the state).
SECRET_SIG = ("4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270")


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
