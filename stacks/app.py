"""App hosts (consumer, API, dashboard) behind an Application Load Balancer.

Browsers get the dashboard, `/api/v1/*` included: the dashboard's own same-origin proxy
(dashboard/app/api/v1/[...path]/route.ts) answers those paths and adds the API key on the
server, so the key never reaches the browser. Sending them to the API instead would answer
every panel with 401. Machine clients reach the API only under its own host name
(`adpulse:apiHostname`, HTTPS only), which cannot shadow the dashboard's paths; without one the
API is reachable only inside the VPC. `/metrics` is never routed to the API, so Prometheus data
never leaves the VPC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
from pulumi import ResourceOptions

from stacks.clickhouse import encrypted_root, find_ami, imdsv2_only
from stacks.network import API_PORT, DASHBOARD_PORT

HEALTH_PATH = "/healthz"
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
API_PATHS = ["/api/v1/*"]
NO_TLS_WARNING = (
    "no adpulse:certificateArn: the dashboard is served over plain HTTP. Set it with "
    "`pulumi config set adpulse:certificateArn arn:aws:acm:...` and run `pulumi up` again."
)


@dataclass
class AppArgs:
    app_subnet_ids: Sequence[pulumi.Input[str]]
    public_subnet_ids: Sequence[pulumi.Input[str]]
    vpc_id: pulumi.Input[str]
    app_security_group_id: pulumi.Input[str]
    alb_security_group_id: pulumi.Input[str]
    instance_profile: pulumi.Input[str]
    ami_name_filter: str  # plain: lookup arguments
    ami_owner: str
    kms_key_arn: pulumi.Input[str]
    instance_type: pulumi.Input[str] = "t4g.large"
    # Plain values: they decide how many hosts and which listeners exist.
    instance_count: int = 2
    certificate_arn: str | None = None
    # Machine clients' host name for the API (HTTPS only); None keeps the API inside the VPC.
    api_hostname: str | None = None
    deletion_protection: bool = True


class App(pulumi.ComponentResource):
    """Hosts spread over the app subnets, two target groups and the listeners."""

    def __init__(self, name: str, args: AppArgs, opts: ResourceOptions | None = None) -> None:
        super().__init__("adpulse:app:App", name, None, opts)
        child = ResourceOptions(parent=self)
        subnets = list(args.app_subnet_ids)
        ami = find_ami(args.ami_name_filter, args.ami_owner, self)
        self.instances = [
            aws.ec2.Instance(
                f"{name}-app-{i + 1}",
                ami=ami,
                instance_type=args.instance_type,
                subnet_id=subnets[i % len(subnets)],
                vpc_security_group_ids=[args.app_security_group_id],
                iam_instance_profile=args.instance_profile,
                metadata_options=imdsv2_only(),
                root_block_device=encrypted_root(args.kms_key_arn),
                # A no-op on Graviton types (EBS-optimized by default); set for any other type.
                ebs_optimized=True,
                tags={"Name": f"app-{i + 1}", "Role": "app"},
                opts=ResourceOptions(parent=self, ignore_changes=["ami"]),
            )
            for i in range(args.instance_count)
        ]
        self.alb = aws.lb.LoadBalancer(
            f"{name}-alb",
            load_balancer_type="application",
            internal=False,
            subnets=list(args.public_subnet_ids),
            security_groups=[args.alb_security_group_id],
            drop_invalid_header_fields=True,
            enable_deletion_protection=args.deletion_protection,
            opts=child,
        )
        if args.api_hostname and not args.certificate_arn:
            raise ValueError("AppArgs.api_hostname needs certificate_arn: API keys travel in it")
        roles = [("dashboard", DASHBOARD_PORT)]
        roles += [("api", API_PORT)] if args.api_hostname else []
        self.target_groups = {
            role: self._target_group(name, role, port, args.vpc_id) for role, port in roles
        }
        for role, group in self.target_groups.items():
            for i, instance in enumerate(self.instances):
                aws.lb.TargetGroupAttachment(
                    f"{name}-{role}-app-{i + 1}",
                    target_group_arn=group.arn,
                    target_id=instance.id,
                    opts=child,
                )
        forward_dashboard = [
            aws.lb.ListenerDefaultActionArgs(
                type="forward", target_group_arn=self.target_groups["dashboard"].arn
            )
        ]
        if args.certificate_arn:
            listener = aws.lb.Listener(
                f"{name}-https",
                load_balancer_arn=self.alb.arn,
                port=443,
                protocol="HTTPS",
                ssl_policy=TLS_POLICY,
                certificate_arn=args.certificate_arn,
                default_actions=forward_dashboard,
                opts=child,
            )
            redirect = aws.lb.ListenerDefaultActionRedirectArgs(
                port="443", protocol="HTTPS", status_code="HTTP_301"
            )
            redirect_listener = aws.lb.Listener(
                f"{name}-http-redirect",
                load_balancer_arn=self.alb.arn,
                port=80,
                protocol="HTTP",
                default_actions=[
                    aws.lb.ListenerDefaultActionArgs(type="redirect", redirect=redirect)
                ],
                opts=child,
            )
            self.listeners = [listener, redirect_listener]
            scheme, self.tls_warning = "https", ""
        else:
            listener = aws.lb.Listener(
                f"{name}-http",
                load_balancer_arn=self.alb.arn,
                port=80,
                protocol="HTTP",
                default_actions=forward_dashboard,
                opts=child,
            )
            self.listeners = [listener]
            scheme, self.tls_warning = "http", NO_TLS_WARNING
            pulumi.log.warn(NO_TLS_WARNING, resource=self)
        self.rules = self._rules(name, listener, args.api_hostname)
        self.dashboard_url = self.alb.dns_name.apply(lambda host: f"{scheme}://{host}")
        self.hosts = [
            pulumi.Output.all(
                name=f"app-{i + 1}",
                instance_id=instance.id,
                private_ip=instance.private_ip,
                private_dns=instance.private_dns,
                availability_zone=instance.availability_zone,
            )
            for i, instance in enumerate(self.instances)
        ]
        self.register_outputs({"dashboard_url": self.dashboard_url, "hosts": self.hosts})

    def _rules(
        self, name: str, listener: aws.lb.Listener, api_hostname: str | None
    ) -> dict[str, aws.lb.ListenerRule]:
        """Listener rules by purpose; the ALB evaluates them by ascending priority."""
        child = ResourceOptions(parent=self)
        rules = {}
        if api_hostname:
            # Both conditions must hold: the API's own host name, and only its API paths.
            rules["api"] = aws.lb.ListenerRule(
                f"{name}-api-host-rule",
                listener_arn=listener.arn,
                priority=10,
                conditions=[
                    {"host_header": {"values": [api_hostname]}},
                    {"path_pattern": {"values": API_PATHS}},
                ],
                actions=[{"type": "forward", "target_group_arn": self.target_groups["api"].arn}],
                opts=child,
            )
        # The default action serves these already; the rule pins them to the dashboard, so an
        # API rule added later (at a higher priority number) cannot take them over.
        rules["dashboard-api-proxy"] = aws.lb.ListenerRule(
            f"{name}-dashboard-proxy-rule",
            listener_arn=listener.arn,
            priority=20,
            conditions=[{"path_pattern": {"values": API_PATHS}}],
            actions=[{"type": "forward", "target_group_arn": self.target_groups["dashboard"].arn}],
            opts=child,
        )
        return rules

    def _target_group(
        self, name: str, role: str, port: int, vpc_id: pulumi.Input[str]
    ) -> aws.lb.TargetGroup:
        return aws.lb.TargetGroup(
            f"{name}-{role}-tg",
            port=port,
            protocol="HTTP",
            target_type="instance",
            vpc_id=vpc_id,
            # Short drains: requests are sub-second, so 30 s finishes in-flight work on deploys.
            deregistration_delay=30,
            health_check={
                "path": HEALTH_PATH,
                "port": "traffic-port",
                "matcher": "200",
                "interval": 15,
                "healthy_threshold": 2,
                "unhealthy_threshold": 3,
            },
            opts=ResourceOptions(parent=self),
        )
