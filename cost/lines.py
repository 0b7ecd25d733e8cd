"""A priced line: what is bought, how much, at which unit price, from which source."""

from __future__ import annotations

from dataclasses import dataclass

from cost.catalogue import Catalogue

# The order lines and totals are shown in; `services` are the app hosts (consumer, API, dashboard).
COMPONENTS = (
    "clickhouse",
    "kafka",
    "cache",
    "metadata-db",
    "services",
    "edge",
    "network",
    "backups",
    "observability",
    "security",
)


@dataclass(frozen=True)
class Line:
    component: str
    resource: str  # the Pulumi resource name, or `usage` for traffic-derived lines
    item: str  # what is bought, for people
    quantity: float  # per month, in `unit`
    unit: str
    unit_usd: float
    price_key: str
    region: str
    source: str  # the catalogue source id
    basis: str = "resource"  # resource: from the program's settings; usage: from an assumption
    # What the line pays for when price key and resource do not tell it apart (usage lines all
    # belong to `usage`): `cost diff` pairs lines by it, so it names the flow, never a figure.
    slot: str = ""

    @property
    def monthly_usd(self) -> float:
        return self.quantity * self.unit_usd


def priced(
    catalogue: Catalogue,
    region: str,
    component: str,
    resource: str,
    item: str,
    key: str,
    quantity: float,
    basis: str = "resource",
    slot: str = "",
) -> Line:
    """A line for `quantity` of catalogue price `key` in `region`."""
    price = catalogue.price(key, region)
    return Line(
        component,
        resource,
        item,
        quantity,
        price.unit,
        price.usd,
        key,
        region,
        price.source,
        basis,
        slot,
    )
