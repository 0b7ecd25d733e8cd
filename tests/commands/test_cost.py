"""`adpulse cost`: the commands end to end on the committed stacks (the program under mocks)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from cost.catalogue import load
from cost.report import OVER_BUDGET_EXIT

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_within_budget_exits_0_and_over_budget_exits_3() -> None:
    code, out, _ = run("cost", "report", "--stack", "dev", "--format", "json", "--budget", "1e6")
    assert code == 0
    total = json.loads(out)["total_monthly_usd"]
    code, out, err = run(
        "cost", "report", "--stack", "dev", "--format", "json", "--budget", str(total - 1)
    )
    assert code == OVER_BUDGET_EXIT == 3
    assert json.loads(out)["over_budget"] is True
    assert f"over budget: ${total:,.2f}" in err


def test_errors_are_one_line_with_exit_1_and_bad_usage_exit_2(tmp_path: Path) -> None:
    code, _, err = run("cost", "report", "--stack", "staging", "--config-dir", str(tmp_path))
    assert code == 1 and err.startswith("error: no stack file") and err.count("\n") == 1
    code, _, err = run("cost", "report", "--stack", "dev", "--set", "usage.nope=1")
    assert code == 1 and "unknown usage key 'nope'" in err and "events_per_day" in err
    code, _, err = run("cost", "report", "--format", "yaml")
    assert code == 2 and "yaml" in err


def test_diff_of_a_smaller_clickhouse_node_is_the_hand_computed_delta() -> None:
    code, out, _ = run(
        "cost",
        "diff",
        "--stack",
        "prod",
        "--format",
        "json",
        "--set",
        "clickhouseInstanceType=r6g.xlarge",
    )
    assert code == 0, out
    doc = json.loads(out)
    catalogue = load()
    big = catalogue.price("ec2/r6g.2xlarge", "us-east-1").usd
    small = catalogue.price("ec2/r6g.xlarge", "us-east-1").usd
    expected = 3 * 730 * (small - big)  # 3 nodes x 730 h x (0.2016 - 0.4032) = -441.50
    assert doc["delta_monthly_usd"] == pytest.approx(expected, abs=0.01)
    assert [c["item"] for c in doc["changes"]] == ["EC2 r6g.2xlarge -> EC2 r6g.xlarge"] * 3
    code, md, _ = run(
        "cost",
        "diff",
        "--stack",
        "prod",
        "--format",
        "markdown",
        "--set",
        "clickhouseInstanceType=r6g.xlarge",
    )
    assert code == 0 and md.startswith("### adpulse cost diff") and f"{expected:+,.2f} USD" in md


def test_report_help_teaches_the_formats_budget_and_set() -> None:
    code, out, _ = run("cost", "report", "--help")
    assert code == 0
    for word in (
        "--format",
        "--budget",
        "exit code 3",
        "--set",
        "usage.",
        "--events-per-day",
        "--region",
        "--live-prices",
    ):
        assert word in out


@pytest.mark.usefixtures("no_aws_credentials")
def test_actual_without_credentials_says_what_to_set() -> None:
    code, _, err = run("cost", "actual", "--stack", "prod")
    assert code == 1
    assert err.startswith("error: no AWS credentials found: set AWS_PROFILE")


@pytest.mark.usefixtures("no_aws_credentials")
def test_live_prices_without_credentials_fall_back_to_the_bundled_catalogue() -> None:
    code, out, err = run("cost", "report", "--stack", "dev", "--format", "json", "--live-prices")
    assert code == 0, err
    doc = json.loads(out)
    assert "warning: live prices unavailable" in err
    assert f"using the bundled catalogue as of {load().as_of}" in err
    assert doc["catalogue"]["origin"] == "bundled"
    assert any("live prices unavailable" in note for note in doc["notes"])


@pytest.mark.usefixtures("no_aws_credentials")
def test_catalogue_refresh_without_credentials_changes_nothing() -> None:
    before = (ROOT / "cost" / "catalogue.yaml").read_bytes()
    code, _, err = run("cost", "catalogue", "refresh", "--region", "us-east-1")
    assert code == 1 and err.startswith("error: ") and err.count("\n") == 1
    assert (ROOT / "cost" / "catalogue.yaml").read_bytes() == before


def test_zero_events_prices_the_idle_stack() -> None:
    code, out, err = run("cost", "report", "--stack", "dev", "--events-per-day", "0")
    assert code == 0, err
    assert "n/a per million events at 0 events/day (no events: the total is the idle" in out
    code, out, err = run(
        "cost", "report", "--stack", "dev", "--events-per-day", "0", "--format", "json"
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["per_million_events_usd"] is None and doc["total_monthly_usd"] > 0
    inter_az = [x for x in doc["lines"] if x["price_key"] == "transfer/inter-az"]
    assert inter_az and all(x["monthly_usd"] == 0 for x in inter_az)


@pytest.mark.parametrize(
    ("value", "says"),
    [("-1", "greater than or equal to 0"), ("inf", "give a finite number >= 0")],
)
def test_a_negative_or_infinite_event_rate_is_bad_usage(value: str, says: str) -> None:
    code, _, err = run("cost", "report", "--stack", "dev", f"--events-per-day={value}")
    assert code == 2 and "Invalid value for '--events-per-day'" in err and says in err
    code, _, err = run("cost", "diff", "--set", "egress=nat", f"--events-per-day={value}")
    assert code == 2 and "'--events-per-day'" in err


def test_diff_of_a_usage_change_shows_every_inter_az_flow_it_moves() -> None:
    code, out, err = run(
        "cost", "diff", "--stack", "prod", "--format", "json", "--set", "usage.cross_az_share=0.5"
    )
    assert code == 0, err
    doc = json.loads(out)
    moved = [c["item"].split(" (")[0] for c in doc["changes"]]
    assert moved == [
        "inter-AZ: producers to MSK",
        "inter-AZ: MSK to the consumer",
        "inter-AZ: consumer inserts into ClickHouse",
    ]
    assert sum(c["delta_usd"] for c in doc["changes"]) == pytest.approx(
        doc["delta_monthly_usd"], abs=0.02
    )
    assert doc["delta_monthly_usd"] < 0
