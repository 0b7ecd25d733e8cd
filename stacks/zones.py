"""Which AZs the stack uses: regular zones that offer every host and broker type."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws

# Regular AZs only: Local and Wavelength Zones are opt-in, lack most services (MSK, RDS
# Multi-AZ) and would sort first by name (us-east-1-bos-1a < us-east-1a).
AZ_FILTERS = {"opt-in-status": ["opt-in-not-required"], "zone-type": ["availability-zone"]}


def ec2_type(instance_type: str) -> str:
    """The EC2 type behind a host or MSK broker type (`kafka.m7g.large` runs on m7g.large).

    MSK has no offerings API of its own; the broker's EC2 type stands in for it.
    """
    return instance_type.removeprefix("kafka.")


def offered_by_zone(types: Sequence[str], locations: Sequence[str]) -> dict[str, set[str]]:
    """DescribeInstanceTypeOfferings' parallel lists as zone -> the types offered there."""
    offered: dict[str, set[str]] = {}
    for instance_type, zone in zip(types, locations, strict=True):
        offered.setdefault(zone, set()).add(instance_type)
    return offered


def pick_azs(
    zones: Sequence[str], offered: Mapping[str, set[str]], needed: Sequence[str], count: int
) -> list[str]:
    """The first `count` zones by name that offer every needed instance type."""
    usable = [z for z in sorted(zones) if set(needed) <= offered.get(z, set())]
    if len(usable) < count:
        lacking = "; ".join(
            f"{z} lacks {', '.join(sorted(set(needed) - offered.get(z, set())))}"
            for z in sorted(zones)
            if z not in usable
        )
        raise pulumi.RunError(
            f"the region has {len(usable)} regular AZs offering {', '.join(sorted(needed))}; "
            f"adpulse needs {count} (adpulse:azCount). {lacking or 'It has no other AZs.'} "
            "Pick another aws:region or other instance types"
        )
    return usable[:count]


def _nth(zones: list[str], index: int) -> str:
    return zones[index]


def choose_zones(
    instance_types: Sequence[str], count: int, parent: pulumi.Resource
) -> list[pulumi.Output[str]]:
    """`count` regular AZs of the region where every given host and broker type is offered."""
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
    offerings = aws.ec2.get_instance_type_offerings_output(
        location_type="availability-zone",
        filters=zones.names.apply(
            lambda names: [
                aws.ec2.GetInstanceTypeOfferingsFilterArgs(name="instance-type", values=needed),
                aws.ec2.GetInstanceTypeOfferingsFilterArgs(name="location", values=names),
            ]
        ),
        opts=invoke,
    )
    chosen = pulumi.Output.all(zones.names, offerings.instance_types, offerings.locations).apply(
        lambda v: pick_azs(v[0], offered_by_zone(v[1], v[2]), needed, count)
    )
    return [chosen.apply(functools.partial(_nth, index=i)) for i in range(count)]
