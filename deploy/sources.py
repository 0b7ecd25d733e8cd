"""Which source the inventory comes from: an outputs file, the Pulumi CLI, or AWS by tags."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deploy.inventory import Host, StackInventory, from_pulumi_cli, load_outputs_file
from deploy.ssh import Target


@dataclass(frozen=True)
class Source:
    outputs: Path | None = None  # `pulumi stack output --json --show-secrets` saved to a file
    discover_region: str | None = None  # read AWS by the stack's tags instead


def load(stack: str, source: Source) -> StackInventory:
    """The stack's inventory from the outputs file, AWS, or else the Pulumi CLI."""
    if source.outputs is not None:
        return load_outputs_file(source.outputs, stack)
    if source.discover_region is not None:
        from deploy.discover import discover

        return discover(stack, source.discover_region)
    return from_pulumi_cli(stack)


def targets(inv: StackInventory, user: str, names: list[str] | None = None) -> list[Target]:
    """SSH targets for the stack's hosts (app hosts, then ClickHouse nodes), by private IP;
    `names` picks some (an unknown name is an error listing the known ones)."""
    hosts: list[Host] = [*inv.app_hosts, *inv.clickhouse_hosts]
    if names:
        known = {h.name: h for h in hosts}
        unknown = [n for n in names if n not in known]
        if unknown:
            from deploy.inventory import InventoryError

            raise InventoryError(
                f"stack {inv.stack} has no host {unknown[0]!r}; its hosts: {', '.join(known)}"
            )
        hosts = [known[n] for n in names]
    return [Target(h.name, h.private_ip, user=user, instance_id=h.instance_id) for h in hosts]
