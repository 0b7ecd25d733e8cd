"""Policies on the network edge: security groups, flow logs and the load balancer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from stacks.inventory import Inventory
from stacks.policy.base import Finding, dig, each, policy, refs, require

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
LEGACY_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
LISTENER = "aws:lb/listener:Listener"
VPC = "aws:ec2/vpc:Vpc"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
INTERNET = {"0.0.0.0/0", "::/0"}
# What the public load balancer may take from anyone: HTTPS, and HTTP to redirect it.
PUBLIC_PORTS = {80, 443}
# TLS 1.2 or newer only (CKV_AWS_103 accepts the same families).
TLS_POLICIES = ("ELBSecurityPolicy-TLS13-", "ELBSecurityPolicy-TLS-1-2", "ELBSecurityPolicy-FS-1-2")


def _public_albs(inventory: Inventory) -> list[tuple[Any, dict[str, Any]]]:
    return [
        (r, s)
        for r, s in each(inventory, LOAD_BALANCER)
        if s.get("loadBalancerType", "application") == "application" and not s.get("internal")
    ]


def _ingress(inventory: Inventory) -> Iterator[tuple[str, str, set[str], Any, Any, str]]:
    """(resource name, group id, CIDRs, from port, to port, protocol) of every ingress rule."""
    for r, s in each(inventory, INGRESS_RULE):
        cidrs = {c for c in (s.get("cidrIpv4"), s.get("cidrIpv6")) if c}
        proto = str(s.get("ipProtocol", "tcp"))
        yield r.name, s.get("securityGroupId", ""), cidrs, s.get("fromPort"), s.get("toPort"), proto
    for r, s in each(inventory, LEGACY_RULE):
        if s.get("type") == "ingress":
            cidrs = set(s.get("cidrBlocks") or []) | set(s.get("ipv6CidrBlocks") or [])
            group = s.get("securityGroupId", "")
            yield r.name, group, cidrs, s.get("fromPort"), s.get("toPort"), str(s.get("protocol"))
    for r, s in each(inventory, SECURITY_GROUP):
        for rule in s.get("ingress") or []:
            cidrs = set(rule.get("cidrBlocks") or []) | set(rule.get("ipv6CidrBlocks") or [])
            proto = str(rule.get("protocol"))
            yield r.name, r.id, cidrs, rule.get("fromPort"), rule.get("toPort"), proto


@policy(
    "sg-no-internet-ingress",
    "Nothing admits 0.0.0.0/0 or ::/0 but the public load balancer's ports 80 and 443",
    (SECURITY_GROUP, INGRESS_RULE, LEGACY_RULE),
    # CKV_AWS_260 (port 80 from anywhere) is the ALB's HTTP redirect: skipped, with its reason.
    ("CKV_AWS_24", "CKV_AWS_25", "CKV_AWS_277"),
)
def internet_ingress(inventory: Inventory) -> Iterator[Finding]:
    alb_groups = {g for _, s in _public_albs(inventory) for g in s.get("securityGroups") or []}
    for name, group, cidrs, low, high, proto in _ingress(inventory):
        if not cidrs & INTERNET:
            continue
        web = proto in {"tcp", "6"} and low == high and low in PUBLIC_PORTS
        if not (web and group in alb_groups):
            where = "the load balancer's group" if group in alb_groups else "a non-ALB group"
            yield Finding(name, f"admits the internet to {where} on {proto} {low}-{high}")


@policy(
    "vpc-flow-logs",
    "Every VPC records flow logs",
    (VPC,),
    ("CKV2_AWS_11",),
)
def flow_logs(inventory: Inventory) -> Iterator[Finding]:
    logged = {s.get("vpcId") for _, s in each(inventory, FLOW_LOG)}
    for vpc, _ in each(inventory, VPC):
        if not refs(vpc) & logged:
            yield Finding(vpc.name, "no aws:ec2/flowLog records this VPC's traffic")


@policy(
    "alb-drop-invalid-headers",
    "The load balancer drops invalid HTTP header fields (request smuggling)",
    (LOAD_BALANCER,),
    ("CKV_AWS_131",),
)
def drop_invalid_headers(inventory: Inventory) -> Iterator[Finding]:
    for resource, settings in _public_albs(inventory):
        if settings.get("dropInvalidHeaderFields") is not True:
            yield Finding(resource.name, "dropInvalidHeaderFields is not true")


@policy(
    "alb-deletion-protection",
    "The load balancer has deletion protection (its DNS name is what users bookmark)",
    (LOAD_BALANCER,),
    ("CKV_AWS_150",),
)
def alb_deletion_protection(inventory: Inventory) -> Iterator[Finding]:
    yield from require(
        inventory,
        (LOAD_BALANCER,),
        lambda s: s.get("enableDeletionProtection") is True,
        "enableDeletionProtection is not true",
    )


def _redirects_to_https(actions: list[dict[str, Any]]) -> bool:
    return bool(actions) and all(
        a.get("type") == "redirect" and dig(a, "redirect", "protocol") == "HTTPS" for a in actions
    )


@policy(
    "alb-https",
    "Public listeners serve HTTPS with TLS 1.2+ or redirect HTTP to HTTPS",
    (LISTENER,),
    ("CKV_AWS_2", "CKV_AWS_103"),
)
def https_only(inventory: Inventory) -> Iterator[Finding]:
    public = {ref for r, _ in _public_albs(inventory) for ref in refs(r)}
    for resource, settings in each(inventory, LISTENER):
        if settings.get("loadBalancerArn") not in public:
            continue
        protocol = settings.get("protocol")
        if protocol == "HTTPS":
            if not str(settings.get("sslPolicy", "")).startswith(TLS_POLICIES):
                yield Finding(
                    resource.name, f"sslPolicy {settings.get('sslPolicy')!r} allows TLS < 1.2"
                )
        elif not _redirects_to_https(settings.get("defaultActions") or []):
            yield Finding(
                resource.name,
                f"serves {protocol} without redirecting to HTTPS (set adpulse:certificateArn)",
            )
