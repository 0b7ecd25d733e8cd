"""The stack's policies: rules over the mocked inventory, each mapped to checkov where it can be.

`judge(inventory)` returns every policy's verdict; `POLICIES` lists them in report order.
"""

from __future__ import annotations

from collections.abc import Iterable

from stacks.inventory import Inventory
from stacks.policy import buckets, hosts, network, secrets, stores
from stacks.policy.base import REGISTRY, Finding, Policy, Verdict
from stacks.policy.base import judge as _judge

# Importing the modules registered their policies; report them in this order.
_MODULES = [m.__name__ for m in (hosts, network, stores, buckets, secrets)]
POLICIES: tuple[Policy, ...] = tuple(
    sorted(REGISTRY, key=lambda p: _MODULES.index(p.check.__module__))
)


def judge(inventory: Inventory, policies: Iterable[Policy] = POLICIES) -> list[Verdict]:
    """Every policy's verdict on the inventory."""
    return _judge(inventory, policies)


__all__ = ["POLICIES", "Finding", "Policy", "Verdict", "judge"]
