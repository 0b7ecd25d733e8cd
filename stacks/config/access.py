"""How people reach the stack: the bastion CIDR for SSH, the certificate and the API host name."""

from __future__ import annotations

import ipaddress
import re

import pulumi

from stacks.config.validate import StackConfigError, key

_CERTIFICATE = re.compile(
    r"^arn:aws[a-z-]*:acm:(?P<region>[a-z0-9-]+):[0-9]{12}:certificate/[0-9a-f-]{36}$"
)
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def bastion(cfg: pulumi.Config) -> str | None:
    raw = cfg.get("bastionCidr")
    if not raw:
        return None
    try:
        net = ipaddress.ip_network(raw, strict=True)
    except ValueError as exc:
        raise StackConfigError(f"config {key('bastionCidr')} {raw!r}: {exc}") from None
    if net.prefixlen == 0:
        raise StackConfigError(
            f"config {key('bastionCidr')} {raw!r} opens SSH to the whole internet; give your "
            "bastion's /32, or leave it unset and use SSM Session Manager"
        )
    return str(net)


def certificate(cfg: pulumi.Config) -> str | None:
    """An ACM certificate ARN in the stack's own region (an ALB cannot use another's)."""
    raw = cfg.get("certificateArn")
    if not raw:
        return None
    match = _CERTIFICATE.fullmatch(raw)
    if not match:
        raise StackConfigError(
            f"config {key('certificateArn')} {raw!r} is not an ACM certificate ARN; allowed "
            "form: arn:aws:acm:<region>:<12-digit account>:certificate/<36-character id>"
        )
    region = pulumi.Config("aws").get("region")
    if region and match.group("region") != region:
        raise StackConfigError(
            f"config {key('certificateArn')} is in {match.group('region')}, but the load "
            f"balancer is in aws:region {region}; allowed: a certificate issued in {region}"
        )
    return raw


def api_hostname(cfg: pulumi.Config, certificate_arn: str | None) -> str | None:
    """The host name machine clients use for the API through the load balancer."""
    raw = cfg.get("apiHostname")
    if not raw:
        return None
    if not _HOSTNAME.fullmatch(raw):
        raise StackConfigError(
            f"config {key('apiHostname')} {raw!r} is not a DNS name; allowed: a lowercase "
            "name such as api.adpulse.example.com, pointed at the load balancer"
        )
    if not certificate_arn:
        raise StackConfigError(
            f"config {key('apiHostname')} needs {key('certificateArn')} (a certificate "
            "covering it): API keys must not cross the internet in clear"
        )
    return raw
