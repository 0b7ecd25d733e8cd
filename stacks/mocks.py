"""Pulumi mocks for the stack program: no AWS account, no Pulumi CLI.

Shared by the tests (tests/stacks/conftest.py) and `adpulse stack check` (stacks/inventory.py),
so both see the program the same way. The mocks echo inputs back with the computed outputs AWS
would add, answer the few lookups the program makes, and record every resource.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockMonitor

REGION = "us-east-1"
AZS = ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d"]
ACCOUNT = "123456789012"
# Every zone DescribeAvailabilityZones knows, with the attributes its filters match: the regular
# AZs, and an opted-in Local Zone that sorts before them (a program that forgets to filter it
# out would put a replica there).
ZONES = [
    *({"name": az, "zone-type": "availability-zone", "opt-in-status": "opt-in-not-required"}
      for az in AZS),
    {"name": "us-east-1-bos-1a", "zone-type": "local-zone", "opt-in-status": "opted-in"},
]  # fmt: skip
# AZ IDs as DescribeAvailabilityZones returns them with the names. us-east-1b is use1-az3 here,
# the zone MSK does not support (stacks/zones.py): a program that chose by name alone would put
# a broker there, so every mocked run shows it skipped (the stack uses a, c and d).
ZONE_IDS = dict(zip(AZS, ["use1-az1", "use1-az3", "use1-az4", "use1-az6"], strict=True))
ZONE_IDS["us-east-1-bos-1a"] = "use1-bos1-az1"


def _filters(args: dict[str, Any]) -> dict[str, list[str]]:
    return {f["name"]: list(f["values"]) for f in args.get("filters") or []}


def availability_zones(args: dict[str, Any]) -> dict[str, Any]:
    """DescribeAvailabilityZones: the zones matching every filter given (all are available)."""
    wanted = _filters(args)
    names = [
        zone["name"]
        for zone in ZONES
        if all(zone.get(key) in values for key, values in wanted.items())
    ]
    return {"names": names, "zoneIds": [ZONE_IDS[name] for name in names]}


def instance_type_offerings(args: dict[str, Any]) -> dict[str, Any]:
    """DescribeInstanceTypeOfferings: every asked type offered in every asked regular AZ, which
    the answer names as asked: by AZ name, or by AZ ID for `availability-zone-id`."""
    wanted = _filters(args)
    by_id = args.get("locationType") == "availability-zone-id"
    known = [ZONE_IDS[az] for az in AZS] if by_id else AZS
    zones = [z for z in wanted.get("location", known) if z in known]
    pairs = [(t, z) for t in wanted.get("instance-type", []) for z in zones]
    return {
        "instanceTypes": [t for t, _ in pairs],
        "locations": [z for _, z in pairs],
        "locationTypes": [args.get("locationType") or "region"] * len(pairs),
        "id": REGION,
    }


# How the mock monitor hands over an input that is marked secret (encrypted in the state).
SECRET_SIG = ("4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270")


def is_secret_marked(value: Any) -> bool:
    """Whether an input arrived marked secret (Pulumi encrypts it in the state)."""
    return isinstance(value, dict) and value.get(SECRET_SIG[0]) == SECRET_SIG[1]


def unwrap(value: Any) -> Any:
    """The input with every secret mark removed, for reading its settings."""
    if is_secret_marked(value):
        return unwrap(value["value"])
    if isinstance(value, dict):
        return {key: unwrap(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap(item) for item in value]
    return value


def _pem(kind: str, name: str) -> str:
    body = f"MOCK{name}".replace("-", "0")
    return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----\n"


@dataclass
class Recorded:
    type: str
    name: str
    inputs: dict[str, Any]
    id: str
    # What the mocks answered: the inputs plus the computed attributes (arn, name, endpoints).
    outputs: dict[str, Any] = field(default_factory=dict)
    provider: str = ""  # `<urn>::<id>` of an explicit provider; empty for the default one
    # Lifecycle options Pulumi sent (`protect`, `retainOnDelete`), when the Monitor below
    # recorded them; the plain mock monitor hands the mocks no options at all.
    options: dict[str, bool] = field(default_factory=dict)


class Monitor(MockMonitor):
    """The mock monitor, also telling `Mocks` each resource's lifecycle options, which
    `MockResourceArgs` lacks: `pulumi.runtime.set_mocks(mocks, ..., monitor=Monitor(mocks))`."""

    def RegisterResource(self, request: Any) -> Any:
        if isinstance(self.mocks, Mocks):
            self.mocks.options[(request.type, request.name)] = {
                flag: bool(getattr(request, flag))
                for flag in ("protect", "retainOnDelete")
                if request.HasField(flag)
            }
        return super().RegisterResource(request)  # type: ignore[no-untyped-call]


class Mocks(pulumi.runtime.Mocks):
    """Echo inputs back with the computed outputs AWS would add; answer the lookups we make."""

    def __init__(self) -> None:
        self.resources: list[Recorded] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._az_of_subnet: dict[str, str] = {}
        # (type, name) -> lifecycle options, filled by Monitor before each new_resource.
        self.options: dict[tuple[str, str], dict[str, bool]] = {}

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
                "bootstrapBrokersSaslScram": ",".join(
                    f"b-{i}.adpulse.abc123.c2.kafka.{REGION}.amazonaws.com:9096" for i in (1, 2, 3)
                ),
            },
            "aws:msk/configuration:Configuration": {"latestRevision": 1},
            # As long as asked, letters and digits, different per resource and stable per run.
            "random:index/randomPassword:RandomPassword": {
                "result": (f"Mock{args.name}" * 64).replace("-", "0")[
                    : int(args.inputs.get("length", 32))
                ]
            },
            "random:index/randomId:RandomId": {
                "hex": hashlib.sha256(args.name.encode()).hexdigest()[
                    : 2 * int(args.inputs.get("byteLength", 4))
                ]
            },
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
            # pulumi-tls: PEM-shaped stand-ins, distinct per resource (stacks/tls.py).
            "tls:index/privateKey:PrivateKey": {"privateKeyPem": _pem("PRIVATE KEY", args.name)},
            "tls:index/certRequest:CertRequest": {
                "certRequestPem": _pem("CERTIFICATE REQUEST", args.name)
            },
            "tls:index/selfSignedCert:SelfSignedCert": {"certPem": _pem("CERTIFICATE", args.name)},
            "tls:index/locallySignedCert:LocallySignedCert": {
                "certPem": _pem("CERTIFICATE", args.name)
            },
            "aws:route53/zone:Zone": {"zoneId": "Z0123456789ABC"},
            "aws:route53/record:Record": {"fqdn": f"{args.inputs.get('name')}.adpulse.internal"},
        }
        out.update(extra.get(args.typ, {}))
        if args.typ == "aws:ec2/subnet:Subnet":
            self._az_of_subnet[rid] = args.inputs.get("availabilityZone", "")
        recorded = Recorded(
            args.typ,
            args.name,
            dict(args.inputs),
            rid,
            dict(out),
            args.provider or "",
            self.options.pop((args.typ, args.name), {}),
        )
        self.resources.append(recorded)
        return rid, out

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        self.calls.append((args.token, dict(args.args)))
        answers: dict[str, dict[str, Any]] = {
            "aws:ec2/getAmi:getAmi": {"id": "ami-0abc1234def567890", "architecture": "arm64"},
            "aws:index/getRegion:getRegion": {"name": REGION, "region": REGION},
            "aws:index/getCallerIdentity:getCallerIdentity": {
                "accountId": ACCOUNT,
                "arn": f"arn:aws:iam::{ACCOUNT}:user/mock",
                "userId": "AIDAMOCKUSER",
                "id": ACCOUNT,
            },
            "aws:index/getPartition:getPartition": {
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
                "reverseDnsPrefix": "com.amazonaws",
                "id": "aws",
            },
        }
        # Lookups whose answer depends on what was asked.
        computed = {
            "aws:index/getAvailabilityZones:getAvailabilityZones": availability_zones,
            "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings": instance_type_offerings,
        }
        if args.token in computed:
            return computed[args.token](dict(args.args))
        return answers.get(args.token, {})
