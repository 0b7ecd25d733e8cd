"""cost.actual: the exact Cost Explorer request for a fixed day, hand-summed months from a
real-shaped two-page answer, the service -> group map, the errors that say what to do, and one
round trip through moto's Cost Explorer (which models get_cost_and_usage as a queued answer)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from cost.actual import (
    GROUPS,
    OTHER,
    SERVICE_GROUPS,
    ActualError,
    actual,
    estimate_by_group,
    parse,
    period,
    request,
)
from cost.lines import COMPONENTS
from tests.conftest import fake_aws_credentials

FIXTURE = Path(__file__).parent / "fixtures" / "ce-cost-and-usage-by-service.json"
TODAY = dt.date(2026, 12, 6)
PAGES: list[dict[str, Any]] = json.loads(FIXTURE.read_text())["pages"]
EXPECTED_REQUEST: dict[str, Any] = {
    "TimePeriod": {"Start": "2026-09-01", "End": "2026-12-01"},
    "Granularity": "MONTHLY",
    "Metrics": ["UnblendedCost"],
    "Filter": {"And": [
        {"Tags": {"Key": "Stack", "Values": ["prod"], "MatchOptions": ["EQUALS"]}},
        {"Tags": {"Key": "Project", "Values": ["adpulse"], "MatchOptions": ["EQUALS"]}},
    ]},
    "GroupBy": [{"Type": "DIMENSION", "Key": "SERVICE"}],
}  # fmt: skip


def ce_stub() -> tuple[Any, Stubber]:
    client = boto3.client("ce", region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")  # fmt: skip
    return client, Stubber(client)


@pytest.mark.parametrize(
    ("today", "months", "span"),
    [
        (TODAY, 3, ("2026-09-01", "2026-12-01")),
        (dt.date(2026, 12, 1), 3, ("2026-09-01", "2026-12-01")),  # December has no full day yet
        (dt.date(2026, 1, 31), 2, ("2025-11-01", "2026-01-01")),  # across the year
        (dt.date(2026, 3, 15), 12, ("2025-03-01", "2026-03-01")),
    ],
)
def test_period_is_the_last_full_months(today: dt.date, months: int, span: tuple[str, str]) -> None:
    assert period(months, today) == span


@pytest.mark.parametrize("months", [0, 13])
def test_period_refuses_what_cost_explorer_does_not_keep(months: int) -> None:
    with pytest.raises(ActualError, match="give 1 to 12"):
        period(months, TODAY)


def test_the_request_filters_on_the_stack_default_tags() -> None:
    assert request("prod", 3, TODAY) == EXPECTED_REQUEST


def test_the_project_tag_is_the_one_the_stack_sets() -> None:
    validate = pytest.importorskip("stacks.config.validate")  # needs the infra extra (pulumi)
    assert EXPECTED_REQUEST["Filter"]["And"][1]["Tags"]["Values"] == [validate.PROJECT]


def test_actual_pages_and_sums_the_months_by_hand() -> None:
    client, stub = ce_stub()
    stub.add_response("get_cost_and_usage", PAGES[0], EXPECTED_REQUEST)
    stub.add_response(
        "get_cost_and_usage", PAGES[1], {**EXPECTED_REQUEST, "NextPageToken": "page-2"}
    )
    with stub:
        got = actual("prod", 3, client=client, today=TODAY)
    stub.assert_no_pending_responses()
    sep, oct_, nov = got.months
    assert [(m.start, m.end) for m in got.months] == [
        ("2026-09-01", "2026-10-01"),
        ("2026-10-01", "2026-11-01"),
        ("2026-11-01", "2026-12-01"),
    ]
    # 1.00 + 0.80 + 150.24 + 1210.55 + 22.10 + 640.00 = 2024.69; + 35.959999968 + 0.500006
    # + 0 + 56.0322111501 = 2117.1822171181; + 45.30 + 9.7199522791 + 310.44 + 0 = 2482.6421693972
    assert sep.total_usd == pytest.approx(2482.6421693972, abs=1e-9)
    # 1250 + 300 on page one, 661.33 + 10 + 12.50 on page two
    assert oct_.total_usd == pytest.approx(2233.83)
    assert oct_.by_service["Tax"] == 12.5
    assert (nov.total_usd, nov.estimated) == (0.0, True)
    # hosts+network: 1210.55 + 310.44 + 45.30 + 22.10 + 0.500006 = 1588.890006
    assert sep.by_group == pytest.approx(
        {
            "hosts+network": 1588.890006,
            "kafka": 640.0,
            "cache": 150.24,
            "metadata-db": 35.959999968,
            "backups": 56.0322111501,
            "observability": 9.7199522791,
            "security": 1.8,
            OTHER: 0.0,
        }
    )
    assert oct_.by_group == pytest.approx(
        {"hosts+network": 1550.0, "kafka": 661.33, "observability": 10.0, OTHER: 12.5}
    )
    assert got.notes == ("not mapped to a component, shown as other: Tax",
                         "estimated, the bill is not final yet: 2026-11")  # fmt: skip


def test_a_service_met_twice_in_a_month_is_added_not_replaced() -> None:
    def page(amount: str) -> dict[str, Any]:
        group = {"Keys": ["EC2 - Other"], "Metrics": {"UnblendedCost": {"Amount": amount}}}
        span = {"Start": "2026-10-01", "End": "2026-11-01"}
        return {"ResultsByTime": [{"TimePeriod": span, "Groups": [group]}]}

    [month] = parse([page("1.25"), page("2.5")])
    assert month.by_service == {"EC2 - Other": 3.75}


def test_every_component_is_in_exactly_one_group() -> None:
    members = [c for group in GROUPS.values() for c in group]
    assert sorted(members) == sorted(COMPONENTS)
    assert set(SERVICE_GROUPS.values()) <= set(GROUPS)


def test_the_estimate_is_summed_into_the_same_groups() -> None:
    by_component = {"clickhouse": 1400.0, "services": 120.0, "network": 80.5, "edge": 30.0,
                    "kafka": 800.0, "security": 2.4}  # fmt: skip
    assert estimate_by_group(by_component) == {"hosts+network": 1630.5, "kafka": 800.0,
                                               "security": 2.4}  # fmt: skip


def test_no_tagged_cost_says_to_activate_the_tags() -> None:
    client, stub = ce_stub()
    empty = [{"TimePeriod": {"Start": "2026-11-01", "End": "2026-12-01"}, "Total": {},
              "Groups": [], "Estimated": False}]  # fmt: skip
    request_one = {**EXPECTED_REQUEST, "TimePeriod": {"Start": "2026-11-01", "End": "2026-12-01"}}
    stub.add_response("get_cost_and_usage", {"ResultsByTime": empty}, request_one)
    with stub:
        got = actual("prod", 1, client=client, today=TODAY)
    [note] = got.notes
    assert "no cost is tagged Stack=prod, Project=adpulse" in note
    assert "activate `Stack` and `Project` as cost allocation tags in the Billing console" in note


@pytest.mark.parametrize(
    ("code", "message", "says"),
    [
        ("DataUnavailableException", "Data is not available.",
         ["activate `Stack` and `Project` as cost allocation tags in the Billing console",
          "wait 24 h", "Stack=prod, Project=adpulse"]),
        ("AccessDeniedException", "User is not authorized to perform: ce:GetCostAndUsage",
         ["allow ce:GetCostAndUsage", "enable Cost Explorer"]),
        ("LimitExceededException", "Rate exceeded", ["LimitExceededException", "try again later"]),
    ],
)  # fmt: skip
def test_cost_explorer_errors_say_what_to_do(code: str, message: str, says: list[str]) -> None:
    client, stub = ce_stub()
    stub.add_client_error("get_cost_and_usage", code, message, expected_params=EXPECTED_REQUEST)
    with stub, pytest.raises(ActualError) as caught:
        actual("prod", 3, client=client, today=TODAY)
    for part in says:
        assert part in str(caught.value)


@pytest.mark.usefixtures("no_aws_credentials")
def test_no_credentials_says_how_to_give_them() -> None:
    client = boto3.session.Session().client("ce", region_name="us-east-1")
    with pytest.raises(ActualError, match="no AWS credentials found: set AWS_PROFILE"):
        actual("prod", 3, client=client, today=TODAY)


def test_no_network_is_an_error_that_says_so() -> None:
    client = boto3.client(
        "ce", region_name="us-east-1", endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="testing", aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=2),
    )  # fmt: skip
    with pytest.raises(ActualError, match=r"cannot reach Cost Explorer .*Could not connect"):
        actual("prod", 3, client=client, today=TODAY)


@pytest.fixture
def moto_ce(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from moto import mock_aws

    fake_aws_credentials(monkeypatch)
    with mock_aws():
        yield boto3.client("ce", region_name="us-east-1")


def test_a_round_trip_through_moto(moto_ce: Any) -> None:
    from moto.ce.models import ce_backends
    from moto.core.models import DEFAULT_ACCOUNT_ID

    # moto answers get_cost_and_usage from a queue (it keeps no costs); one page, no token.
    page = {k: v for k, v in PAGES[1].items() if k != "NextPageToken"}
    ce_backends[DEFAULT_ACCOUNT_ID]["aws"].cost_usage_results_queue.append(page)
    got = actual("prod", 3, client=moto_ce, today=TODAY)
    assert [(m.start, round(m.total_usd, 2)) for m in got.months] == [
        ("2026-10-01", 683.83),
        ("2026-11-01", 0.0),
    ]
