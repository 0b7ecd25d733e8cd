"""The AWS Price List query for a catalogue key, the parser of its answer (pure), and the fetch.

A query is a service code, TERM_MATCH filters, the usage type the product must carry (without
its region prefix: `USE1-`, `EU-`, ...) and the unit AWS bills it in. The answer must hold exactly
one such product with one on-demand first-tier (`beginRange == "0"`) USD price; anything else is a
PriceListError naming the key, the region and the SKUs found, never a guess. Filters and usage
types follow the Price List attributes as public tools query them (see tests/cost/fixtures).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from adpulse.errors import AdpulseError
from cost.catalogue import Price, Source

SOURCE_TITLE = "AWS Price List Query API (pricing.get_products)"
SOURCE_URL = "https://pricing.us-east-1.amazonaws.com"
PRICING_REGION = "us-east-1"  # the Query API's endpoint; it answers for every region

# Keys with no query, and why: their refresh keeps the catalogue's price and says so.
NOT_REFRESHABLE = {
    "msk/storage": "the usage type and unit of MSK broker storage are not confirmed",
    "elasticache/backup/": "the usage type of ElastiCache backup storage is not confirmed",
    "transfer/inter-az": "inter-AZ transfer is a from/to pair under AWSDataTransfer, not mapped",
    "transfer/internet-out": "internet egress is tiered around the account-wide free 100 GB",
    "s3/put": "S3 request tiers are not mapped",
    "s3/get": "S3 request tiers are not mapped",
    "cloudwatch/": "CloudWatch products are not mapped",
    "secretsmanager/": "Secrets Manager products are not mapped",
    "sns/": "SNS products are not mapped",
    "kms/": "KMS products are not mapped",
    "kinesis/": "Kinesis products are not mapped",
    "route53/": "Route 53 products are not mapped",
    "clickhouse-cloud/": "ClickHouse Cloud is not an AWS product (see clickhouse.com/pricing)",
}


class PriceListError(AdpulseError):
    """A key has no Price List query, or its answer is empty, ambiguous or malformed."""


@dataclass(frozen=True)
class Query:
    key: str
    region: str
    service_code: str
    filters: dict[str, str]  # TERM_MATCH field -> value (regionCode is added)
    usagetype: str  # without the region prefix
    units: tuple[str, ...]  # what AWS may call the unit
    unit: str  # the catalogue's unit
    divide_by: float = 1.0  # AWS price / divide_by = catalogue price (GiBps-mo -> MB/s-month)

    def request(self) -> dict[str, Any]:
        """The get_products parameters (without NextToken)."""
        fields = {"regionCode": self.region, **self.filters}
        return {
            "ServiceCode": self.service_code,
            "Filters": [{"Type": "TERM_MATCH", "Field": f, "Value": v} for f, v in fields.items()],
            "FormatVersion": "aws_v1",
        }

    def matches(self, usagetype: str) -> bool:
        """Whether a product's usage type is ours, with or without a region prefix."""
        pattern = rf"(?:[A-Z]{{2,4}}[0-9]?-)?{re.escape(self.usagetype)}"
        return re.fullmatch(pattern, usagetype, re.IGNORECASE) is not None


# (service code, usage type, AWS units, catalogue unit, divisor, filters) of the fixed keys.
_Spec = tuple[str, str, tuple[str, ...], str, float, dict[str, str]]
# fmt: off
_HOUR = ("Hrs",)
_GP3 = {"volumeApiName": "gp3"}
_ALB = {"productFamily": "Load Balancer-Application"}
_NAT = {"productFamily": "NAT Gateway"}
_ENDPOINT = {"productFamily": "VpcEndpoint", "endpointType": "PrivateLink"}
_FIXED: dict[str, _Spec] = {
    "ebs/gp3/storage": ("AmazonEC2", "EBS:VolumeUsage.gp3", ("GB-Mo",), "gb-month", 1,
                        {"productFamily": "Storage", **_GP3}),
    "ebs/gp3/iops": ("AmazonEC2", "EBS:VolumeP-IOPS.gp3", ("IOPS-Mo",), "iops-month", 1,
                     {"productFamily": "System Operation", **_GP3}),
    # AWS lists $ per GiBps-month; gp3 throughput is provisioned (and priced by us) in MiB/s.
    "ebs/gp3/throughput": ("AmazonEC2", "EBS:VolumeP-Throughput.gp3", ("GiBps-mo",),
                           "mbps-month", 1024, {"productFamily": "Provisioned Throughput", **_GP3}),
    "ebs/snapshot/storage": ("AmazonEC2", "EBS:SnapshotUsage", ("GB-Mo",), "gb-month", 1,
                             {"productFamily": "Storage Snapshot"}),
    "rds/backup/storage": ("AmazonRDS", "RDS:ChargedBackupUsage", ("GB-Mo",), "gb-month", 1,
                           {"productFamily": "Storage Snapshot", "databaseEngine": "PostgreSQL"}),
    "elb/alb": ("AWSELB", "LoadBalancerUsage", _HOUR, "hour", 1, _ALB),
    "elb/alb/lcu": ("AWSELB", "LCUUsage", ("LCU-Hrs",), "lcu-hour", 1, _ALB),
    "vpc/nat": ("AmazonEC2", "NatGateway-Hours", _HOUR, "hour", 1, _NAT),
    "vpc/nat/data": ("AmazonEC2", "NatGateway-Bytes", ("GB",), "gb", 1, _NAT),
    "vpc/endpoint": ("AmazonVPC", "VpcEndpoint-Hours", _HOUR, "endpoint-az-hour", 1, _ENDPOINT),
    "vpc/endpoint/data": ("AmazonVPC", "VpcEndpoint-Bytes", ("GB",), "gb", 1, _ENDPOINT),
    "vpc/public-ipv4": ("AmazonVPC", "PublicIPv4:InUseAddress", _HOUR, "hour", 1,
                        {"group": "VPCPublicIPv4Address"}),
    # Tiered: the first tier (the first 50 TB a month) is the one `beginRange == "0"` picks.
    "s3/standard/storage": ("AmazonS3", "TimedStorage-ByteHrs", ("GB-Mo",), "gb-month", 1,
                            {"productFamily": "Storage", "volumeType": "Standard"}),
}
_AZ = {"single-az": ("Single-AZ", "InstanceUsage", "RDS:GP3-Storage"),
       "multi-az": ("Multi-AZ", "Multi-AZUsage", "RDS:Multi-AZ-GP3-Storage")}
_LINUX = {"operatingSystem": "Linux", "tenancy": "Shared", "preInstalledSw": "NA",
          "capacitystatus": "Used"}
_MSK = {"productFamily": "Managed Streaming for Apache Kafka (MSK)"}
_REDIS = {"productFamily": "Cache Instance", "cacheEngine": "Redis"}
_PG_INSTANCE = {"productFamily": "Database Instance", "databaseEngine": "PostgreSQL"}
_PG_STORAGE = {"productFamily": "Database Storage", "databaseEngine": "PostgreSQL"}
# fmt: on


def query(key: str, region: str) -> Query:
    """The Price List query for `key` in `region`, or PriceListError saying why there is none."""
    if key in _FIXED:
        service, usagetype, units, unit, divide_by, filters = _FIXED[key]
        return Query(key, region, service, filters, usagetype, units, unit, divide_by)
    match key.split("/"):
        case ["ec2", kind]:
            ec2 = {"instanceType": kind, **_LINUX}
            return Query(key, region, "AmazonEC2", ec2, f"BoxUsage:{kind}", _HOUR, "hour")
        case ["msk", kind] if kind.startswith("kafka."):  # computeFamily is m5.large, not kafka.
            broker = kind.removeprefix("kafka.")
            msk = {**_MSK, "computeFamily": broker}
            return Query(key, region, "AmazonMSK", msk, f"Kafka.{broker}", ("hours", "Hrs"), "hour")
        case ["elasticache", "redis", kind]:
            redis = {**_REDIS, "instanceType": kind}
            return Query(
                key, region, "AmazonElastiCache", redis, f"NodeUsage:{kind}", _HOUR, "hour"
            )
        case ["rds", "postgres", kind, az] if az in _AZ:
            rds = {**_PG_INSTANCE, "instanceType": kind, "deploymentOption": _AZ[az][0]}
            return Query(key, region, "AmazonRDS", rds, f"{_AZ[az][1]}:{kind}", _HOUR, "hour")
        case ["rds", "gp3", "storage", az] if az in _AZ:
            disk = {**_PG_STORAGE, "deploymentOption": _AZ[az][0]}
            return Query(key, region, "AmazonRDS", disk, _AZ[az][2], ("GB-Mo",), "gb-month")
    raise PriceListError(f"{key} cannot be refreshed from the AWS Price List: {reason(key)}")


def reason(key: str) -> str:
    """Why `key` has no query."""
    for prefix, why in NOT_REFRESHABLE.items():
        if key == prefix or (prefix.endswith("/") and key.startswith(prefix)):
            return why
    return "no Price List query is defined for this key (see cost/pricelist.py)"


def refreshable(key: str) -> bool:
    try:
        query(key, PRICING_REGION)
    except PriceListError:
        return False
    return True


def _first_tier(sku: str, term: Any) -> list[tuple[str, dict[str, Any]]]:
    dims = (term or {}).get("priceDimensions") or {}
    return [(f"{sku} ({code})", d) for code, d in dims.items() if d.get("beginRange") == "0"]


def parse_products(q: Query, items: Iterable[str]) -> tuple[float, str]:
    """The catalogue-unit USD price in `items` (get_products' PriceList strings), and a note."""
    where = f"{q.key} in {q.region} ({q.service_code} {q.filters})"
    others: list[str] = []
    found: list[tuple[str, dict[str, Any]]] = []
    for raw in items:
        try:
            item = json.loads(raw)
            product, terms = item["product"], item.get("terms") or {}
            attrs, sku = product.get("attributes") or {}, str(product.get("sku", "?"))
        except (ValueError, TypeError, KeyError, AttributeError):
            raise PriceListError(
                f"the AWS Price List answer for {where} is not a product "
                f"document: {str(raw)[:80]!r}"
            ) from None
        usagetype = str(attrs.get("usagetype", ""))
        if not q.matches(usagetype) or attrs.get("regionCode", q.region) != q.region:
            others.append(f"{sku} {usagetype}")
            continue
        tiers = [
            t for term in (terms.get("OnDemand") or {}).values() for t in _first_tier(sku, term)
        ]
        found.extend(tiers)
        if not tiers:
            others.append(f"{sku} {usagetype} without an on-demand first-tier price")
    if not found:
        seen = f"; it returned {', '.join(others[:8])}" if others else "; it returned nothing"
        raise PriceListError(
            f"the AWS Price List has no {q.usagetype} product for {where}{seen}; if AWS "
            "renamed it, fix the query in cost/pricelist.py"
        )
    if len(found) > 1:
        raise PriceListError(
            f"the AWS Price List is ambiguous for {where}: {len(found)} "
            f"{q.usagetype} prices, SKUs {', '.join(s for s, _ in found)}"
        )
    sku, dim = found[0]
    unit, usd = dim.get("unit"), (dim.get("pricePerUnit") or {}).get("USD")
    if unit not in q.units:
        raise PriceListError(
            f"the AWS Price List bills {where} per {unit!r}, not "
            f"{' or '.join(q.units)} (SKU {sku}); check the unit in cost/pricelist.py"
        )
    try:
        value = float(str(usd))
    except ValueError:
        raise PriceListError(f"SKU {sku} for {where} has no USD price: {usd!r}") from None
    per = (
        f" / {q.divide_by:g} = {value / q.divide_by:g} USD per {q.unit}" if q.divide_by != 1 else ""
    )
    note = f"{dim.get('description', '').strip()} [SKU {sku}: {usd} USD per {unit}{per}]"
    return value / q.divide_by, note.strip()


def source(today: dt.date) -> Source:
    day = today.isoformat()
    return Source(f"aws-price-list-{day}", SOURCE_TITLE, SOURCE_URL, day)


def fetch_prices(
    keys: Iterable[str], region: str, client: Any, today: dt.date | None = None
) -> tuple[list[Price], list[str]]:
    """Today's prices of `keys` in `region`, and a line per key that could not be read.

    `client` is a boto3 `pricing` client. botocore errors (no credentials, no network, access
    denied) propagate: the caller decides between failing and falling back.
    """
    src = source(today or dt.date.today())
    prices: list[Price] = []
    problems: list[str] = []
    for key in dict.fromkeys(keys):
        try:
            q = query(key, region)
            pages = client.get_paginator("get_products").paginate(**q.request())
            usd, note = parse_products(q, (i for page in pages for i in page.get("PriceList", [])))
        except PriceListError as exc:
            problems.append(str(exc))
            continue
        prices.append(Price(key, region, usd, q.unit, src.id, note))
    return prices, problems


def pricing_client(**kwargs: Any) -> Any:
    """A boto3 Price List client (us-east-1 endpoint); kwargs go to boto3.client."""
    import boto3

    return boto3.client("pricing", region_name=PRICING_REGION, **kwargs)
