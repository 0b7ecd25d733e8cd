"""Self-hosted ClickHouse from the stack's topology: one Graviton node per host, each with its own
gp3 data volume, TLS certificate and a user data that installs and configures it.

The default shape is 1 shard x 3 replicas (`adpulse.topology.three_replicas`): at adpulse's
volume one r6g.2xlarge holds and scans the whole dataset, so sharding would add fan-out latency
without adding headroom, while three replicas in three AZs survive an AZ loss and spread reads.
Keeper runs inside the same servers: three voters give a quorum that survives one loss, and
separate Keeper hosts would be three more machines to patch for a few MB of metadata. Other
shapes come from `adpulse:clickhouseTopology` (`SHARDSxREPLICAS`, `stacks/cluster_shape.py`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
from pulumi import ResourceOptions

from adpulse.clickhouse.config import ConfigOptions
from adpulse.topology import Topology
from stacks.agents import cw_agent_config
from stacks.cloud_config import for_ec2
from stacks.cluster_shape import (
    DEFAULT_VERSION,
    TOPOLOGY,
    TOPOLOGY_FILE,
    clickhouse_url,
    grid_topology,
    in_domain,
    placement,
    settings_topology,
    topology_json,
    topology_toml,
)
from stacks.node_backup import BackupPlan
from stacks.tls import ClusterTls, ClusterTlsArgs
from stacks.userdata import DISK_FSTYPE as DISK_FSTYPE
from stacks.userdata import SECRET_KEYS, NodeBoot, node_user_data

DATA_DIR = ConfigOptions().data_dir
# EC2 wants a device name; Nitro ignores it (the volume appears as NVMe, found by its serial).
DATA_DEVICE = "/dev/sdf"
_CW_AGENT = cw_agent_config(DATA_DIR)
# Older importers (alarms, __main__, tests) find the shape helpers here too.
__all__ = [
    "DEFAULT_VERSION",
    "DISK_FSTYPE",
    "TOPOLOGY",
    "TOPOLOGY_FILE",
    "ClickHouseArgs",
    "ClickHouseCluster",
    "clickhouse_url",
    "encrypted_root",
    "find_ami",
    "grid_topology",
    "imdsv2_only",
    "placement",
    "settings_topology",
    "topology_json",
    "topology_toml",
]


def find_ami(name_filter: str, owner: str, parent: pulumi.Resource) -> pulumi.Output[str]:
    """The newest arm64 (Graviton) HVM image of `owner` whose name matches the filter."""
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


def tls_read_policy(tls_arns: list[str]) -> str:
    """The nodes' role may read the TLS secrets too (the HostRole grants the passwords and the
    key's kms:Decrypt); the backups bucket grants its own writer policy (stacks/backups.py)."""
    statement = {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": tls_arns}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _render_user_data(host: str, args: ClickHouseArgs, v: dict[str, Any]) -> str:
    """`node_user_data` once the node's Outputs (volume id, ARNs, CA, bucket) are known."""
    bucket = v["bucket"]
    backup = BackupPlan(bucket, v["region"], args.backup_retention_days) if bucket else None
    boot = NodeBoot(
        host=host,
        domain=args.internal_domain,
        region=v["region"],
        volume_id=v["volume"],
        clickhouse_version=args.clickhouse_version,
        secret_arns=v["secrets"],
        tls_secret_arn=v["tls"],
        ca_cert_pem=v["ca"],
        backup=backup,
        offline=args.offline,
    )
    return node_user_data(boot, args.topology)


@dataclass
class ClickHouseArgs:
    subnet_ids: Sequence[pulumi.Input[str]]  # one per AZ; hosts are placed round robin
    availability_zones: Sequence[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    instance_profile: pulumi.Input[str]
    role_name: pulumi.Input[str]  # the profile's role: gets read access to the TLS secrets
    secret_arns: Mapping[str, pulumi.Input[str]]  # stacks/secret_store.py keys -> ARN
    name_prefix: str  # `adpulse-<stack>`: the TLS secrets' names start with it
    ami_name_filter: str  # plain: lookup arguments
    ami_owner: str
    vpc_id: pulumi.Input[str]
    # Plain: the nodes' names (`ch-1.<domain>`) go into exports, certificates and configs alike.
    internal_domain: str
    kms_key_arn: pulumi.Input[str]
    topology: Topology = TOPOLOGY  # plain: decides how many nodes exist
    clickhouse_version: str = DEFAULT_VERSION
    instance_type: pulumi.Input[str] = "r6g.2xlarge"
    volume_size_gb: pulumi.Input[int] = 500
    volume_iops: pulumi.Input[int] = 6000
    volume_throughput: pulumi.Input[int] = 250
    protect_data: bool = True  # plain: a resource option, not a property
    # The backups bucket (stacks/backups.py `bucket_name`, whose writer policy the role needs);
    # the first replica runs the timer (`node_backup.backup_host`). None: no backups at all.
    backup_bucket: pulumi.Input[str] | None = None
    backup_retention_days: int = 14  # at most the bucket's own expiry
    offline: bool = False  # egress `endpoints`: packages come with the AMI (userdata.NodeBoot)


class ClickHouseCluster(pulumi.ComponentResource):
    """Per host of the topology: an instance, a data volume, a certificate and a DNS name."""

    def __init__(
        self, name: str, args: ClickHouseArgs, opts: ResourceOptions | None = None
    ) -> None:
        super().__init__("adpulse:clickhouse:ClickHouseCluster", name, None, opts)
        child = ResourceOptions(parent=self)
        # In the private zone's domain: every name a client or another node is given is the FQDN.
        topology = in_domain(args.topology, args.internal_domain)
        self.topology = topology
        zones = placement(topology, len(args.subnet_ids))
        missing = sorted(set(SECRET_KEYS.values()) - set(args.secret_arns))
        if missing:
            raise ValueError(f"ClickHouseArgs.secret_arns lacks {', '.join(missing)}")
        ami = find_ami(args.ami_name_filter, args.ami_owner, self)
        zone = self._private_names(name, args.vpc_id, args.internal_domain)
        self.tls = ClusterTls(
            f"{name}-tls",
            ClusterTlsArgs(
                hosts=topology.hosts,
                domain=args.internal_domain,
                kms_key_arn=args.kms_key_arn,
                secret_prefix=args.name_prefix,
            ),
            opts=child,
        )
        region = aws.get_region_output(opts=pulumi.InvokeOptions(parent=self)).region
        tls_arns = list(self.tls.secret_arns.values())
        aws.iam.RolePolicy(
            f"{name}-tls-read",
            role=args.role_name,
            policy=pulumi.Output.all(*tls_arns).apply(lambda arns: tls_read_policy(list(arns))),
            opts=child,
        )
        secrets = pulumi.Output.all(**{key: args.secret_arns[key] for key in SECRET_KEYS.values()})
        self.instances: list[aws.ec2.Instance] = []
        self.volumes: list[aws.ebs.Volume] = []
        self.nodes: list[pulumi.Output[dict[str, str]]] = []
        self.user_data: dict[str, pulumi.Output[str]] = {}
        for host, z in zip(topology.hosts, zones, strict=True):
            # A separate volume outlives its instance: replacing a node (new AMI, new type)
            # re-attaches the data instead of re-replicating the whole dataset. gp3 because
            # size, IOPS and throughput scale independently: merges want throughput, and
            # 250 MiB/s sits just under r6g.2xlarge's ~300 MB/s baseline EBS bandwidth (it
            # bursts higher) at a fraction of io2's price; raise each in config as data grows.
            volume = aws.ebs.Volume(
                f"{name}-{host}-data",
                availability_zone=args.availability_zones[z],
                type="gp3",
                size=args.volume_size_gb,
                iops=args.volume_iops,
                throughput=args.volume_throughput,
                encrypted=True,
                kms_key_id=args.kms_key_arn,
                tags={"Name": f"{host}-data"},
                opts=ResourceOptions(parent=self, protect=args.protect_data),
            )
            user_data = pulumi.Output.all(
                volume=volume.id,
                region=region,
                secrets=secrets,
                tls=self.tls.secret_arns[host],
                ca=self.tls.ca_cert_pem,
                bucket=args.backup_bucket,
            ).apply(functools.partial(_render_user_data, host, args))
            instance = aws.ec2.Instance(
                f"{name}-{host}",
                ami=ami,
                instance_type=args.instance_type,
                subnet_id=args.subnet_ids[z],
                vpc_security_group_ids=[args.security_group_id],
                iam_instance_profile=args.instance_profile,
                metadata_options=imdsv2_only(),
                root_block_device=encrypted_root(args.kms_key_arn),
                monitoring=True,
                # Graviton types are EBS-optimized anyway (then this is a no-op); stated, so a
                # type where it is an option still gets dedicated EBS bandwidth for merges.
                ebs_optimized=True,
                disable_api_termination=args.protect_data,
                # Gzipped (stacks/cloud_config.py): EC2's 16 KiB limit is on the compressed size.
                user_data_base64=user_data.apply(for_ec2),
                tags={"Name": host, "Role": "clickhouse"},
                # The AMI lookup follows new images and a user-data change would stop the node:
                # a replica is replaced or rebooted by choice, not by `pulumi up`. `user_data`
                # too: nodes made when it carried the plain text keep running untouched.
                opts=ResourceOptions(
                    parent=self,
                    ignore_changes=["ami", "user_data", "user_data_base64"],
                    depends_on=[self._dhcp],
                ),
            )
            aws.ec2.VolumeAttachment(
                f"{name}-{host}-data-attachment",
                device_name=DATA_DEVICE,
                volume_id=volume.id,
                instance_id=instance.id,
                stop_instance_before_detaching=True,
                opts=child,
            )
            # `host` in the zone: `topology.address(host)`, the name every config, certificate
            # and output gives this node.
            aws.route53.Record(
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
            self.user_data[host] = user_data
            # Clients connect to `fqdn`; `name` is the topology's (macros, replica name). No EC2
            # private DNS name: no certificate names it, so TLS to it would fail verification.
            self.nodes.append(
                pulumi.Output.all(
                    name=host,
                    fqdn=topology.address(host),
                    instance_id=instance.id,
                    private_ip=instance.private_ip,
                    availability_zone=instance.availability_zone,
                )
            )
        self.instance_ids = [i.id for i in self.instances]
        self.url = clickhouse_url(topology)
        self.ca_cert_pem = self.tls.ca_cert_pem
        self.register_outputs({"nodes": self.nodes, "url": self.url, "ca_pem": self.ca_cert_pem})

    def _private_names(self, name: str, vpc_id: pulumi.Input[str], domain: str) -> aws.route53.Zone:
        """A private zone, where `ch-1.<domain>` resolves to the node, plus the VPC's DHCP search
        domain. Nothing the stack configures or exports relies on the search domain (configs,
        `clickhouse_url` and `clickhouse_hosts` name nodes by FQDN); it only lets a person on a
        host type `ch-2`."""
        child = ResourceOptions(parent=self)
        dhcp = aws.ec2.VpcDhcpOptions(
            f"{name}-dhcp",
            domain_name=domain,
            domain_name_servers=["AmazonProvidedDNS"],
            opts=child,
        )
        # Nodes boot after it, so their first DHCP lease already carries the domain.
        self._dhcp = aws.ec2.VpcDhcpOptionsAssociation(
            f"{name}-dhcp-assoc", vpc_id=vpc_id, dhcp_options_id=dhcp.id, opts=child
        )
        return aws.route53.Zone(
            f"{name}-zone", name=domain, vpcs=[aws.route53.ZoneVpcArgs(vpc_id=vpc_id)], opts=child
        )
