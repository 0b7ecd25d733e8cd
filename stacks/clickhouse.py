"""Three self-hosted ClickHouse nodes, one per AZ, each with its own gp3 data volume.

The shape is 1 shard x 3 replicas (`adpulse.topology.three_replicas`): at adpulse's volume
one r6g.2xlarge holds and scans the whole dataset, so sharding would add fan-out latency without
adding headroom, while three replicas in three AZs survive an AZ loss and spread reads.
Keeper runs inside the same servers: three voters give a quorum that survives one loss, and
separate Keeper hosts would be three more machines to patch for a few MB of metadata.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
from pulumi import ResourceOptions

from adpulse import names
from adpulse.clickhouse.config import ConfigOptions
from adpulse.clickhouse.roles import ROLE_USERS
from adpulse.topology import Topology, three_replicas

TOPOLOGY: Topology = three_replicas()
DATA_DIR = ConfigOptions().data_dir
DATA_DEVICE = "/dev/sdf"
DISK_FSTYPE = "ext4"

# The CloudWatch agent reports used_percent of the data mount with exactly these dimensions
# (InstanceId, path, fstype); alarms.py matches them.
_CW_AGENT: dict[str, Any] = {
    "agent": {"metrics_collection_interval": 60},
    "metrics": {
        "append_dimensions": {"InstanceId": "${aws:InstanceId}"},
        "metrics_collected": {
            "disk": {"resources": [DATA_DIR], "measurement": ["used_percent"], "drop_device": True},
            "mem": {"measurement": ["used_percent"]},
        },
    },
}

_USER_DATA = """#!/bin/bash
# Prepare the host only: ClickHouse itself is installed and configured from
# `adpulse config render --topology cluster` over SSM (see stacks/README.md).
set -euo pipefail
hostnamectl set-hostname __HOST__
# Nitro exposes EBS as NVMe; the by-id link names the volume, whatever order devices appear in.
dev=/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store___VOLUME__
for _ in $(seq 1 120); do [ -e "$dev" ] && break; sleep 5; done
# Format only a blank volume: a replaced instance must find the old data intact.
blkid "$dev" || mkfs.__FSTYPE__ -L chdata "$dev"
mkdir -p __DATA_DIR__
grep -q LABEL=chdata /etc/fstab || \
  echo "LABEL=chdata __DATA_DIR__ __FSTYPE__ defaults,noatime,nofail 0 2" >> /etc/fstab
mount -a
cd /tmp
curl -fsSLO https://amazoncloudwatch-agent.s3.amazonaws.com/ubuntu/arm64/latest/amazon-cloudwatch-agent.deb
dpkg -i amazon-cloudwatch-agent.deb
cat > /opt/aws/amazon-cloudwatch-agent/etc/adpulse.json <<'EOF'
__CW_AGENT__
EOF
/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s \
  -c file:/opt/aws/amazon-cloudwatch-agent/etc/adpulse.json
"""


def user_data(host: str, volume_id: str) -> str:
    """Boot script: hostname, the data volume on DATA_DIR, and the CloudWatch agent."""
    return (
        _USER_DATA.replace("__HOST__", host)
        .replace("__VOLUME__", volume_id.replace("-", ""))
        .replace("__FSTYPE__", DISK_FSTYPE)
        .replace("__DATA_DIR__", DATA_DIR)
        .replace("__CW_AGENT__", json.dumps(_CW_AGENT, indent=2))
    )


def find_ami(name_filter: str, owner: str, parent: pulumi.Resource) -> pulumi.Output[str]:
    """The newest arm64 (Graviton) HVM image whose name matches the filter."""
    return aws.ec2.get_ami_output(
        most_recent=True,
        owners=[owner],
        filters=[
            aws.ec2.GetAmiFilterArgs(name="name", values=[name_filter]),
            aws.ec2.GetAmiFilterArgs(name="architecture", values=["arm64"]),
            aws.ec2.GetAmiFilterArgs(name="virtualization-type", values=["hvm"]),
        ],
        opts=pulumi.InvokeOptions(parent=parent),
    ).id


def imdsv2_only() -> aws.ec2.InstanceMetadataOptionsArgs:
    """Session tokens required: a forged request (SSRF) cannot read the role's credentials."""
    return aws.ec2.InstanceMetadataOptionsArgs(
        http_tokens="required", http_endpoint="enabled", http_put_response_hop_limit=1
    )


def encrypted_root(kms_key_arn: pulumi.Input[str]) -> aws.ec2.InstanceRootBlockDeviceArgs:
    return aws.ec2.InstanceRootBlockDeviceArgs(
        volume_type="gp3", volume_size=30, encrypted=True, kms_key_id=kms_key_arn
    )


def clickhouse_url(topology: Topology, user: str = ROLE_USERS["ingest"]) -> str:
    """`clickhouses://user@ch-1:9440,.../adpulse`, without a password (see Secrets Manager)."""
    hosts = ",".join(f"{host}:{topology.ports.tcp_secure}" for host in topology.hosts)
    return f"clickhouses://{user}@{hosts}/{names.DATABASE}"


def topology_json(topology: Topology) -> str:
    """The cluster as JSON: shards of replica hosts, Keeper voters and ports."""
    return json.dumps(
        {
            "cluster": topology.cluster,
            "shards": [list(shard) for shard in topology.shards],
            "keeper": list(topology.keeper),
            "ports": vars(topology.ports),
        },
        sort_keys=True,
    )


@dataclass
class ClickHouseArgs:
    subnet_ids: Sequence[pulumi.Input[str]]  # one per AZ, in TOPOLOGY.hosts order
    availability_zones: Sequence[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    instance_profile: pulumi.Input[str]
    ami_name_filter: str  # plain: lookup arguments
    ami_owner: str
    vpc_id: pulumi.Input[str]
    internal_domain: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    instance_type: pulumi.Input[str] = "r6g.2xlarge"
    volume_size_gb: pulumi.Input[int] = 500
    volume_iops: pulumi.Input[int] = 6000
    volume_throughput: pulumi.Input[int] = 250
    protect_data: bool = True  # plain: a resource option, not a property


class ClickHouseCluster(pulumi.ComponentResource):
    """ch-1..ch-3: an instance, a data volume and a private DNS name each."""

    def __init__(
        self, name: str, args: ClickHouseArgs, opts: ResourceOptions | None = None
    ) -> None:
        super().__init__("adpulse:clickhouse:ClickHouseCluster", name, None, opts)
        child = ResourceOptions(parent=self)
        if len(args.subnet_ids) != len(TOPOLOGY.hosts):
            raise ValueError(f"ClickHouseArgs: need {len(TOPOLOGY.hosts)} subnets, one per node")
        ami = find_ami(args.ami_name_filter, args.ami_owner, self)
        zone = self._private_names(name, args.vpc_id, args.internal_domain)
        self.instances: list[aws.ec2.Instance] = []
        self.volumes: list[aws.ebs.Volume] = []
        self.nodes: list[pulumi.Output[dict[str, str]]] = []
        for host, subnet_id, az in zip(
            TOPOLOGY.hosts, args.subnet_ids, args.availability_zones, strict=True
        ):
            # A separate volume outlives its instance: replacing a node (new AMI, new type)
            # re-attaches the data instead of re-replicating the whole dataset. gp3 because
            # size, IOPS and throughput scale independently: merges want throughput, and
            # 250 MiB/s sits just under r6g.2xlarge's ~300 MB/s baseline EBS bandwidth (it
            # bursts higher) at a fraction of io2's price; raise each in config as data grows.
            volume = aws.ebs.Volume(
                f"{name}-{host}-data",
                availability_zone=az,
                type="gp3",
                size=args.volume_size_gb,
                iops=args.volume_iops,
                throughput=args.volume_throughput,
                encrypted=True,
                kms_key_id=args.kms_key_arn,
                tags={"Name": f"{host}-data"},
                opts=ResourceOptions(parent=self, protect=args.protect_data),
            )
            instance = aws.ec2.Instance(
                f"{name}-{host}",
                ami=ami,
                instance_type=args.instance_type,
                subnet_id=subnet_id,
                vpc_security_group_ids=[args.security_group_id],
                iam_instance_profile=args.instance_profile,
                metadata_options=imdsv2_only(),
                root_block_device=encrypted_root(args.kms_key_arn),
                monitoring=True,
                disable_api_termination=args.protect_data,
                user_data=volume.id.apply(functools.partial(user_data, host)),
                tags={"Name": host, "Role": "clickhouse"},
                # The AMI lookup follows new images and a user-data change would stop the node:
                # a replica is replaced or rebooted by choice, not by `pulumi up`.
                opts=ResourceOptions(parent=self, ignore_changes=["ami", "user_data"]),
            )
            aws.ec2.VolumeAttachment(
                f"{name}-{host}-data-attachment",
                device_name=DATA_DEVICE,
                volume_id=volume.id,
                instance_id=instance.id,
                stop_instance_before_detaching=True,
                opts=child,
            )
            record = aws.route53.Record(
                f"{name}-{host}-dns",
                zone_id=zone.zone_id,
                name=host,
                type="A",
                ttl=60,
                records=[instance.private_ip],
                opts=child,
            )
            self.instances.append(instance)
            self.volumes.append(volume)
            self.nodes.append(
                pulumi.Output.all(
                    name=host,
                    fqdn=record.fqdn,
                    instance_id=instance.id,
                    private_ip=instance.private_ip,
                    private_dns=instance.private_dns,
                    availability_zone=instance.availability_zone,
                )
            )
        self.instance_ids = [i.id for i in self.instances]
        self.url = clickhouse_url(TOPOLOGY)
        self.register_outputs({"nodes": self.nodes, "url": self.url})

    def _private_names(
        self, name: str, vpc_id: pulumi.Input[str], domain: pulumi.Input[str]
    ) -> aws.route53.Zone:
        """A private zone plus the VPC's DHCP search domain, so `ch-1` resolves on every host:
        configs, topology and `clickhouse_url` then share one set of names."""
        child = ResourceOptions(parent=self)
        dhcp = aws.ec2.VpcDhcpOptions(
            f"{name}-dhcp",
            domain_name=domain,
            domain_name_servers=["AmazonProvidedDNS"],
            opts=child,
        )
        aws.ec2.VpcDhcpOptionsAssociation(
            f"{name}-dhcp-assoc", vpc_id=vpc_id, dhcp_options_id=dhcp.id, opts=child
        )
        return aws.route53.Zone(
            f"{name}-zone", name=domain, vpcs=[aws.route53.ZoneVpcArgs(vpc_id=vpc_id)], opts=child
        )
