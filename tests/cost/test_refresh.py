"""cost.refresh: merging AWS prices into a catalogue, writing it, and `--live-prices` falling back
to the base catalogue with one warning when AWS cannot be reached (Stubber errors, a client
pointed at a closed port, a client with no credentials)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from cost import catalogue as cat
from cost.catalogue import Catalogue, CatalogueError, Price
from cost.pricelist import query
from cost.refresh import RefreshError, live, refresh, write

FIXTURES = Path(__file__).parent / "fixtures"
TODAY = dt.date(2026, 12, 6)
SOURCE = "aws-pages-2026-07-20"
BASE = {
    "as_of": "2026-07-20",
    "hours_per_month": 730,
    "sources": {
        SOURCE: {"title": "AWS pricing pages", "date": "2026-07-20",
                 "url": "https://aws.amazon.com/ec2/pricing/on-demand/"},
    },
    "prices": [
        {"key": "ec2/r6g.2xlarge", "region": "us-east-1", "usd": 0.40, "unit": "hour",
         "source": SOURCE},
        {"key": "ec2/r6g.2xlarge", "region": "eu-west-1", "usd": 0.45, "unit": "hour",
         "source": SOURCE},
        {"key": "cloudwatch/alarm", "region": "us-east-1", "usd": 0.10, "unit": "alarm-month",
         "source": SOURCE},
    ],
}  # fmt: skip
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens, the connect is refused


@pytest.fixture
def base() -> Catalogue:
    return cat.parse(BASE, "bundled")


def price_list(name: str) -> list[str]:
    return [json.dumps(i) for i in json.loads((FIXTURES / name).read_text())["PriceList"]]


def stubbed() -> tuple[Any, Stubber]:
    client = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")  # fmt: skip
    return client, Stubber(client)


def answer(stub: Stubber, key: str, region: str, fixture: str) -> None:
    request = query(key, region).request()
    stub.add_response("get_products", {"PriceList": price_list(fixture)}, request)


def unreachable_client() -> Any:
    return boto3.client(
        "pricing", region_name="us-east-1", endpoint_url=UNREACHABLE,
        aws_access_key_id="testing", aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=2),
    )  # fmt: skip


def test_refresh_replaces_the_fetched_prices_and_keeps_the_rest(base: Catalogue) -> None:
    client, stub = stubbed()
    answer(stub, "ec2/r6g.2xlarge", "us-east-1", "pricelist-ec2-r6g.2xlarge.json")
    with stub:
        got, problems = refresh(["us-east-1"], ["ec2/r6g.2xlarge", "cloudwatch/alarm"],
                                client=client, base=base, today=TODAY)  # fmt: skip
    stub.assert_no_pending_responses()
    fresh = got.price("ec2/r6g.2xlarge", "us-east-1")
    assert (fresh.usd, fresh.source) == (0.4032, "aws-price-list-2026-12-06")
    assert got.source_of(fresh).url == "https://pricing.us-east-1.amazonaws.com"
    assert got.source_of(fresh).date == "2026-12-06"
    assert got.price("ec2/r6g.2xlarge", "eu-west-1") == base.price("ec2/r6g.2xlarge", "eu-west-1")
    assert got.price("cloudwatch/alarm", "us-east-1") == base.price("cloudwatch/alarm", "us-east-1")
    assert got.as_of == "2026-12-06"
    assert problems == [
        "cloudwatch/alarm: kept the catalogue's price: CloudWatch products are not mapped"
    ]


def test_refresh_defaults_to_the_base_keys_in_each_region(base: Catalogue) -> None:
    client, stub = stubbed()
    answer(stub, "ec2/r6g.2xlarge", "us-east-1", "pricelist-ec2-r6g.2xlarge.json")
    answer(stub, "ec2/r6g.2xlarge", "eu-west-1", "pricelist-ec2-r6g.2xlarge.json")
    with stub:
        got, problems = refresh(["us-east-1", "eu-west-1"], client=client, base=base, today=TODAY)
    stub.assert_no_pending_responses()
    assert got.price("ec2/r6g.2xlarge", "us-east-1").usd == 0.4032
    # The us-east-1 product is not eu-west-1's: refused, and the old price kept.
    assert got.price("ec2/r6g.2xlarge", "eu-west-1").usd == 0.45
    assert any("eu-west-1" in p and p.endswith("kept the catalogue's price") for p in problems)


def test_refresh_with_nothing_fetched_returns_the_base_unchanged(base: Catalogue) -> None:
    client, stub = stubbed()
    stub.add_response("get_products", {"PriceList": []}, query("vpc/nat", "us-east-1").request())
    with stub:
        got, problems = refresh(["us-east-1"], ["vpc/nat"], client=client, base=base, today=TODAY)
    assert got is base
    assert len(problems) == 1


def test_refresh_without_a_network_changes_nothing_and_says_what_to_do(base: Catalogue) -> None:
    with pytest.raises(RefreshError) as caught:
        refresh(["us-east-1"], ["ec2/r6g.2xlarge"], client=unreachable_client(), base=base,
                today=TODAY)  # fmt: skip
    message = str(caught.value)
    assert "Could not connect to the endpoint URL" in message
    assert "pricing:GetProducts" in message and "the catalogue was not changed" in message


def test_write_then_load_gives_the_same_catalogue(base: Catalogue, tmp_path: Path) -> None:
    client, stub = stubbed()
    answer(stub, "ec2/r6g.2xlarge", "us-east-1", "pricelist-ec2-r6g.2xlarge.json")
    with stub:
        got, _ = refresh(["us-east-1"], ["ec2/r6g.2xlarge"], client=client, base=base, today=TODAY)
    path = tmp_path / "catalogue.yaml"
    write(got, path)
    text = path.read_text()
    assert text.startswith("# adpulse price catalogue")
    assert "Written on 2026-12-06" in text
    again = cat.load(path)
    assert cat.to_document(again) == cat.to_document(got)
    assert again.price("ec2/r6g.2xlarge", "us-east-1").note.startswith("$0.4032 per On Demand")
    assert [p.name for p in tmp_path.iterdir()] == ["catalogue.yaml"]


def test_write_refuses_a_catalogue_that_load_would_refuse(base: Catalogue, tmp_path: Path) -> None:
    orphan = Price("ec2/r6g.large", "us-east-1", 0.1008, "hour", "nowhere")
    broken = Catalogue(
        base.as_of, base.sources, {**base.prices, ("ec2/r6g.large", "us-east-1"): orphan}
    )
    with pytest.raises(CatalogueError, match="names source 'nowhere'"):
        write(broken, tmp_path / "catalogue.yaml")
    assert not list(tmp_path.iterdir())


def test_live_prices_the_keys_it_can_and_warns_about_the_rest(base: Catalogue) -> None:
    client, stub = stubbed()
    answer(stub, "ec2/r6g.2xlarge", "us-east-1", "pricelist-ec2-r6g.2xlarge.json")
    with stub:
        got, warnings = live(["ec2/r6g.2xlarge", "cloudwatch/alarm"], "us-east-1", base,
                             client=client, today=TODAY)  # fmt: skip
    assert got.origin == "live"
    assert got.price("ec2/r6g.2xlarge", "us-east-1").usd == 0.4032
    assert got.price("cloudwatch/alarm", "us-east-1").usd == 0.10
    assert warnings == [
        "no live price for cloudwatch/alarm (no AWS Price List query): from the bundled "
        "catalogue as of 2026-07-20"
    ]


def test_live_falls_back_when_aws_refuses(base: Catalogue) -> None:
    client, stub = stubbed()
    stub.add_client_error("get_products", "AccessDeniedException",
                          "User is not authorized to perform: pricing:GetProducts")  # fmt: skip
    with stub:
        got, warnings = live(["ec2/r6g.2xlarge"], "us-east-1", base, client=client, today=TODAY)
    assert got is base
    assert warnings == [
        "live prices unavailable (AccessDeniedException: User is not authorized to perform: "
        "pricing:GetProducts): using the bundled catalogue as of 2026-07-20"
    ]


def test_live_falls_back_without_a_network(base: Catalogue) -> None:
    got, warnings = live(["ec2/r6g.2xlarge"], "us-east-1", base, client=unreachable_client(),
                         today=TODAY)  # fmt: skip
    assert got is base
    assert warnings == [
        f'live prices unavailable (Could not connect to the endpoint URL: "{UNREACHABLE}/"): '
        "using the bundled catalogue as of 2026-07-20"
    ]


@pytest.mark.usefixtures("no_aws_credentials")
def test_live_falls_back_without_credentials(base: Catalogue) -> None:
    client = boto3.session.Session().client("pricing", region_name="us-east-1")
    got, warnings = live(["ec2/r6g.2xlarge"], "us-east-1", base, client=client, today=TODAY)
    assert got is base
    assert warnings == [
        "live prices unavailable (Unable to locate credentials): using the bundled catalogue "
        "as of 2026-07-20"
    ]
