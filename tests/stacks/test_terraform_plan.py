"""The inventory as a Terraform plan: types, argument names, references and secrets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stacks.inventory import Inventory, Resource
from stacks.mocks import SECRET_SIG
from stacks.terraform_plan import SENSITIVE, snake, terraform_type, to_plan

# Checked by hand against the Terraform AWS provider's resource names.
TYPES = {
    "aws:ec2/instance:Instance": "aws_instance",
    "aws:ec2/vpc:Vpc": "aws_vpc",
    "aws:ec2/flowLog:FlowLog": "aws_flow_log",
    "aws:ec2/securityGroup:SecurityGroup": "aws_security_group",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": (
        "aws_vpc_security_group_ingress_rule"
    ),
    "aws:ebs/volume:Volume": "aws_ebs_volume",
    "aws:ec2/volumeAttachment:VolumeAttachment": "aws_volume_attachment",
    "aws:lb/loadBalancer:LoadBalancer": "aws_lb",
    "aws:lb/listener:Listener": "aws_lb_listener",
    "aws:rds/instance:Instance": "aws_db_instance",
    "aws:rds/subnetGroup:SubnetGroup": "aws_db_subnet_group",
    "aws:msk/cluster:Cluster": "aws_msk_cluster",
    "aws:msk/scramSecretAssociation:ScramSecretAssociation": "aws_msk_scram_secret_association",
    "aws:elasticache/replicationGroup:ReplicationGroup": "aws_elasticache_replication_group",
    "aws:s3/bucket:Bucket": "aws_s3_bucket",
    "aws:s3/bucketV2:BucketV2": "aws_s3_bucket",
    "aws:s3/bucketVersioningV2:BucketVersioningV2": "aws_s3_bucket_versioning",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": "aws_s3_bucket_public_access_block",
    "aws:kms/key:Key": "aws_kms_key",
    "aws:secretsmanager/secretVersion:SecretVersion": "aws_secretsmanager_secret_version",
    "aws:cloudwatch/metricAlarm:MetricAlarm": "aws_cloudwatch_metric_alarm",
    "random:index/randomPassword:RandomPassword": "random_password",
    "tls:index/locallySignedCert:LocallySignedCert": "tls_locally_signed_cert",
    "adpulse:network:Network": None,
}


@pytest.mark.parametrize(("pulumi_type", "expected"), TYPES.items())
def test_terraform_type(pulumi_type: str, expected: str | None) -> None:
    assert terraform_type(pulumi_type) == expected


def test_snake_case_keeps_digits_with_their_word() -> None:
    assert snake("httpPutResponseHopLimit") == "http_put_response_hop_limit"
    assert snake("cidrIpv4") == "cidr_ipv4"
    assert snake("encryptionAtRestKmsKeyArn") == "encryption_at_rest_kms_key_arn"


def _resource(typ: str, name: str, inputs: dict[str, Any]) -> Resource:
    rid = f"{name}-id"
    return Resource(typ, name, rid, inputs, {**inputs, "arn": f"arn:aws:x:{rid}"})


def _plan(*resources: Resource) -> dict[str, Any]:
    return to_plan(Inventory(stack="t", resources=resources))


def test_blocks_become_terraform_lists_and_plurals_singular() -> None:
    listener = _resource(
        "aws:lb/listener:Listener",
        "web",
        {"port": 443.0, "defaultActions": [{"type": "forward"}], "tags": {"Stack": "t"}},
    )
    host = _resource("aws:ec2/instance:Instance", "h", {"metadataOptions": {"httpTokens": "x"}})
    values = [
        r["values"] for r in _plan(listener, host)["planned_values"]["root_module"]["resources"]
    ]
    assert values[0] == {
        "port": 443,
        "default_action": [{"type": "forward"}],
        "tags": {"Stack": "t"},
    }
    assert values[1] == {"metadata_options": [{"http_tokens": "x"}]}


def test_a_computed_id_is_a_reference_unknown_until_apply() -> None:
    vpc = _resource("aws:ec2/vpc:Vpc", "net", {"cidrBlock": "10.0.0.0/16"})
    log = _resource("aws:ec2/flowLog:FlowLog", "log", {"vpcId": vpc.id, "trafficType": "ALL"})
    plan = _plan(vpc, log)
    [_, planned] = plan["planned_values"]["root_module"]["resources"]
    [_, configured] = plan["configuration"]["root_module"]["resources"]
    [_, change] = plan["resource_changes"]
    assert planned["values"] == {"traffic_type": "ALL"}
    assert configured["expressions"] == {
        "vpc_id": {"references": ["aws_vpc.net.id", "aws_vpc.net"]}
    }
    assert change["change"]["after_unknown"] == {"vpc_id": True}


def test_secret_marked_inputs_are_sensitive_and_absent(prod_inventory: Inventory) -> None:
    marked = {SECRET_SIG[0]: SECRET_SIG[1], "value": "s3cret-value-123"}
    version = _resource(
        "aws:secretsmanager/secretVersion:SecretVersion", "v", {"secretString": marked}
    )
    [planned] = _plan(version)["planned_values"]["root_module"]["resources"]
    assert planned["values"] == {"secret_string": SENSITIVE}
    assert planned["sensitive_values"] == {"secret_string": True}
    text = json.dumps(to_plan(prod_inventory))
    leaked = [s[:12] for s in prod_inventory.secret_values if json.dumps(s)[1:-1] in text]
    assert not leaked, f"secrets in the prod plan: {leaked}"


def test_two_resources_on_one_address_are_refused() -> None:
    a = _resource("aws:s3/bucket:Bucket", "b", {})
    b = _resource("aws:s3/bucketV2:BucketV2", "b", {})
    with pytest.raises(ValueError, match=r"aws_s3_bucket\.b"):
        _plan(a, b)
