"""Lines priced from the resources the program declares: hours, volumes, counts (pure)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from cost.catalogue import Catalogue
from cost.lines import Line, priced
from cost.usage import Usage
from stacks.inventory import Inventory, Resource

GP3_FREE_IOPS = 3000
GP3_FREE_THROUGHPUT = 125  # MB/s
_ROLE_COMPONENT = {"clickhouse": "clickhouse", "app": "services"}


class Pricing:
    """What every rule needs: the catalogue, region, hours in a month, usage, the inventory."""

    def __init__(self, inventory: Inventory, catalogue: Catalogue, usage: Usage) -> None:
        self.inventory = inventory
        self.catalogue = catalogue
        self.usage = usage
        self.region = inventory.config.get("aws:region", "us-east-1")
        self.hours = catalogue.hours_per_month

    def line(
        self,
        component: str,
        r: Resource | str,
        item: str,
        key: str,
        qty: float,
        basis: str = "resource",
        slot: str = "",
    ) -> Line:
        name = r if isinstance(r, str) else r.name
        return priced(self.catalogue, self.region, component, name, item, key, qty, basis, slot)


def role_of(resource: Resource) -> str:
    return str((resource.settings.get("tags") or {}).get("Role", ""))


def gp3(
    p: Pricing, component: str, r: Resource, what: str, size: float, iops: float, throughput: float
) -> Iterator[Line]:
    """A gp3 volume: storage, and IOPS and throughput above the free baseline."""
    yield p.line(component, r, f"{what}: gp3 {size:g} GB", "ebs/gp3/storage", size)
    if iops > GP3_FREE_IOPS:
        yield p.line(
            component,
            r,
            f"{what}: gp3 IOPS above {GP3_FREE_IOPS}",
            "ebs/gp3/iops",
            iops - GP3_FREE_IOPS,
        )
    if throughput > GP3_FREE_THROUGHPUT:
        yield p.line(
            component,
            r,
            f"{what}: gp3 MB/s above {GP3_FREE_THROUGHPUT}",
            "ebs/gp3/throughput",
            throughput - GP3_FREE_THROUGHPUT,
        )


def instance(p: Pricing, r: Resource) -> Iterator[Line]:
    s = r.settings
    component = _ROLE_COMPONENT.get(role_of(r), "services")
    kind = s["instanceType"]
    yield p.line(component, r, f"EC2 {kind}", f"ec2/{kind}", p.hours)
    root: dict[str, Any] = s.get("rootBlockDevice") or {}
    if root.get("volumeType", "gp3") == "gp3":
        yield from gp3(
            p,
            component,
            r,
            "root volume",
            float(root.get("volumeSize", 8)),
            float(root.get("iops", 0)),
            float(root.get("throughput", 0)),
        )


def volume(p: Pricing, r: Resource) -> Iterator[Line]:
    s = r.settings
    attached = {
        a.settings.get("volumeId"): a.settings.get("instanceId")
        for a in p.inventory.of_type("aws:ec2/volumeAttachment:VolumeAttachment")
    }
    hosts = {i.id: i for i in p.inventory.of_type("aws:ec2/instance:Instance")}
    host = hosts.get(str(attached.get(r.id)))
    component = _ROLE_COMPONENT.get(role_of(host), "services") if host else "clickhouse"
    yield from gp3(
        p,
        component,
        r,
        "data volume",
        float(s["size"]),
        float(s.get("iops", 0)),
        float(s.get("throughput", 0)),
    )


def msk(p: Pricing, r: Resource) -> Iterator[Line]:
    s = r.settings
    brokers = float(s["numberOfBrokerNodes"])
    group = s["brokerNodeGroupInfo"]
    kind = group["instanceType"]
    size = float(group["storageInfo"]["ebsStorageInfo"]["volumeSize"])
    yield p.line("kafka", r, f"MSK {brokers:g} x {kind}", f"msk/{kind}", brokers * p.hours)
    yield p.line(
        "kafka", r, f"MSK storage {brokers:g} x {size:g} GB", "msk/storage", brokers * size
    )


def cache_nodes(settings: dict[str, Any]) -> float:
    """Nodes of a replication group: num_cache_clusters, or shards x (replicas + 1)."""
    if settings.get("numCacheClusters"):
        return float(settings["numCacheClusters"])
    groups = float(settings.get("numNodeGroups", 1))
    return groups * (float(settings.get("replicasPerNodeGroup", 0)) + 1)


def redis(p: Pricing, r: Resource) -> Iterator[Line]:
    s = r.settings
    nodes = cache_nodes(s)
    kind = s["nodeType"]
    yield p.line(
        "cache", r, f"ElastiCache {nodes:g} x {kind}", f"elasticache/redis/{kind}", nodes * p.hours
    )
    kept = float(s.get("snapshotRetentionLimit", 0))
    if kept:
        yield p.line(
            "cache",
            r,
            f"snapshots: {kept:g} days x {p.usage.redis_dataset_gb:g} GB",
            "elasticache/backup/storage",
            kept * p.usage.redis_dataset_gb,
            "usage",
        )


def postgres(p: Pricing, r: Resource) -> Iterator[Line]:
    s = r.settings
    az = "multi-az" if s.get("multiAz") else "single-az"
    kind = s["instanceClass"]
    yield p.line(
        "metadata-db", r, f"RDS PostgreSQL {kind} {az}", f"rds/postgres/{kind}/{az}", p.hours
    )
    yield p.line(
        "metadata-db",
        r,
        f"RDS gp3 {float(s['allocatedStorage']):g} GB {az}",
        f"rds/gp3/storage/{az}",
        float(s["allocatedStorage"]),
    )


def load_balancer(p: Pricing, r: Resource) -> Iterator[Line]:
    yield p.line("edge", r, "ALB", "elb/alb", p.hours)
    if not r.settings.get("internal"):
        subnets = len(r.settings.get("subnets") or [])
        yield p.line(
            "edge", r, f"public IPv4: {subnets} (one per AZ)", "vpc/public-ipv4", subnets * p.hours
        )


def nat(p: Pricing, r: Resource) -> Iterator[Line]:
    yield p.line("network", r, "NAT gateway", "vpc/nat", p.hours)


def elastic_ip(p: Pricing, r: Resource) -> Iterator[Line]:
    yield p.line("network", r, "public IPv4 (Elastic IP)", "vpc/public-ipv4", p.hours)


def endpoint(p: Pricing, r: Resource) -> Iterator[Line]:
    s = r.settings
    if s.get("vpcEndpointType") != "Interface":
        return  # gateway endpoints (S3, DynamoDB) are free
    zones = len(s.get("subnetIds") or [])
    service = str(s.get("serviceName", "")).rsplit(".", 1)[-1]
    yield p.line(
        "network", r, f"interface endpoint {service} x {zones} AZ", "vpc/endpoint", zones * p.hours
    )


def alarm(p: Pricing, r: Resource) -> Iterator[Line]:
    metrics = len(r.settings.get("metricQueries") or []) or 1
    yield p.line("observability", r, "CloudWatch alarm", "cloudwatch/alarm", metrics)


def secret(p: Pricing, r: Resource) -> Iterator[Line]:
    yield p.line("security", r, "Secrets Manager secret", "secretsmanager/secret", 1)


def kms_key(p: Pricing, r: Resource) -> Iterator[Line]:
    yield p.line("security", r, "KMS customer key", "kms/key", 1)


def hosted_zone(p: Pricing, r: Resource) -> Iterator[Line]:
    yield p.line("network", r, "Route 53 private hosted zone", "route53/zone", 1)


RULES: dict[str, Callable[[Pricing, Resource], Iterator[Line]]] = {
    "aws:ec2/instance:Instance": instance,
    "aws:ebs/volume:Volume": volume,
    "aws:msk/cluster:Cluster": msk,
    "aws:elasticache/replicationGroup:ReplicationGroup": redis,
    "aws:rds/instance:Instance": postgres,
    "aws:lb/loadBalancer:LoadBalancer": load_balancer,
    "aws:ec2/natGateway:NatGateway": nat,
    "aws:ec2/eip:Eip": elastic_ip,
    "aws:ec2/vpcEndpoint:VpcEndpoint": endpoint,
    "aws:cloudwatch/metricAlarm:MetricAlarm": alarm,
    "aws:secretsmanager/secret:Secret": secret,
    "aws:kms/key:Key": kms_key,
    "aws:route53/zone:Zone": hosted_zone,
}

# Types that cost nothing by themselves (or only through usage lines priced elsewhere), so
# the report can say every resource was considered.
FREE = {
    "aws:ec2/vpc:Vpc",
    "aws:ec2/subnet:Subnet",
    "aws:ec2/routeTable:RouteTable",
    "aws:ec2/routeTableAssociation:RouteTableAssociation",
    "aws:ec2/internetGateway:InternetGateway",
    "aws:ec2/securityGroup:SecurityGroup",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
    "aws:ec2/vpcDhcpOptions:VpcDhcpOptions",
    "aws:ec2/vpcDhcpOptionsAssociation:VpcDhcpOptionsAssociation",
    "aws:ec2/volumeAttachment:VolumeAttachment",
    "aws:ec2/flowLog:FlowLog",
    "aws:iam/role:Role",
    "aws:iam/policy:Policy",
    "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:iam/instanceProfile:InstanceProfile",
    "aws:kms/alias:Alias",
    "aws:lb/listener:Listener",
    "aws:lb/listenerRule:ListenerRule",
    "aws:lb/targetGroup:TargetGroup",
    "aws:lb/targetGroupAttachment:TargetGroupAttachment",
    "aws:msk/configuration:Configuration",
    "aws:msk/scramSecretAssociation:ScramSecretAssociation",
    "aws:elasticache/subnetGroup:SubnetGroup",
    "aws:rds/subnetGroup:SubnetGroup",
    "aws:route53/record:Record",
    "aws:secretsmanager/secretVersion:SecretVersion",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
    "aws:s3/bucketPolicy:BucketPolicy",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketVersioning:BucketVersioning",
    # priced by usage (cost/traffic.py): storage, requests, log ingestion, SNS publishes
    "aws:s3/bucket:Bucket",
    "aws:cloudwatch/logGroup:LogGroup",
    "aws:sns/topic:Topic",
    "aws:sns/topicSubscription:TopicSubscription",
}


def resource_lines(p: Pricing) -> tuple[list[Line], list[str]]:
    """Lines for every priced resource, and the cloud types no rule knows (left unpriced)."""
    lines: list[Line] = []
    unknown: set[str] = set()
    for r in p.inventory.cloud_resources:
        if not r.type.startswith("aws:"):
            continue  # random, tls: computed by Pulumi, nothing in the cloud
        rule = RULES.get(r.type)
        if rule is not None:
            lines.extend(rule(p, r))
        elif r.type not in FREE:
            unknown.add(r.type)
    return lines, sorted(unknown)
