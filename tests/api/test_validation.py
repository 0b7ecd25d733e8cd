"""Bad parameters get 422 with a message that names the parameter."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import AppFactory

F, T = "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"
EARLY = "1970-01-01T00:00:00Z"


@pytest.fixture(scope="module")
def http(make_module_app: AppFactory) -> Iterator[TestClient]:
    with TestClient(make_module_app()) as client:
        yield client


CASES = [
    ("summary", {"from": T, "to": F}, "to", "must be after from"),
    ("summary", {"from": F, "to": F}, "to", "must be after from"),
    ("summary", {"from": "2026-01-01T00:00:00", "to": T}, "from", "timezone"),
    ("summary", {"from": "yesterday", "to": T}, "from", "datetime"),
    ("summary", {"to": T}, "from", "Field required"),
    ("summary", {"from": F, "to": "2029-01-01T00:00:00Z"}, "to", "spans 1096 days"),
    ("summary", {"from": F, "to": T, "campaign_id": "abc"}, "campaign_id", "integer"),
    ("summary", {"from": F, "to": T, "campaign_id": "1.5"}, "campaign_id", "integer"),
    ("summary", {"from": F, "to": T, "campaign_id": "-1"}, "campaign_id", "greater than"),
    ("summary", {"from": F, "to": T, "campaign_id": "4294967296"}, "campaign_id", "less than"),
    ("summary", {"from": F, "to": T, "compare": "last_year"}, "compare", "previous"),
    ("summary", {"from": EARLY, "to": "1970-01-02T00:00:00Z", "compare": "previous"}, "compare",
     "before 1970"),
    ("timeseries", {"from": F, "to": T, "granularity": "week"}, "granularity", "minute"),
    ("timeseries", {"from": F, "to": T}, "granularity", "Field required"),
    ("timeseries", {"from": F, "to": "2026-01-03T00:00:00Z", "granularity": "minute"}, "to",
     "spans 2 days; at most 1 day"),
    ("timeseries", {"from": F, "to": "2026-06-01T00:00:00Z", "granularity": "hour"}, "to",
     "at most 62 days"),
    ("campaigns", {"from": F, "to": T, "sort": "password"}, "sort", "spend_micros"),
    ("campaigns", {"from": F, "to": T, "order": "up"}, "order", "asc"),
    ("campaigns", {"from": F, "to": T, "limit": "0"}, "limit", "greater than or equal to 1"),
    ("campaigns", {"from": F, "to": T, "limit": "501"}, "limit", "less than or equal to 500"),
    ("campaigns", {"from": F, "to": T, "offset": "-3"}, "offset", "greater than or equal"),
    ("campaigns", {"from": F, "to": T, "q": "a'b"}, "q", "pattern"),
    ("campaigns", {"from": F, "to": T, "q": ""}, "q", "at least 1"),
    ("export.csv", {"from": F, "to": T, "sort": "name; DROP"}, "sort", "campaign_id"),
    ("breakdown", {"from": F, "to": T, "by": "city"}, "by", "country"),
    ("breakdown", {"from": F, "to": "2026-06-01T00:00:00Z", "by": "country"}, "to",
     "at most 92 days"),
]  # fmt: skip


@pytest.mark.parametrize(("endpoint", "params", "param", "message"), CASES)
def test_bad_parameter_is_422_naming_it(
    http: TestClient, endpoint: str, params: dict[str, str], param: str, message: str
) -> None:
    response = http.get(f"/api/v1/{endpoint}", params=params)
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    named = [e for e in errors if e["loc"][-1] == param]
    assert named, f"no error names {param!r}: {errors}"
    assert any(message in e["msg"] for e in named), named


def test_unknown_parameters_are_ignored(http: TestClient) -> None:
    assert http.get("/api/v1/summary", params={"from": F, "to": T, "x": "1"}).status_code == 200
