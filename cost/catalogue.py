"""The bundled price catalogue (cost/catalogue.yaml): every price with its unit, source and date.

A price is looked up by key and region; a missing one is an error naming both and the way out
(`--set price.<key>=USD` for one run, or `adpulse cost catalogue refresh`), never a silent zero.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adpulse.errors import AdpulseError

BUNDLED = Path(__file__).with_name("catalogue.yaml")
HOURS_PER_MONTH = 730.0
_PRICE_FIELDS = ("key", "region", "usd", "unit", "source")


class CatalogueError(AdpulseError):
    """The catalogue is malformed or lacks a price the stack needs; the message says which."""


@dataclass(frozen=True)
class Source:
    id: str
    title: str
    url: str
    date: str  # ISO date the prices were read or generated


@dataclass(frozen=True)
class Price:
    key: str
    region: str
    usd: float
    unit: str
    source: str  # a Source id
    note: str = ""


@dataclass(frozen=True)
class Catalogue:
    as_of: str
    sources: Mapping[str, Source]
    prices: Mapping[tuple[str, str], Price]
    hours_per_month: float = HOURS_PER_MONTH
    origin: str = "bundled"  # bundled | live | a file path
    overrides: Mapping[str, float] = field(default_factory=dict)  # key -> usd, from --set

    def price(self, key: str, region: str) -> Price:
        """The price of `key` in `region`; an override from `--set price.KEY=USD` wins."""
        if key in self.overrides:
            found = self.prices.get((key, region))
            unit = found.unit if found else "as given"
            return Price(key, region, self.overrides[key], unit, "override")
        try:
            return self.prices[(key, region)]
        except KeyError:
            regions = sorted(r for k, r in self.prices if k == key)
            where = f"it has {key} for {', '.join(regions)}" if regions else f"it has no {key}"
            raise CatalogueError(
                f"the price catalogue ({self.origin}, as of {self.as_of}) has no price for "
                f"{key} in {region}: {where}. Set one with --set price.{key}=USD, or rebuild the "
                "catalogue with `adpulse cost catalogue refresh`"
            ) from None

    def source_of(self, price: Price) -> Source:
        if price.source == "override":
            return Source("override", "given on the command line (--set price.KEY=USD)", "", "")
        return self.sources[price.source]

    def regions(self) -> list[str]:
        return sorted({region for _, region in self.prices})

    def with_overrides(self, overrides: Mapping[str, float]) -> Catalogue:
        return Catalogue(
            self.as_of,
            self.sources,
            self.prices,
            self.hours_per_month,
            self.origin,
            {**self.overrides, **overrides},
        )


def _date(value: Any, where: str) -> str:
    text = str(value)
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        raise CatalogueError(f"{where}: date {text!r} is not YYYY-MM-DD") from None
    return text


def parse(data: Mapping[str, Any], origin: str) -> Catalogue:
    """Validate a catalogue document: every price names a known source with a url and a date."""
    if not isinstance(data, Mapping):
        raise CatalogueError(f"{origin}: not a mapping with as_of, sources and prices")
    as_of = _date(data.get("as_of"), f"{origin}: as_of")
    sources: dict[str, Source] = {}
    for sid, raw in (data.get("sources") or {}).items():
        where = f"{origin}: sources.{sid}"
        if not isinstance(raw, Mapping) or not raw.get("url") or not raw.get("title"):
            raise CatalogueError(f"{where} needs title, url and date")
        sources[str(sid)] = Source(
            str(sid), str(raw["title"]), str(raw["url"]), _date(raw.get("date"), where)
        )
    prices: dict[tuple[str, str], Price] = {}
    for i, raw in enumerate(data.get("prices") or []):
        where = f"{origin}: prices[{i}]"
        missing = [f for f in _PRICE_FIELDS if not isinstance(raw, Mapping) or f not in raw]
        if missing:
            raise CatalogueError(
                f"{where} lacks {', '.join(missing)} (needs {', '.join(_PRICE_FIELDS)})"
            )
        if str(raw["source"]) not in sources:
            raise CatalogueError(
                f"{where} ({raw['key']}) names source {raw['source']!r}, which is not under "
                f"sources (known: {', '.join(sorted(sources))})"
            )
        usd = raw["usd"]
        if isinstance(usd, bool) or not isinstance(usd, int | float) or usd < 0:
            raise CatalogueError(f"{where} ({raw['key']}): usd must be a number >= 0, not {usd!r}")
        price = Price(
            str(raw["key"]),
            str(raw["region"]),
            float(usd),
            str(raw["unit"]),
            str(raw["source"]),
            str(raw.get("note") or ""),
        )
        if (price.key, price.region) in prices:
            raise CatalogueError(f"{where}: {price.key} in {price.region} is listed twice")
        prices[(price.key, price.region)] = price
    hours = float(data.get("hours_per_month") or HOURS_PER_MONTH)
    return Catalogue(as_of, sources, prices, hours, origin)


def load(path: Path | None = None) -> Catalogue:
    """The bundled catalogue, or the one at `path`."""
    import yaml

    target = path or BUNDLED
    try:
        text = target.read_text()
    except OSError as exc:
        raise CatalogueError(f"cannot read the price catalogue {target}: {exc.strerror}") from None
    return parse(yaml.safe_load(text) or {}, "bundled" if path is None else str(target))


def merge(
    base: Catalogue, newer: Iterable[Price], sources: Mapping[str, Source], as_of: str, origin: str
) -> Catalogue:
    """`base` with `newer` prices replacing the same key and region (refresh keeps the rest)."""
    prices = dict(base.prices)
    for price in newer:
        prices[(price.key, price.region)] = price
    return Catalogue(as_of, {**base.sources, **sources}, prices, base.hours_per_month, origin)


def to_document(catalogue: Catalogue) -> dict[str, Any]:
    """The YAML document form, prices sorted by key then region."""
    return {
        "as_of": catalogue.as_of,
        "hours_per_month": catalogue.hours_per_month,
        "sources": {
            s.id: {"title": s.title, "url": s.url, "date": s.date}
            for s in sorted(catalogue.sources.values(), key=lambda s: s.id)
        },
        "prices": [
            {
                k: v
                for k, v in (
                    ("key", p.key),
                    ("region", p.region),
                    ("usd", p.usd),
                    ("unit", p.unit),
                    ("source", p.source),
                    ("note", p.note),
                )
                if v != ""
            }
            for p in sorted(catalogue.prices.values(), key=lambda p: (p.key, p.region))
        ],
    }
