"""cost.pricelist: the query per key, the parser on real-shaped Price List items (hand-checked
prices), its refusals, and the paginated fetch with the exact request (botocore Stubber: moto
5.2.5 has no `pricing` model)."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from cost.pricelist import (
    PriceListError,
    fetch_prices,
    parse_products,
    query,
    reason,
    refreshable,
)

FIXTURES = Path(__file__).parent / "fixtures"
TODAY = dt.date(2026, 12, 6)
# Every key of /tmp/cost/catalogue-format.md (one type per parametrised family).
KEYS = [
    "ec2/r6g.2xlarge", "ebs/gp3/storage", "ebs/gp3/iops", "ebs/gp3/throughput",
    "ebs/snapshot/storage", "msk/kafka.m7g.large", "msk/storage",
    "elasticache/redis/cache.t4g.small", "elasticache/backup/storage",
    "rds/postgres/db.t4g.micro/single-az", "rds/postgres/db.m6g.large/multi-az",
    "rds/gp3/storage/single-az", "rds/gp3/storage/multi-az", "rds/backup/storage",
    "elb/alb", "elb/alb/lcu", "vpc/nat", "vpc/nat/data", "vpc/endpoint", "vpc/endpoint/data",
    "vpc/public-ipv4", "transfer/inter-az", "transfer/internet-out", "s3/standard/storage",
    "s3/put", "s3/get", "cloudwatch/alarm", "cloudwatch/metric", "cloudwatch/logs/ingest",
    "cloudwatch/logs/storage", "secretsmanager/secret", "secretsmanager/api", "sns/publish",
    "kms/key", "kms/requests", "kinesis/shard", "kinesis/put-units", "kinesis/on-demand/stream",
    "kinesis/on-demand/ingest", "kinesis/on-demand/retrieve", "clickhouse-cloud/scale/compute",
    "clickhouse-cloud/enterprise/compute", "clickhouse-cloud/storage", "route53/zone",
]  # fmt: skip


def fixture(name: str) -> list[str]:
    """A fixture's PriceList as get_products returns it: one JSON string per product."""
    doc = json.loads((FIXTURES / name).read_text())
    assert doc["comment"], f"{name} must say where its shape comes from"
    return [json.dumps(item) for item in doc["PriceList"]]


def items(name: str) -> list[dict[str, Any]]:
    return [json.loads(s) for s in fixture(name)]


def pricing_stub() -> tuple[Any, Stubber]:
    client = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")  # fmt: skip
    return client, Stubber(client)


def test_ec2_query_is_linux_shared_on_demand_in_the_region() -> None:
    assert query("ec2/r6g.2xlarge", "eu-west-1").request() == {
        "ServiceCode": "AmazonEC2",
        "Filters": [
            {"Type": "TERM_MATCH", "Field": "regionCode", "Value": "eu-west-1"},
            {"Type": "TERM_MATCH", "Field": "instanceType", "Value": "r6g.2xlarge"},
            {"Type": "TERM_MATCH", "Field": "operatingSystem", "Value": "Linux"},
            {"Type": "TERM_MATCH", "Field": "tenancy", "Value": "Shared"},
            {"Type": "TERM_MATCH", "Field": "preInstalledSw", "Value": "NA"},
            {"Type": "TERM_MATCH", "Field": "capacitystatus", "Value": "Used"},
        ],
        "FormatVersion": "aws_v1",
    }


@pytest.mark.parametrize(
    ("key", "service", "filters", "usagetype"),
    [
        ("msk/kafka.m5.large", "AmazonMSK",
         {"productFamily": "Managed Streaming for Apache Kafka (MSK)", "computeFamily": "m5.large"},
         "Kafka.m5.large"),
        ("elasticache/redis/cache.r6g.large", "AmazonElastiCache",
         {"productFamily": "Cache Instance", "cacheEngine": "Redis",
          "instanceType": "cache.r6g.large"}, "NodeUsage:cache.r6g.large"),
        ("rds/postgres/db.t4g.micro/single-az", "AmazonRDS",
         {"productFamily": "Database Instance", "databaseEngine": "PostgreSQL",
          "instanceType": "db.t4g.micro", "deploymentOption": "Single-AZ"},
         "InstanceUsage:db.t4g.micro"),
        ("rds/postgres/db.t4g.micro/multi-az", "AmazonRDS",
         {"productFamily": "Database Instance", "databaseEngine": "PostgreSQL",
          "instanceType": "db.t4g.micro", "deploymentOption": "Multi-AZ"},
         "Multi-AZUsage:db.t4g.micro"),
        ("rds/gp3/storage/multi-az", "AmazonRDS",
         {"productFamily": "Database Storage", "databaseEngine": "PostgreSQL",
          "deploymentOption": "Multi-AZ"}, "RDS:Multi-AZ-GP3-Storage"),
        ("ebs/gp3/iops", "AmazonEC2",
         {"productFamily": "System Operation", "volumeApiName": "gp3"}, "EBS:VolumeP-IOPS.gp3"),
        ("vpc/endpoint", "AmazonVPC",
         {"productFamily": "VpcEndpoint", "endpointType": "PrivateLink"}, "VpcEndpoint-Hours"),
    ],
)  # fmt: skip
def test_queries_of_the_families(key: str, service: str, filters: dict[str, str],
                                 usagetype: str) -> None:  # fmt: skip
    q = query(key, "us-east-1")
    assert (q.service_code, q.filters, q.usagetype) == (service, filters, usagetype)


@pytest.mark.parametrize("key", KEYS)
def test_every_catalogue_key_has_a_query_or_a_reason(key: str) -> None:
    if refreshable(key):
        assert query(key, "us-west-2").unit  # the catalogue unit the price is stored in
        return
    with pytest.raises(PriceListError) as caught:
        query(key, "us-west-2")
    assert key in str(caught.value)
    assert reason(key) in str(caught.value)
    assert "no Price List query is defined" not in reason(key), f"{key}: list it with a reason"


def test_the_refreshable_keys_are_the_ones_with_confirmed_filters() -> None:
    assert [k for k in KEYS if not refreshable(k)] == [
        "msk/storage", "elasticache/backup/storage", "transfer/inter-az",
        "transfer/internet-out", "s3/put", "s3/get", "cloudwatch/alarm", "cloudwatch/metric",
        "cloudwatch/logs/ingest", "cloudwatch/logs/storage", "secretsmanager/secret",
        "secretsmanager/api", "sns/publish", "kms/key", "kms/requests", "kinesis/shard",
        "kinesis/put-units", "kinesis/on-demand/stream", "kinesis/on-demand/ingest",
        "kinesis/on-demand/retrieve", "clickhouse-cloud/scale/compute",
        "clickhouse-cloud/enterprise/compute", "clickhouse-cloud/storage", "route53/zone",
    ]  # fmt: skip


def test_the_bundled_catalogue_and_the_queries_agree_on_keys_and_units() -> None:
    from cost.catalogue import load

    bundled = load()
    for (key, region), price in bundled.prices.items():
        if refreshable(key):
            unit = query(key, region).unit
            assert price.unit == unit, (
                f"{key}: refresh would store {unit}, the catalogue has {price.unit}"
            )
        else:
            assert "no Price List query is defined" not in reason(key), f"{key}: add a reason"


@pytest.mark.parametrize(
    ("key", "name", "usd"),
    [
        ("ec2/r6g.2xlarge", "pricelist-ec2-r6g.2xlarge.json", 0.4032),  # not Reserved 0.254
        ("ebs/gp3/throughput", "pricelist-ebs-gp3-throughput.json", 0.04),  # 40.96 / 1024
        ("elasticache/redis/cache.r6g.large", "pricelist-elasticache-r6g.large-redis.json", 0.206),
        ("rds/postgres/db.t4g.micro/multi-az",
         "pricelist-rds-postgres-db.t4g.micro-multi-az.json", 0.032),
        ("elb/alb", "pricelist-elb-alb.json", 0.0225),
        ("elb/alb/lcu", "pricelist-elb-alb.json", 0.008),
        ("s3/standard/storage", "pricelist-s3-standard-storage.json", 0.023),  # first tier
        ("msk/kafka.m5.large", "pricelist-msk-kafka.m5.large.json", 0.21),  # USE1-, "hours"
    ],
)  # fmt: skip
def test_parse_finds_the_on_demand_first_tier_price(key: str, name: str, usd: float) -> None:
    got, note = parse_products(query(key, "us-east-1"), fixture(name))
    assert got == pytest.approx(usd, rel=1e-12)
    assert "SKU TESTSKU" in note


def test_the_note_shows_the_unit_conversion() -> None:
    q = query("ebs/gp3/throughput", "us-east-1")
    _, note = parse_products(q, fixture("pricelist-ebs-gp3-throughput.json"))
    assert "40.9600000000 USD per GiBps-mo / 1024 = 0.04 USD per mbps-month" in note


def test_a_region_prefixed_usage_type_matches_in_its_region() -> None:
    [item] = items("pricelist-ec2-r6g.2xlarge.json")
    item["product"]["attributes"].update(
        usagetype="EU-BoxUsage:r6g.2xlarge", regionCode="eu-west-1"
    )
    assert parse_products(query("ec2/r6g.2xlarge", "eu-west-1"), [json.dumps(item)])[0] == 0.4032


def test_a_product_of_another_region_is_not_taken() -> None:
    with pytest.raises(PriceListError, match=r"no BoxUsage:r6g.2xlarge product .* eu-west-1"):
        parse_products(query("ec2/r6g.2xlarge", "eu-west-1"),
                       fixture("pricelist-ec2-r6g.2xlarge.json"))  # fmt: skip


def test_two_matching_products_are_refused_naming_key_region_and_skus() -> None:
    [item] = items("pricelist-ec2-r6g.2xlarge.json")
    twin = copy.deepcopy(item)
    twin["product"]["sku"] = "TESTSKUEC2TWIN00"
    with pytest.raises(PriceListError) as caught:
        parse_products(query("ec2/r6g.2xlarge", "us-east-1"), [json.dumps(item), json.dumps(twin)])
    message = str(caught.value)
    for part in (
        "ambiguous",
        "ec2/r6g.2xlarge in us-east-1",
        "TESTSKUEC2R6G2XL",
        "TESTSKUEC2TWIN00",
    ):
        assert part in message


def test_two_first_tiers_in_one_product_are_refused() -> None:
    [item] = items("pricelist-ec2-r6g.2xlarge.json")
    [term] = item["terms"]["OnDemand"].values()
    [dim] = term["priceDimensions"].values()
    term["priceDimensions"]["TESTSKUEC2R6G2XL.JRTCKXETXF.SECOND0000"] = {**dim}
    with pytest.raises(PriceListError, match="ambiguous"):
        parse_products(query("ec2/r6g.2xlarge", "us-east-1"), [json.dumps(item)])


def test_an_empty_answer_names_the_query() -> None:
    with pytest.raises(PriceListError) as caught:
        parse_products(query("vpc/nat", "us-west-2"), [])
    assert str(caught.value).startswith(
        "the AWS Price List has no NatGateway-Hours product for vpc/nat in us-west-2 "
        "(AmazonEC2 {'productFamily': 'NAT Gateway'}); it returned nothing"
    )


def test_an_unexpected_unit_is_refused() -> None:
    [item] = items("pricelist-ec2-r6g.2xlarge.json")
    [term] = item["terms"]["OnDemand"].values()
    [dim] = term["priceDimensions"].values()
    dim["unit"] = "Quantity"
    with pytest.raises(PriceListError, match="per 'Quantity', not Hrs"):
        parse_products(query("ec2/r6g.2xlarge", "us-east-1"), [json.dumps(item)])


def test_a_product_without_on_demand_terms_is_not_a_price() -> None:
    [item] = items("pricelist-ec2-r6g.2xlarge.json")
    del item["terms"]["OnDemand"]
    with pytest.raises(PriceListError, match="without an on-demand first-tier price"):
        parse_products(query("ec2/r6g.2xlarge", "us-east-1"), [json.dumps(item)])


def test_garbage_is_refused() -> None:
    with pytest.raises(PriceListError, match="not a product document"):
        parse_products(query("ec2/r6g.2xlarge", "us-east-1"), ["<html>throttled</html>"])


def test_fetch_pages_through_get_products_with_the_exact_request() -> None:
    client, stub = pricing_stub()
    request = query("ec2/r6g.2xlarge", "us-east-1").request()
    other = items("pricelist-elb-alb.json")[0]  # page one holds an unrelated product
    stub.add_response("get_products", {"FormatVersion": "aws_v1", "NextToken": "page-2",
                                       "PriceList": [json.dumps(other)]}, request)  # fmt: skip
    ec2 = fixture("pricelist-ec2-r6g.2xlarge.json")
    stub.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": ec2},
                      {**request, "NextToken": "page-2"})  # fmt: skip
    with stub:
        prices, problems = fetch_prices(["ec2/r6g.2xlarge", "cloudwatch/alarm"], "us-east-1",
                                        client, TODAY)  # fmt: skip
    stub.assert_no_pending_responses()
    [price] = prices
    assert (price.key, price.region, price.usd, price.unit, price.source) == (
        "ec2/r6g.2xlarge",
        "us-east-1",
        0.4032,
        "hour",
        "aws-price-list-2026-12-06",
    )
    assert price.note.startswith("$0.4032 per On Demand Linux r6g.2xlarge Instance Hour")
    assert problems == [
        "cloudwatch/alarm cannot be refreshed from the AWS Price List: CloudWatch products are "
        "not mapped"
    ]


def test_fetch_reports_an_unusable_answer_and_goes_on() -> None:
    client, stub = pricing_stub()
    stub.add_response("get_products", {"PriceList": []},
                      query("vpc/nat", "us-east-1").request())  # fmt: skip
    stub.add_response("get_products", {"PriceList": fixture("pricelist-elb-alb.json")},
                      query("elb/alb/lcu", "us-east-1").request())  # fmt: skip
    with stub:
        prices, problems = fetch_prices(["vpc/nat", "elb/alb/lcu"], "us-east-1", client, TODAY)
    assert [(p.key, p.usd, p.unit) for p in prices] == [("elb/alb/lcu", 0.008, "lcu-hour")]
    [problem] = problems
    assert problem.startswith("the AWS Price List has no NatGateway-Hours product for vpc/nat")


def test_fetch_lets_aws_errors_through_for_the_caller_to_decide() -> None:
    from botocore.exceptions import ClientError

    client, stub = pricing_stub()
    stub.add_client_error("get_products", "ThrottlingException", "Rate exceeded")
    with stub, pytest.raises(ClientError, match="ThrottlingException"):
        fetch_prices(["ec2/r6g.2xlarge"], "us-east-1", client, TODAY)
