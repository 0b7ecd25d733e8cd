"""Every policy both ways: the prod stack passes it, and the same inventory with one fault that
the policy exists to catch is reported by that policy and by no other.

A fault is a pure transformation of the recorded prod inventory (one setting changed, one
resource dropped), so each test says exactly what the policy guards against.
"""

from __future__ import annotations

import base64
import copy
import gzip
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
import yaml

from stacks.inventory import Export, Inventory, Resource
from stacks.mocks import SECRET_SIG, unwrap
from stacks.policy import POLICIES, Policy, judge
from stacks.policy.buckets import ACCESS_BLOCK, BUCKETS, ENCRYPTION, LIFECYCLE, VERSIONING

INSTANCE = "aws:ec2/instance:Instance"
MSK = "aws:msk/cluster:Cluster"
REDIS = "aws:elasticache/replicationGroup:ReplicationGroup"
RDS = "aws:rds/instance:Instance"
ALB = "aws:lb/loadBalancer:LoadBalancer"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"

Edit = Callable[[dict[str, Any]], None]


def _target(
    inventory: Inventory, types: tuple[str, ...], pick: Callable[[Resource], bool]
) -> Resource:
    found = [r for r in inventory.resources if r.type in types and pick(r)]
    assert found, f"the prod inventory has no {' or '.join(types)} to inject the fault into"
    return found[0]


def change(
    types: str | tuple[str, ...],
    edit: Edit,
    pick: Callable[[Resource], bool] = lambda r: True,
    reported: Callable[[Inventory], str] | None = None,
) -> Callable[[Inventory], tuple[Inventory, str]]:
    """A fault: `edit` the inputs of the first resource of `types` that `pick` accepts. The
    finding names that resource, or what `reported` says (a bucket, for its settings)."""
    kinds = (types,) if isinstance(types, str) else types

    def fault(inventory: Inventory) -> tuple[Inventory, str]:
        target = _target(inventory, kinds, pick)
        inputs = copy.deepcopy(target.inputs)
        edit(inputs)
        changed = replace(target, inputs=inputs)
        resources = tuple(changed if r is target else r for r in inventory.resources)
        culprit = reported(inventory) if reported else target.name
        return replace(inventory, resources=resources), culprit

    return fault


def drop(
    types: str | tuple[str, ...], culprit: Callable[[Inventory], str]
) -> Callable[[Inventory], tuple[Inventory, str]]:
    """A fault: every resource of `types` is gone; `culprit` names what gets reported."""
    kinds = (types,) if isinstance(types, str) else types

    def fault(inventory: Inventory) -> tuple[Inventory, str]:
        assert any(r.type in kinds for r in inventory.resources), f"no {kinds} to drop"
        name = culprit(inventory)
        kept = tuple(r for r in inventory.resources if r.type not in kinds)
        return replace(inventory, resources=kept), name

    return fault


def setting(path: str, value: Any) -> Edit:
    """Set a dotted path of the inputs (creating blocks on the way); None removes it."""

    def edit(inputs: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = inputs
        for key in parents:
            node = node.setdefault(key, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value

    return edit


def _first_of(*types: str) -> Callable[[Inventory], str]:
    return lambda inventory: next(r.name for r in inventory.resources if r.type in types)


def _password(inventory: Inventory) -> str:
    return next(s for s in inventory.secret_values if s.isalnum())


def _leak_output(inventory: Inventory) -> tuple[Inventory, str]:
    """The ClickHouse URL exported with a password in it, as a plain output."""
    secret = _password(inventory)
    exports = tuple(
        replace(e, value=str(e.value).replace("://ingest@", f"://ingest:{secret}@"), secret=False)
        if e.name == "clickhouse_url"
        else e
        for e in inventory.exports
    )
    assert exports != inventory.exports, "no clickhouse_url output to leak into"
    return replace(inventory, exports=exports), "output clickhouse_url"


def _gzipped(text: str) -> str:
    """User data as the ClickHouse nodes give it to EC2: gzipped, then base64."""
    return base64.b64encode(gzip.compress(text.encode())).decode()


def _document(inputs: dict[str, Any]) -> str:
    """The #cloud-config a node's cloud-init reads from its `userDataBase64`."""
    return gzip.decompress(base64.b64decode(unwrap(inputs["userDataBase64"]))).decode()


def _node_user_data(edit_document: Callable[[str], str]) -> Edit:
    """An edit of a ClickHouse node's decompressed user data, gzipped again. Built with
    `Output.all` over a password, the user data arrives marked secret, as Pulumi marks it, yet
    the instance serves it in clear."""

    def edit(inputs: dict[str, Any]) -> None:
        text = edit_document(_document(inputs))
        inputs["userDataBase64"] = {SECRET_SIG[0]: SECRET_SIG[1], "value": _gzipped(text)}

    return edit


def _is_node(resource: Resource) -> bool:
    return "userDataBase64" in resource.inputs


def _leak_user_data(inventory: Inventory) -> tuple[Inventory, str]:
    """A password written into a node's user data, which reaches EC2 gzipped."""
    secret = _password(inventory)
    edit = _node_user_data(lambda text: f"{text}\nexport PW={secret}\n")
    return change(INSTANCE, edit, _is_node)(inventory)


def _master_login(inventory: Inventory) -> tuple[Inventory, str]:
    """The services' Postgres URL pointed at the RDS master user, as before adpulse_app."""
    (rds,) = inventory.of_type(RDS)
    master = rds.settings["username"]
    exports = tuple(
        replace(e, value=re.sub(r"//[^@]+@", f"//{master}@", str(e.value)))
        if e.name == "postgres_url"
        else e
        for e in inventory.exports
    )
    assert exports != inventory.exports, "no postgres_url output to point at the master user"
    return replace(inventory, exports=exports), "output postgres_url"


def _untagged(inventory: Inventory) -> tuple[Inventory, str]:
    def edit(inputs: dict[str, Any]) -> None:
        tags = dict(unwrap(inputs["tags"]))
        del tags["Project"]
        inputs["tags"] = tags

    return change("aws:ebs/volume:Volume", edit)(inventory)


def _open_ssh(inputs: dict[str, Any]) -> None:
    inputs.pop("referencedSecurityGroupId", None)
    inputs.update(cidrIpv4="0.0.0.0/0", fromPort=22, toPort=22, ipProtocol="tcp")


def _aes256(inputs: dict[str, Any]) -> None:
    for rule in inputs["rules"]:
        rule["applyServerSideEncryptionByDefault"] = {"sseAlgorithm": "AES256"}


FAULTS: dict[str, Callable[[Inventory], tuple[Inventory, str]]] = {
    "ec2-imdsv2": change(INSTANCE, setting("metadataOptions.httpTokens", "optional")),
    "ec2-volumes-encrypted": change(INSTANCE, setting("rootBlockDevice.encrypted", False)),
    "ebs-encrypted": change("aws:ebs/volume:Volume", setting("encrypted", False)),
    "ec2-no-public-ip": change(INSTANCE, setting("associatePublicIpAddress", True)),
    # A public subnet: the ALB's, where no instance lives.
    "subnet-no-auto-public-ip": change(
        "aws:ec2/subnet:Subnet",
        setting("mapPublicIpOnLaunch", True),
        lambda r: "public" in r.name,
    ),
    "ec2-instance-profile": change(INSTANCE, setting("iamInstanceProfile", None)),
    "ec2-ebs-optimized": change(INSTANCE, setting("ebsOptimized", False)),
    "sg-no-internet-ingress": change(
        INGRESS, _open_ssh, lambda r: bool(r.settings.get("referencedSecurityGroupId"))
    ),
    "vpc-flow-logs": drop("aws:ec2/flowLog:FlowLog", _first_of("aws:ec2/vpc:Vpc")),
    "alb-drop-invalid-headers": change(ALB, setting("dropInvalidHeaderFields", False)),
    "alb-deletion-protection": change(ALB, setting("enableDeletionProtection", False)),
    # TLS 1.0 and 1.1 allowed again.
    "alb-https": change(
        "aws:lb/listener:Listener",
        setting("sslPolicy", "ELBSecurityPolicy-2016-08"),
        lambda r: r.settings.get("protocol") == "HTTPS",
    ),
    "msk-encryption-in-transit": change(
        MSK, setting("encryptionInfo.encryptionInTransit.clientBroker", "TLS_PLAINTEXT")
    ),
    "msk-encryption-at-rest": change(
        MSK, setting("encryptionInfo.encryptionAtRestKmsKeyArn", None)
    ),
    "msk-logging": change(MSK, setting("loggingInfo.brokerLogs.cloudwatchLogs.enabled", False)),
    "msk-client-auth": change(MSK, setting("clientAuthentication", {"unauthenticated": True})),
    "msk-private": change(
        MSK,
        setting("brokerNodeGroupInfo.connectivityInfo.publicAccess.type", "SERVICE_PROVIDED_EIPS"),
    ),
    "redis-encryption-at-rest": change(REDIS, setting("atRestEncryptionEnabled", False)),
    "redis-encryption-in-transit": change(REDIS, setting("transitEncryptionEnabled", False)),
    "redis-auth-token": change(REDIS, setting("authToken", None)),
    "redis-snapshots": change(REDIS, setting("snapshotRetentionLimit", 1)),
    "redis-multi-az": change(REDIS, setting("multiAzEnabled", False)),
    "rds-encrypted": change(RDS, setting("storageEncrypted", False)),
    "rds-private": change(RDS, setting("publiclyAccessible", True)),
    "rds-multi-az": change(RDS, setting("multiAz", False)),
    "rds-deletion-protection": change(RDS, setting("deletionProtection", False)),
    "rds-backups": change(RDS, setting("backupRetentionPeriod", 0)),
    "rds-iam-auth": change(RDS, setting("iamDatabaseAuthenticationEnabled", False)),
    "rds-services-not-master": _master_login,
    "s3-backups-bucket": drop(BUCKETS, lambda _: "(stack)"),
    "s3-public-access-block": change(
        ACCESS_BLOCK, setting("blockPublicPolicy", False), reported=_first_of(*BUCKETS)
    ),
    "s3-encryption": change(ENCRYPTION, _aes256, reported=_first_of(*BUCKETS)),
    "s3-versioning": change(
        VERSIONING,
        setting("versioningConfiguration.status", "Suspended"),
        reported=_first_of(*BUCKETS),
    ),
    "s3-lifecycle": drop(LIFECYCLE, _first_of(*BUCKETS)),
    "kms-rotation": change("aws:kms/key:Key", setting("enableKeyRotation", False)),
    "secrets-kms": change("aws:secretsmanager/secret:Secret", setting("kmsKeyId", None)),
    "outputs-no-plain-secret": _leak_output,
    "inputs-no-plain-secret": _leak_user_data,
    "tags-everywhere": _untagged,
}


CASES = [pytest.param(p, id=p.id) for p in POLICIES]


def _failing(inventory: Inventory) -> dict[str, set[str]]:
    return {
        v.policy.id: {f.resource for f in v.findings}
        for v in judge(inventory)
        if v.status == "fail"
    }


def test_at_least_25_policies_each_with_a_fault() -> None:
    ids = [p.id for p in POLICIES]
    assert len(ids) >= 25
    assert len(set(ids)) == len(ids)
    assert set(FAULTS) == set(ids), "every policy needs a fault here, and every fault a policy"


@pytest.mark.parametrize("policy", CASES)
def test_prod_passes(policy: Policy, prod_inventory: Inventory) -> None:
    [verdict] = judge(prod_inventory, [policy])
    assert verdict.findings == (), [f"{f.resource}: {f.problem}" for f in verdict.findings]
    if policy.types:
        assert verdict.checked > 0, f"prod has none of {policy.types}: the pass proves nothing"


@pytest.mark.parametrize("policy", CASES)
def test_the_fault_is_reported_by_exactly_this_policy(
    policy: Policy, prod_inventory: Inventory
) -> None:
    recorded = prod_inventory.to_json()
    faulty, culprit = FAULTS[policy.id](prod_inventory)
    assert prod_inventory.to_json() == recorded, "a fault must not edit the recorded inventory"
    before = _failing(prod_inventory)
    after = _failing(faulty)
    new = {pid for pid, names in after.items() if names - before.get(pid, set())}
    assert new == {policy.id}, f"the fault should trip {policy.id} alone, tripped {sorted(new)}"
    assert culprit in after[policy.id], f"{policy.id} should name {culprit}: {after[policy.id]}"


def test_a_secret_only_in_a_plain_output_is_found_by_value() -> None:
    """The output policy searches by value, so a renamed or nested leak is still caught."""
    leak = Export("endpoints", {"primary": {"url": "redis://:tok3n-value-123@host"}}, False)
    masked = Export("endpoints", leak.value, True)
    base = Inventory(stack="t", resources=(), secret_values=("tok3n-value-123",))
    [verdict] = judge(replace(base, exports=(leak,)), [_policy("outputs-no-plain-secret")])
    assert [f.resource for f in verdict.findings] == ["output endpoints"]
    [verdict] = judge(replace(base, exports=(masked,)), [_policy("outputs-no-plain-secret")])
    assert verdict.findings == ()


def test_a_secret_in_an_encoded_file_of_gzipped_user_data_is_found(
    prod_inventory: Inventory,
) -> None:
    """Gzip twice over: a write_files entry (`gz+b64`, which cloud-init decodes as it writes the
    file) inside the user data EC2 gets gzipped. The policy decodes both, as the node does."""
    secret = _password(prod_inventory)
    packed = base64.b64encode(gzip.compress(f"PW={secret}\n".encode())).decode()

    def add_file(text: str) -> str:
        config = yaml.safe_load(text)
        entry = {"path": "/etc/leak.env", "encoding": "gz+b64", "content": packed}
        config["write_files"].append(entry)
        return "#cloud-config\n" + str(yaml.safe_dump(config))

    faulty, culprit = change(INSTANCE, _node_user_data(add_file), _is_node)(prod_inventory)
    assert secret not in _document(next(r.inputs for r in faulty.resources if r.name == culprit))
    [verdict] = judge(faulty, [_policy("inputs-no-plain-secret")])
    assert [(f.resource, f.problem) for f in verdict.findings] == [
        (culprit, "userDataBase64 holds a secret value in plain text")
    ]


def _policy(policy_id: str) -> Policy:
    return next(p for p in POLICIES if p.id == policy_id)


def test_the_committed_prod_file_lacks_only_the_operators_certificate(
    committed_prod_inventory: Inventory,
) -> None:
    """Without the certificate README step 4 sets, the one finding is the plain-HTTP ALB."""
    assert set(_failing(committed_prod_inventory)) == {"alb-https"}


def test_the_master_secret_handed_to_the_services_is_caught(prod_inventory: Inventory) -> None:
    """The other half of rds-services-not-master: the right user, but the master's password."""
    (rds,) = prod_inventory.of_type(RDS)
    master_arn = rds.outputs["masterUserSecrets"][0]["secretArn"]
    exports = tuple(
        replace(e, value=master_arn) if e.name == "postgres_password_secret_arn" else e
        for e in prod_inventory.exports
    )
    assert exports != prod_inventory.exports, "no postgres_password_secret_arn output"
    faulty = replace(prod_inventory, exports=exports)
    [verdict] = judge(faulty, [_policy("rds-services-not-master")])
    assert [f.resource for f in verdict.findings] == ["output postgres_password_secret_arn"]
