"""Policies on the EC2 hosts and their EBS volumes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from stacks.inventory import Inventory
from stacks.policy.base import Finding, customer_key, each, policy, require

INSTANCE = "aws:ec2/instance:Instance"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
VOLUME = "aws:ebs/volume:Volume"
SUBNET = "aws:ec2/subnet:Subnet"
HOSTS = (INSTANCE, LAUNCH_TEMPLATE)


@policy(
    "ec2-imdsv2",
    "EC2 hosts require IMDSv2 session tokens (a forged request cannot read role credentials)",
    HOSTS,
    ("CKV_AWS_79",),
)
def imdsv2(inventory: Inventory) -> Iterator[Finding]:
    yield from require(
        inventory,
        HOSTS,
        lambda s: (s.get("metadataOptions") or {}).get("httpTokens") == "required",
        "metadataOptions.httpTokens is not 'required': IMDSv1 answers unauthenticated requests",
    )


def _block_devices(settings: dict[str, Any]) -> list[dict[str, Any]]:
    root = settings.get("rootBlockDevice")
    return ([root] if root else [{}]) + list(settings.get("ebsBlockDevices") or [])


@policy(
    "ec2-volumes-encrypted",
    "EC2 root and attached block devices are encrypted with the stack's KMS key",
    (INSTANCE,),
    ("CKV_AWS_8",),
)
def instance_volumes(inventory: Inventory) -> Iterator[Finding]:
    for resource, settings in each(inventory, INSTANCE):
        for device in _block_devices(settings):
            if device.get("encrypted") is not True or not customer_key(device.get("kmsKeyId")):
                name = device.get("deviceName", "root")
                yield Finding(resource.name, f"block device {name} is not encrypted with a CMK")


@policy(
    "ebs-encrypted",
    "EBS data volumes are encrypted with the stack's KMS key",
    (VOLUME,),
    ("CKV_AWS_3", "CKV_AWS_189"),
)
def ebs_encrypted(inventory: Inventory) -> Iterator[Finding]:
    yield from require(
        inventory,
        (VOLUME,),
        lambda s: s.get("encrypted") is True and customer_key(s.get("kmsKeyId")),
        "the volume is not encrypted with a customer-managed KMS key",
    )


@policy(
    "ec2-no-public-ip",
    "EC2 hosts get no public IP: only the load balancer faces the internet",
    (INSTANCE,),
    ("CKV_AWS_88",),
)
def no_public_ip(inventory: Inventory) -> Iterator[Finding]:
    public_subnets = {
        r.id for r, s in each(inventory, SUBNET) if s.get("mapPublicIpOnLaunch") is True
    }
    for resource, settings in each(inventory, INSTANCE):
        explicit = settings.get("associatePublicIpAddress")
        if explicit is True:
            yield Finding(resource.name, "associatePublicIpAddress is true")
        elif explicit is None and settings.get("subnetId") in public_subnets:
            yield Finding(resource.name, "its subnet maps a public IP on launch")


@policy(
    "subnet-no-auto-public-ip",
    "No subnet assigns public IPs by default",
    (SUBNET,),
    ("CKV_AWS_130",),
)
def subnet_public_ip(inventory: Inventory) -> Iterator[Finding]:
    yield from require(
        inventory,
        (SUBNET,),
        lambda s: s.get("mapPublicIpOnLaunch") is not True,
        "mapPublicIpOnLaunch is true: every instance launched there gets a public IP",
    )


@policy(
    "ec2-instance-profile",
    "Every EC2 host has an instance profile (SSM access and secrets by role, no keys on disk)",
    (INSTANCE,),
    ("CKV2_AWS_41",),
)
def instance_profile(inventory: Inventory) -> Iterator[Finding]:
    yield from require(
        inventory,
        (INSTANCE,),
        lambda s: bool(s.get("iamInstanceProfile")),
        "no iamInstanceProfile",
    )


@policy(
    "ec2-ebs-optimized",
    "EC2 hosts are EBS-optimized: volume traffic gets its own bandwidth, not the network's",
    (INSTANCE,),
    ("CKV_AWS_135",),
)
def ebs_optimized(inventory: Inventory) -> Iterator[Finding]:
    yield from require(
        inventory,
        (INSTANCE,),
        lambda s: s.get("ebsOptimized") is True,
        "ebsOptimized is not true: EBS I/O shares the instance's network bandwidth",
    )
