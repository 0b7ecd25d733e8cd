"""What a stack actually cost: Cost Explorer's monthly unblended cost of the stack's tagged
resources, by AWS service, with the services mapped onto coarse groups of report components.

Cost Explorer bills by service, not by role, so the comparison with `cost report` is by group:
ClickHouse and the app hosts are one EC2 bill, "EC2 - Other" mixes their EBS volumes with NAT
and data transfer, and public IPv4 (the ALB's too) is billed under VPC. Hence one group for
hosts, network and edge (GROUPS). Costs count only from the day `Stack` and `Project` became
cost allocation tags.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from adpulse.errors import AdpulseError

PROJECT = "adpulse"  # the Project tag stacks.default_tags sets (stacks/config/names.py)
MAX_MONTHS = 12  # Cost Explorer keeps 13 months by default: 12 full ones and this one
OTHER = "other"  # services the map does not know (Tax, ...), shown rather than dropped

# Report components (cost.lines.COMPONENTS) grouped so that each AWS service bill is in one group.
GROUPS: dict[str, tuple[str, ...]] = {
    "hosts+network": ("clickhouse", "services", "network", "edge"),
    "kafka": ("kafka",),
    "cache": ("cache",),
    "metadata-db": ("metadata-db",),
    "backups": ("backups",),
    "observability": ("observability",),
    "security": ("security",),
}
SERVICE_GROUPS: dict[str, str] = {
    "Amazon Elastic Compute Cloud - Compute": "hosts+network",  # ClickHouse and app hosts
    "EC2 - Other": "hosts+network",  # EBS volumes, NAT gateway, data transfer
    "Amazon Virtual Private Cloud": "hosts+network",  # endpoints, public IPv4
    "Amazon Elastic Load Balancing": "hosts+network",  # how Cost Explorer answers for the ALB
    "Elastic Load Balancing": "hosts+network",
    "Amazon Route 53": "hosts+network",
    "Amazon Managed Streaming for Apache Kafka": "kafka",
    "Amazon ElastiCache": "cache",
    "Amazon Relational Database Service": "metadata-db",
    "Amazon Simple Storage Service": "backups",
    "AmazonCloudWatch": "observability",
    "Amazon Simple Notification Service": "observability",
    "AWS Secrets Manager": "security",
    "AWS Key Management Service": "security",
}
_TAGS_HELP = (
    "activate `Stack` and `Project` as cost allocation tags in the Billing console (Billing and "
    "Cost Management > Cost allocation tags) and wait 24 h; costs before activation stay untagged"
)


class ActualError(AdpulseError):
    """Cost Explorer could not answer; the message says what to do."""


@dataclass(frozen=True)
class Month:
    start: str  # YYYY-MM-01
    end: str  # the next month's first day (exclusive)
    by_service: Mapping[str, float]
    estimated: bool  # the bill of that month is not final yet

    @property
    def total_usd(self) -> float:
        return sum(self.by_service.values())  # the answer's Total is {} when grouped

    @property
    def by_group(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for service, usd in self.by_service.items():
            group = SERVICE_GROUPS.get(service, OTHER)
            totals[group] = totals.get(group, 0.0) + usd
        return totals


@dataclass(frozen=True)
class Actual:
    stack: str
    months: tuple[Month, ...]
    notes: tuple[str, ...]


def period(months: int, today: dt.date) -> tuple[str, str]:
    """Start and (exclusive) end of the last `months` full months before `today`'s month."""
    if not 1 <= months <= MAX_MONTHS:
        raise ActualError(
            f"{months} months: give 1 to {MAX_MONTHS} (Cost Explorer keeps 13 months of "
            "history by default)"
        )
    end = today.replace(day=1)
    index = end.year * 12 + end.month - 1 - months
    return dt.date(index // 12, index % 12 + 1, 1).isoformat(), end.isoformat()


def request(stack: str, months: int, today: dt.date) -> dict[str, Any]:
    """The get_cost_and_usage parameters: the stack's default tags, by service, per month."""
    start, end = period(months, today)
    tags = [
        {"Tags": {"Key": k, "Values": [v], "MatchOptions": ["EQUALS"]}}
        for k, v in (("Stack", stack), ("Project", PROJECT))
    ]
    return {
        "TimePeriod": {"Start": start, "End": end},
        "Granularity": "MONTHLY",
        "Metrics": ["UnblendedCost"],
        "Filter": {"And": tags},
        "GroupBy": [{"Type": "DIMENSION", "Key": "SERVICE"}],
    }


def parse(pages: Iterable[Mapping[str, Any]]) -> tuple[Month, ...]:
    """Months from the answer's pages; a month's groups may be split across pages."""
    spans: dict[str, tuple[str, bool]] = {}
    services: dict[str, dict[str, float]] = {}
    for page in pages:
        for result in page.get("ResultsByTime", []):
            start, end = result["TimePeriod"]["Start"], result["TimePeriod"]["End"]
            spans[start] = (end, bool(result.get("Estimated")) or spans.get(start, ("", False))[1])
            month = services.setdefault(start, {})
            for group in result.get("Groups", []):
                metric = group["Metrics"]["UnblendedCost"]
                if metric.get("Unit", "USD") != "USD":
                    raise ActualError(f"Cost Explorer answered in {metric['Unit']}, not USD")
                name = group["Keys"][0]
                month[name] = month.get(name, 0.0) + float(metric["Amount"])
    return tuple(Month(s, spans[s][0], services[s], spans[s][1]) for s in sorted(spans))


def estimate_by_group(by_component: Mapping[str, float]) -> dict[str, float]:
    """A report's by_component totals summed into GROUPS, to set beside Month.by_group."""
    home = {c: g for g, members in GROUPS.items() for c in members}
    totals: dict[str, float] = {}
    for component, usd in by_component.items():
        group = home.get(component, OTHER)
        totals[group] = totals.get(group, 0.0) + usd
    return totals


def _notes(stack: str, months: tuple[Month, ...]) -> tuple[str, ...]:
    notes = []
    unknown = sorted(
        {s for m in months for s, usd in m.by_service.items() if s not in SERVICE_GROUPS and usd}
    )
    if unknown:
        notes.append(f"not mapped to a component, shown as {OTHER}: {', '.join(unknown)}")
    if months and not any(m.total_usd for m in months):
        notes.append(
            f"no cost is tagged Stack={stack}, Project={PROJECT} in these months: if "
            f"the stack ran then, {_TAGS_HELP}"
        )
    estimated = [m.start[:7] for m in months if m.estimated]
    if estimated:
        notes.append(f"estimated, the bill is not final yet: {', '.join(estimated)}")
    return tuple(notes)


def actual(stack: str, months: int, client: Any = None, today: dt.date | None = None) -> Actual:
    """The stack's cost in each of the last `months` full months, from Cost Explorer.

    Raises ActualError for no credentials, access denied, no data, or no network, saying what to
    do. `client` is a boto3 `ce` client (one for us-east-1 is made if None).
    """
    params = request(stack, months, today or dt.date.today())
    pages = []
    try:
        if client is None:
            import boto3

            client = boto3.client("ce", region_name="us-east-1")
        token = None
        while True:
            page = client.get_cost_and_usage(
                **params, **({"NextPageToken": token} if token else {})
            )
            pages.append(page)
            token = page.get("NextPageToken")
            if not token:
                break
    except NoCredentialsError:
        raise ActualError(
            "no AWS credentials found: set AWS_PROFILE (or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY) for the account the stack runs in, with ce:GetCostAndUsage "
            "allowed"
        ) from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "error"), error.get("Message", "")
        if code == "DataUnavailableException":
            raise ActualError(
                f"Cost Explorer has no data for tags Stack={stack}, Project={PROJECT} "
                f"({message}): {_TAGS_HELP}. If Cost Explorer was only just enabled, its data "
                "also needs 24 h"
            ) from None
        if code in ("AccessDeniedException", "AccessDenied", "UnauthorizedOperation"):
            raise ActualError(
                f"Cost Explorer refused the query ({code}: {message}): allow ce:GetCostAndUsage "
                "for these credentials, and enable Cost Explorer in the Billing console once"
            ) from None
        raise ActualError(f"Cost Explorer failed ({code}: {message}); try again later") from None
    except BotoCoreError as exc:
        raise ActualError(
            f"cannot reach Cost Explorer ({exc}): check the network (or proxy) and try again"
        ) from None
    parsed = parse(pages)
    return Actual(stack, parsed, _notes(stack, parsed))
