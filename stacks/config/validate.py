"""The config error and the generic checks on one key: bounds, allowed values, gp3 volume limits.

Every message names the key as `adpulse:<name>` and the allowed values, so the fix is in the
message.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi

from stacks import aws_limits as limits

PROJECT = "adpulse"


class StackConfigError(pulumi.RunError):
    """A config value is missing or invalid; the message names the key and the fix."""


def key(name: str) -> str:
    """The full config key, as `pulumi config set` spells it."""
    return f"{PROJECT}:{name}"


def positive(cfg: pulumi.Config, name: str, default: int, minimum: int = 1) -> int:
    value = cfg.get_int(name)
    if value is None:
        return default
    if value < minimum:
        raise StackConfigError(f"config {key(name)} is {value}; it must be at least {minimum}")
    return value


def at_most(cfg: pulumi.Config, name: str, default: int, low: int, high: int) -> int:
    value = positive(cfg, name, default, minimum=low)
    if value > high:
        raise StackConfigError(f"config {key(name)} is {value}; allowed: {low}..{high}")
    return value


def one_of(cfg: pulumi.Config, name: str, allowed: Sequence[str], default: str) -> str:
    value = cfg.get(name) or default
    if value not in allowed:
        raise StackConfigError(
            f"config {key(name)} is {value!r}; allowed values: {', '.join(allowed)}"
        )
    return value


def count_of(cfg: pulumi.Config, name: str, allowed: Sequence[int], default: int) -> int:
    value = cfg.get_int(name)
    if value is None:
        return default
    if value not in allowed:
        raise StackConfigError(
            f"config {key(name)} is {value}; allowed values: {', '.join(map(str, allowed))}"
        )
    return value


def gp3(size: int, iops: int, throughput: int) -> None:
    """gp3 rules (stacks.aws_limits): size, IOPS per GiB, MiB/s per IOPS, and the maxima."""
    if size > limits.GP3_MAX_GIB:
        raise StackConfigError(
            f"config {key('clickhouseVolumeSizeGb')} is {size}; gp3 allows "
            f"10..{limits.GP3_MAX_GIB} GiB"
        )
    most_iops = min(limits.GP3_MAX_IOPS, limits.GP3_IOPS_PER_GIB * size)
    if iops < limits.GP3_MIN_IOPS or iops > most_iops:
        raise StackConfigError(
            f"config {key('clickhouseVolumeIops')} is {iops}; gp3 allows "
            f"{limits.GP3_MIN_IOPS}..{most_iops} for a {size} GiB volume (500 IOPS per GiB, "
            f"{limits.GP3_MAX_IOPS} at most)"
        )
    most_mibs = min(limits.GP3_MAX_MIBS, iops // 4)
    if throughput < limits.GP3_MIN_MIBS or throughput > most_mibs:
        raise StackConfigError(
            f"config {key('clickhouseVolumeThroughput')} is {throughput} MiB/s; gp3 allows "
            f"{limits.GP3_MIN_MIBS}..{most_mibs} at {iops} IOPS (0.25 MiB/s per IOPS, "
            f"{limits.GP3_MAX_MIBS} at most)"
        )
