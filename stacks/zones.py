"""Which AZs the stack uses: regular zones, chosen by zone ID, that offer every host and broker
type and that MSK accepts when its brokers go there."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

# Regular AZs only: Local and Wavelength Zones are opt-in, lack most services (MSK, RDS
# Multi-AZ) and would sort first by name (us-east-1-bos-1a < us-east-1a).
AZ_FILTERS = {"opt-in-status": ["opt-in-not-required"], "zone-type": ["availability-zone"]}

# AZ IDs where MSK places no brokers. AZ *names* are shuffled per account (one account's
# us-east-1a is another's us-east-1c); the ID is the same physical zone everywhere, so this list
# is by ID. MSK's API reference, BrokerNodeGroupInfo.clientSubnets: "Client subnets can't occupy
# the Availability Zone with ID use1-az3."
# https://docs.aws.amazon.com/msk/1.0/apireference/clusters.html#clusters-model-brokernodegroupinfo
# (also https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-msk-cluster-brokernodegroupinfo.html).
# The MSK developer guide lists no other zone; add one here if CreateCluster refuses a subnet.
MSK_UNSUPPORTED_ZONE_IDS = frozenset({"use1-az3"})
MSK_PREFIX = "kafka."


@dataclass(frozen=True)
class Zone:
    """One AZ: its name in this account (what subnets and volumes take) and its AZ ID."""

    name: str
    zone_id: str


def zones_of(names: Sequence[str], zone_ids: Sequence[str]) -> list[Zone]:
    """DescribeAvailabilityZones' parallel `names` and `zone_ids` as zones."""
    return [Zone(n, i) for n, i in zip(names, zone_ids, strict=True)]


def ec2_type(instance_type: str) -> str:
    """The EC2 type behind a host or MSK broker type (`kafka.m7g.large` runs on m7g.large).

    MSK has no offerings API of its own; the broker's EC2 type stands in for it.
    """
    return instance_type.removeprefix(MSK_PREFIX)


def excluded_zone_ids(instance_types: Sequence[str]) -> dict[str, str]:
    """Zone ID -> why the stack cannot use it, for the services these types put in every AZ."""
    if not any(t.startswith(MSK_PREFIX) for t in instance_types):
        return {}
    return {
        zone_id: "MSK does not support this AZ ID, and its brokers go in every AZ the stack uses"
        for zone_id in sorted(MSK_UNSUPPORTED_ZONE_IDS)
    }


def offered_by_zone(types: Sequence[str], locations: Sequence[str]) -> dict[str, set[str]]:
    """DescribeInstanceTypeOfferings' parallel lists as location (zone ID) -> types offered."""
    offered: dict[str, set[str]] = {}
    for instance_type, zone in zip(types, locations, strict=True):
        offered.setdefault(zone, set()).add(instance_type)
    return offered


def _id_order(zone: Zone) -> tuple[str, int, str]:
    """By AZ ID, numerically (use1-az2 before use1-az10): the same choice in every account."""
    found = re.fullmatch(r"(.*?)(\d+)", zone.zone_id)
    if found is None:
        return zone.zone_id, 0, zone.name
    return found.group(1), int(found.group(2)), zone.name


def pick_azs(
    zones: Sequence[Zone],
    offered: Mapping[str, set[str]],
    needed: Sequence[str],
    count: int,
    excluded: Mapping[str, str] | None = None,
) -> list[str]:
    """The names of the first `count` zones by AZ ID that are not `excluded` (zone ID -> why)
    and offer every needed EC2 type (`offered` is by zone ID)."""
    excluded = excluded or {}
    ordered = sorted(zones, key=_id_order)

    def problem(zone: Zone) -> str | None:
        if zone.zone_id in excluded:
            return f"{zone.name} ({zone.zone_id}) is skipped: {excluded[zone.zone_id]}"
        lacking = sorted(set(needed) - offered.get(zone.zone_id, set()))
        if lacking:
            return f"{zone.name} ({zone.zone_id}) lacks {', '.join(lacking)}"
        return None

    usable = [z.name for z in ordered if problem(z) is None]
    if len(usable) < count:
        reasons = "; ".join(p for p in map(problem, ordered) if p)
        accepts = " that MSK accepts" if excluded else ""
        raise pulumi.RunError(
            f"the region has {len(usable)} regular AZs offering {', '.join(sorted(needed))}"
            f"{accepts}; adpulse needs {count} (adpulse:azCount). "
            f"{reasons or 'It has no other AZs.'} Pick another aws:region or other instance types"
        )
    return usable[:count]


def _nth(zones: list[str], index: int) -> str:
    return zones[index]


def choose_zones(
    instance_types: Sequence[str], count: int, parent: pulumi.Resource
) -> list[pulumi.Output[str]]:
    """The names of `count` regular AZs where every given host and broker type is offered, and
    which MSK accepts when a broker type (`kafka.*`) is among them."""
    invoke = pulumi.InvokeOptions(parent=parent)
    zones = aws.get_availability_zones_output(
        state="available",
        filters=[
            aws.GetAvailabilityZonesFilterArgs(name=key, values=values)
            for key, values in AZ_FILTERS.items()
        ],
        opts=invoke,
    )
    needed = sorted({ec2_type(t) for t in instance_types})
    excluded = excluded_zone_ids(instance_types)
    # Offerings by zone ID too, so every test of a zone is on the same physical AZ.
    offerings = aws.ec2.get_instance_type_offerings_output(
        location_type="availability-zone-id",
        filters=zones.zone_ids.apply(
            lambda ids: [
                aws.ec2.GetInstanceTypeOfferingsFilterArgs(name="instance-type", values=needed),
                aws.ec2.GetInstanceTypeOfferingsFilterArgs(name="location", values=ids),
            ]
        ),
        opts=invoke,
    )
    chosen = pulumi.Output.all(
        zones.names, zones.zone_ids, offerings.instance_types, offerings.locations
    ).apply(
        lambda v: pick_azs(
            zones_of(v[0], v[1]), offered_by_zone(v[2], v[3]), needed, count, excluded
        )
    )
    return [chosen.apply(functools.partial(_nth, index=i)) for i in range(count)]
