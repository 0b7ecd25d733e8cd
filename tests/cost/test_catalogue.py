"""The bundled catalogue: every price with a unit, a source, a url and a date; errors that say
what is missing and what to do."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from cost.catalogue import BUNDLED, Catalogue, CatalogueError, load, parse, to_document

REQUIRED_REGIONS = ("us-east-1", "us-west-2", "eu-west-1")


def test_every_bundled_price_has_a_source_with_a_url_and_a_date() -> None:
    catalogue = load()
    assert catalogue.prices, "the bundled catalogue is empty"
    assert dt.date.fromisoformat(catalogue.as_of) <= dt.date.today() + dt.timedelta(days=1)
    for price in catalogue.prices.values():
        source = catalogue.sources[price.source]
        assert source.url.startswith("https://"), price
        assert dt.date.fromisoformat(source.date), price
        assert price.unit and price.usd >= 0, price


def test_the_bundled_catalogue_covers_the_three_regions() -> None:
    regions = load().regions()
    for region in REQUIRED_REGIONS:
        assert region in regions


def test_the_bundled_file_round_trips() -> None:
    catalogue = load()
    again = parse(to_document(catalogue), "round trip")
    assert again.prices == catalogue.prices
    assert again.sources == catalogue.sources


def _doc(**price: Any) -> dict[str, Any]:
    row = {"key": "ec2/x", "region": "us-east-1", "usd": 1.0, "unit": "hour", "source": "s"}
    row.update(price)
    return {
        "as_of": "2026-12-06",
        "sources": {"s": {"title": "t", "url": "https://e.test", "date": "2026-01-01"}},
        "prices": [row],
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"source": "nope"}, "names source 'nope', which is not under sources"),
        ({"usd": -1}, "usd must be a number >= 0"),
        ({"usd": "cheap"}, "usd must be a number >= 0"),
    ],
)
def test_a_malformed_price_is_named(change: dict[str, Any], message: str) -> None:
    with pytest.raises(CatalogueError, match=message):
        parse(_doc(**change), "test")


def test_a_price_without_a_unit_says_which_fields_it_lacks() -> None:
    doc = _doc()
    del doc["prices"][0]["unit"]
    with pytest.raises(CatalogueError, match=r"prices\[0\] lacks unit"):
        parse(doc, "test")


def test_a_source_without_a_date_is_refused() -> None:
    doc = _doc()
    doc["sources"]["s"]["date"] = "last spring"
    with pytest.raises(CatalogueError, match=r"sources\.s: date 'last spring' is not YYYY-MM-DD"):
        parse(doc, "test")


def test_a_missing_price_names_the_key_the_region_and_the_way_out(catalogue: Catalogue) -> None:
    with pytest.raises(CatalogueError) as err:
        catalogue.price("ec2/r6g.2xlarge", "ap-south-1")
    text = str(err.value)
    assert "ec2/r6g.2xlarge in ap-south-1" in text
    assert "it has ec2/r6g.2xlarge for us-east-1" in text
    assert "--set price.ec2/r6g.2xlarge=USD" in text
    assert "adpulse cost catalogue refresh" in text


def test_an_override_wins_and_says_so(catalogue: Catalogue) -> None:
    cheaper = catalogue.with_overrides({"ec2/r6g.2xlarge": 0.3})
    price = cheaper.price("ec2/r6g.2xlarge", "us-east-1")
    assert (price.usd, price.source, price.unit) == (0.3, "override", "hour")
    assert catalogue.price("ec2/r6g.2xlarge", "us-east-1").usd == 0.4032


def test_the_bundled_path_is_in_the_package() -> None:
    assert BUNDLED.name == "catalogue.yaml" and BUNDLED.parent.name == "cost"
