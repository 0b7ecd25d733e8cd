"""What a policy is, and the helpers policies share to read the inventory."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from stacks.inventory import Inventory, Resource

# Days of automatic backups (RDS) and snapshots (ElastiCache) a data store keeps at least.
MIN_BACKUP_DAYS = 7


@dataclass(frozen=True)
class Finding:
    """One violation: which resource (or output) and what is wrong with it."""

    resource: str
    problem: str


Check = Callable[[Inventory], Iterable[Finding]]


@dataclass(frozen=True)
class Policy:
    """A rule over the inventory; `types` are the resources it judges (none: it judges the whole
    stack), `checkov` the checkov checks asserting the same thing, where checkov has one."""

    id: str
    title: str
    types: tuple[str, ...]
    checkov: tuple[str, ...]
    check: Check


@dataclass(frozen=True)
class Verdict:
    policy: Policy
    findings: tuple[Finding, ...]
    checked: int  # resources of the policy's types in the inventory

    @property
    def status(self) -> Literal["pass", "fail", "n/a"]:
        if self.findings:
            return "fail"
        return "n/a" if self.policy.types and not self.checked else "pass"


REGISTRY: list[Policy] = []


def policy(
    policy_id: str, title: str, types: tuple[str, ...] = (), checkov: tuple[str, ...] = ()
) -> Callable[[Check], Check]:
    """Register a check function as a policy."""

    def register(check: Check) -> Check:
        if any(p.id == policy_id for p in REGISTRY):
            raise ValueError(f"policy {policy_id} is registered twice")
        REGISTRY.append(Policy(policy_id, title, types, checkov, check))
        return check

    return register


def judge(inventory: Inventory, policies: Iterable[Policy]) -> list[Verdict]:
    """Every policy's verdict on the inventory, in the order given."""
    verdicts = []
    for p in policies:
        checked = sum(1 for r in inventory.resources if r.type in p.types)
        verdicts.append(Verdict(p, tuple(p.check(inventory)), checked))
    return verdicts


def dig(value: Any, *path: str) -> Any:
    """value[path[0]][path[1]]..., or None where a step is missing."""
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def each(inventory: Inventory, *types: str) -> Iterator[tuple[Resource, dict[str, Any]]]:
    """(resource, settings) for every resource of these types."""
    for resource in inventory.resources:
        if resource.type in types:
            yield resource, resource.settings


def refs(resource: Resource) -> set[str]:
    """The values other resources use to point at this one (id, ARN, name)."""
    keys = ("arn", "name", "bucket", "id")
    found = {resource.id} | {str(resource.outputs[k]) for k in keys if resource.outputs.get(k)}
    return found - {""}


def customer_key(value: Any) -> bool:
    """Whether a KMS key argument names a key of ours, not an AWS-managed `alias/aws/...`."""
    return isinstance(value, str) and bool(value) and "alias/aws/" not in value


def require(
    inventory: Inventory, types: tuple[str, ...], ok: Callable[[dict[str, Any]], bool], problem: str
) -> Iterator[Finding]:
    """A finding for every resource of these types whose settings fail `ok`."""
    for resource, settings in each(inventory, *types):
        if not ok(settings):
            yield Finding(resource.name, problem)
