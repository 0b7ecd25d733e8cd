"""The VPC: public, app and data subnets per AZ, egress by NAT or endpoints, flow logs, and
security groups."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
from pulumi import ResourceOptions

from adpulse.topology import Ports
from stacks.cache import PORT as REDIS_PORT
from stacks.database import PORT as POSTGRES_PORT
from stacks.flow_logs import flow_logs
from stacks.msk import SCRAM_PORT as KAFKA_PORT
from stacks.zones import choose_zones

# The ClickHouse users template admits this range (ConfigOptions.networks); a test keeps the two
# equal, so a changed VPC cannot silently lock the app out of ClickHouse.
VPC_CIDR = "10.0.0.0/16"
AZ_COUNT = 3
API_PORT = 8000
DASHBOARD_PORT = 3000
# The consumer's /healthz and /metrics (adpulse.settings metrics_port), bound to every interface
# of an app host (metrics_host 0.0.0.0) for the deploy's health checks and Prometheus.
METRICS_PORT = 9108
PORTS = Ports()
ENDPOINTS_WARNING = (
    "adpulse:egress is endpoints: the hosts reach AWS services and S3 but not the internet, so "
    "first boots run no apt and cannot reach packages.clickhouse.com; the AMI "
    "(adpulse:amiNameFilter / amiOwner) must have clickhouse-server and clickhouse-client at "
    "exactly adpulse:clickhouseVersion, awscli, curl and openssl preinstalled (the SSM and "
    "CloudWatch agents are fetched from S3 if missing), or a node's setup stops saying what "
    "is missing; otherwise use egress nat"
)
# What the hosts reach without the internet: SSM Session Manager, Secrets Manager (passwords at
# boot), CloudWatch Logs and metrics (the agent, consumer lag).
INTERFACE_ENDPOINTS = ("ssm", "ssmmessages", "ec2messages", "secretsmanager", "logs", "monitoring")


def subnet_cidrs(vpc_cidr: str, az_count: int = AZ_COUNT) -> dict[str, list[str]]:
    """Carve /20s (4,091 addresses each) per tier and AZ: public, app, then data."""
    blocks = ipaddress.ip_network(vpc_cidr).subnets(new_prefix=20)
    tiers: dict[str, list[str]] = {"public": [], "app": [], "data": []}
    for tier in tiers:
        tiers[tier] = [str(next(blocks)) for _ in range(az_count)]
    return tiers


GROUPS = ("alb", "app", "clickhouse", "kafka", "redis", "postgres")
Source = str | tuple[str, pulumi.Input[str]]


def ingress_policy(
    bastion_cidr: pulumi.Input[str] | None, api_from_alb: bool = False
) -> list[tuple[str, int, Source, str]]:
    """Every ingress rule: (group, TCP port, source group or (label, CIDR), why)."""
    internet = ("internet", "0.0.0.0/0")
    # The two internet-facing rules of the stack; everything else admits named groups.
    rules: list[tuple[str, int, Source, str]] = [
        ("alb", 443, internet, "HTTPS from anywhere"),
        ("alb", 80, internet, "HTTP; redirects to HTTPS when a certificate is set"),
        ("app", DASHBOARD_PORT, "alb", "dashboard from the load balancer"),
        # Not from the load balancer: the ALB's own group may reach the app ports only.
        ("app", METRICS_PORT, ("vpc", VPC_CIDR), "consumer health and metrics from the VPC"),
        # The app speaks TLS only (clickhouses://, 9440/8443).
        ("clickhouse", PORTS.tcp_secure, "app", "ClickHouse native TLS from the app"),
        ("clickhouse", PORTS.https, "app", "ClickHouse HTTPS from the app"),
        ("clickhouse", PORTS.prometheus, ("vpc", VPC_CIDR), "Prometheus scrapes"),
        ("kafka", KAFKA_PORT, "app", "Kafka SASL/SCRAM over TLS from the app"),
        ("redis", REDIS_PORT, "app", "Redis TLS from the app"),
        ("postgres", POSTGRES_PORT, "app", "Postgres from the app"),
    ]
    if api_from_alb:
        rules.append(("app", API_PORT, "alb", "API from the load balancer (adpulse:apiHostname)"))
    # Plain, replication and Keeper ports are for the ClickHouse nodes themselves.
    peer_ports = [PORTS.tcp, PORTS.tcp_secure, PORTS.http, PORTS.https]
    peer_ports += [PORTS.interserver_http, PORTS.keeper, PORTS.keeper_raft]
    rules += [("clickhouse", p, "clickhouse", "ClickHouse peers and Keeper") for p in peer_ports]
    if bastion_cidr is not None:
        # No SSH from the internet: SSM Session Manager is the default way in.
        rules += [
            (g, 22, ("bastion", bastion_cidr), "SSH from the bastion")
            for g in ("app", "clickhouse")
        ]
    return rules


@dataclass
class NetworkArgs:
    name_prefix: str  # `adpulse-<stack>`
    kms_key_arn: pulumi.Input[str]  # encrypts the flow logs
    # EC2 types (hosts and MSK brokers) every chosen AZ must offer.
    instance_types: Sequence[str]
    bastion_cidr: pulumi.Input[str] | None = None
    # Plain values: they decide which resources exist, so they cannot wait for an Output.
    egress: str = "nat"  # "nat" | "endpoints" (stacks.config.EGRESS)
    nat_gateway_per_az: bool = True
    az_count: int = AZ_COUNT
    flow_log_retention_days: int = 365
    api_from_alb: bool = False


class Network(pulumi.ComponentResource):
    """Subnets per tier and AZ, one way out, flow logs, and one security group per service
    admitting only its clients."""

    def __init__(self, name: str, args: NetworkArgs, opts: ResourceOptions | None = None) -> None:
        super().__init__("adpulse:network:Network", name, None, opts)
        self._name = name
        self._prefix = args.name_prefix
        child = ResourceOptions(parent=self)
        self.az_count = args.az_count
        self.availability_zones = choose_zones(args.instance_types, args.az_count, self)
        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=VPC_CIDR,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": f"{args.name_prefix}-vpc"},
            opts=child,
        )
        # Adopts the group every VPC is born with and strips its rules (no ingress or egress
        # given), so a resource launched without a group gets no traffic at all (CKV2_AWS_12).
        self.default_security_group = aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg",
            vpc_id=self.vpc.id,
            tags={"Name": f"{args.name_prefix}-default-locked"},
            opts=child,
        )
        cidrs = subnet_cidrs(VPC_CIDR, args.az_count)
        self.subnets: dict[str, list[aws.ec2.Subnet]] = {
            tier: [
                aws.ec2.Subnet(
                    f"{name}-{tier}-{i + 1}",
                    vpc_id=self.vpc.id,
                    cidr_block=cidr,
                    availability_zone=self.availability_zones[i],
                    # Only the load balancer lives in public subnets, and it gets its own IPs.
                    map_public_ip_on_launch=False,
                    tags={"Name": f"{args.name_prefix}-{tier}-{i + 1}", "Tier": tier},
                    opts=child,
                )
                for i, cidr in enumerate(block)
            ]
            for tier, block in cidrs.items()
        }
        self.public_subnet_ids = [s.id for s in self.subnets["public"]]
        self.app_subnet_ids = [s.id for s in self.subnets["app"]]
        self.data_subnet_ids = [s.id for s in self.subnets["data"]]
        private_tables = self._routes(args.egress, args.nat_gateway_per_az, child)
        self._security_groups(args.bastion_cidr, args.api_from_alb, child)
        self._endpoints(private_tables, interfaces=args.egress == "endpoints", opts=child)
        if args.egress == "endpoints":
            pulumi.log.warn(ENDPOINTS_WARNING, resource=self)
        self.flow_log, self.flow_log_group = flow_logs(
            name,
            self.vpc.id,
            args.name_prefix,
            args.flow_log_retention_days,
            args.kms_key_arn,
            self,
        )
        self.register_outputs(
            {
                "vpc_id": self.vpc.id,
                "public_subnet_ids": self.public_subnet_ids,
                "app_subnet_ids": self.app_subnet_ids,
                "data_subnet_ids": self.data_subnet_ids,
            }
        )

    def _routes(self, egress: str, per_az: bool, opts: ResourceOptions) -> list[aws.ec2.RouteTable]:
        """Public subnets route through the IGW; private ones through a NAT in their AZ, or
        (egress `endpoints`) nowhere outside the VPC."""
        name = self._name
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=self.vpc.id, opts=opts)
        public = aws.ec2.RouteTable(
            f"{name}-public-rt",
            vpc_id=self.vpc.id,
            routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": igw.id}],
            opts=opts,
        )
        for i, subnet in enumerate(self.subnets["public"]):
            aws.ec2.RouteTableAssociation(
                f"{name}-public-rta-{i + 1}",
                subnet_id=subnet.id,
                route_table_id=public.id,
                opts=opts,
            )
        # One NAT per AZ keeps the app and data tiers online when an AZ fails; a single NAT
        # saves about $33/month per gateway for non-production stacks.
        nats = []
        for i in range(0 if egress != "nat" else self.az_count if per_az else 1):
            eip = aws.ec2.Eip(f"{name}-nat-eip-{i + 1}", domain="vpc", opts=opts)
            nats.append(
                aws.ec2.NatGateway(
                    f"{name}-nat-{i + 1}",
                    allocation_id=eip.id,
                    subnet_id=self.subnets["public"][i].id,
                    opts=ResourceOptions(parent=self, depends_on=[igw]),
                )
            )
        tables = []
        for i in range(self.az_count):
            nat = [nats[i % len(nats)]] if nats else []
            table = aws.ec2.RouteTable(
                f"{name}-private-rt-{i + 1}",
                vpc_id=self.vpc.id,
                routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": n.id} for n in nat],
                opts=opts,
            )
            tables.append(table)
            for tier in ("app", "data"):
                aws.ec2.RouteTableAssociation(
                    f"{name}-{tier}-rta-{i + 1}",
                    subnet_id=self.subnets[tier][i].id,
                    route_table_id=table.id,
                    opts=opts,
                )
        return tables

    def _security_groups(
        self, bastion: pulumi.Input[str] | None, api_from_alb: bool, opts: ResourceOptions
    ) -> None:
        # Rules are separate resources so groups can reference each other without a cycle; a
        # group without egress rules gets none (the managed services never dial out).
        self.security_groups = {
            key: aws.ec2.SecurityGroup(
                f"{self._name}-{key}-sg",
                vpc_id=self.vpc.id,
                description=f"adpulse {key}",
                tags={"Name": f"{self._prefix}-{key}"},
                opts=opts,
            )
            for key in GROUPS
        }
        self.ingress_rules: list[aws.vpc.SecurityGroupIngressRule] = []
        for target, port, source, why in ingress_policy(bastion, api_from_alb):
            label, cidr = source if isinstance(source, tuple) else (source, None)
            self.ingress_rules.append(
                aws.vpc.SecurityGroupIngressRule(
                    f"{self._name}-{target}-{port}-from-{label}",
                    security_group_id=self.security_groups[target].id,
                    ip_protocol="tcp",
                    from_port=port,
                    to_port=port,
                    referenced_security_group_id=None if cidr else self.security_groups[label].id,
                    cidr_ipv4=cidr,
                    description=why,
                    opts=opts,
                )
            )
        # The load balancer may only reach the app ports; hosts reach NAT, AWS APIs and peers.
        egress = [("alb", DASHBOARD_PORT), ("app", -1), ("clickhouse", -1)]
        egress += [("alb", API_PORT)] if api_from_alb else []
        for target, port in egress:
            aws.vpc.SecurityGroupEgressRule(
                f"{self._name}-{target}-egress-{'all' if port < 0 else port}",
                security_group_id=self.security_groups[target].id,
                ip_protocol="-1" if port < 0 else "tcp",
                from_port=None if port < 0 else port,
                to_port=None if port < 0 else port,
                referenced_security_group_id=None if port < 0 else self.security_groups["app"].id,
                cidr_ipv4="0.0.0.0/0" if port < 0 else None,
                description="NAT, AWS APIs and peers" if port < 0 else f"to the app on {port}",
                opts=opts,
            )

    def _endpoints(
        self, tables: list[aws.ec2.RouteTable], interfaces: bool, opts: ResourceOptions
    ) -> None:
        """S3 through a gateway endpoint always: it is free and keeps backup traffic off the
        NAT's per-GB charge. Interface endpoints (about $7/month each per AZ) only when they
        replace the NAT."""
        name = self._name
        region = aws.get_region_output(opts=pulumi.InvokeOptions(parent=self)).region
        self.endpoints = {
            "s3": aws.ec2.VpcEndpoint(
                f"{name}-s3-endpoint",
                vpc_id=self.vpc.id,
                service_name=pulumi.Output.concat("com.amazonaws.", region, ".s3"),
                vpc_endpoint_type="Gateway",
                route_table_ids=[t.id for t in tables],
                opts=opts,
            )
        }
        if not interfaces:
            return
        endpoint_sg = aws.ec2.SecurityGroup(
            f"{name}-endpoints-sg",
            vpc_id=self.vpc.id,
            description="adpulse VPC endpoints",
            ingress=[
                {
                    "protocol": "tcp",
                    "from_port": 443,
                    "to_port": 443,
                    "cidr_blocks": [VPC_CIDR],
                    "description": "HTTPS from the VPC",
                }
            ],
            opts=opts,
        )
        for service in INTERFACE_ENDPOINTS:
            self.endpoints[service] = aws.ec2.VpcEndpoint(
                f"{name}-{service}-endpoint",
                vpc_id=self.vpc.id,
                service_name=pulumi.Output.concat("com.amazonaws.", region, ".", service),
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=self.app_subnet_ids,
                security_group_ids=[endpoint_sg.id],
                opts=opts,
            )
