"""Campaign names, advertisers, status and budgets: CSV import and lookups."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from adpulse.errors import AdpulseError
from adpulse.metadata.store import MetadataStore
from adpulse.metadata.tables import STATUSES, campaigns

MAX_ID = 2**32 - 1
MAX_TEXT = 200
REQUIRED_COLUMNS = ("campaign_id", "name")
OPTIONAL_COLUMNS = ("advertiser", "status", "daily_budget_micros")
_MAX_PROBLEMS = 10
_CHUNK = 500


class CampaignFileError(AdpulseError):
    """A campaigns CSV has rows that cannot be imported; nothing was written."""


@dataclass(frozen=True)
class CampaignMeta:
    campaign_id: int
    name: str
    advertiser: str = ""
    status: str = "active"
    daily_budget_micros: int | None = None


def parse_csv(text: str, source: str = "campaigns.csv") -> list[CampaignMeta]:
    """Rows of a campaigns CSV with a header; every problem names its line and column."""
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise CampaignFileError(
            f"{source}: header lacks {', '.join(missing)}; expected columns "
            f"{', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)} (the last three optional)"
        )
    reader.fieldnames = header
    rows: list[CampaignMeta] = []
    problems: list[str] = []
    seen: dict[int, int] = {}
    for line, record in enumerate(reader, start=2):
        try:
            row = _row(record)
        except ValueError as exc:
            problems.append(f"line {line}: {exc}")
            continue
        if row.campaign_id in seen:
            problems.append(
                f"line {line}: campaign_id {row.campaign_id} repeats line {seen[row.campaign_id]}"
            )
            continue
        seen[row.campaign_id] = line
        rows.append(row)
    if problems:
        extra = len(problems) - _MAX_PROBLEMS
        more = f" (and {extra} more)" if extra > 0 else ""
        raise CampaignFileError(
            f"{source}: nothing imported; fix " + "; ".join(problems[:_MAX_PROBLEMS]) + more
        )
    return rows


def _row(record: dict[str, str | None]) -> CampaignMeta:
    def field(name: str) -> str:
        return (record.get(name) or "").strip()

    raw_id = field("campaign_id")
    if not raw_id.isdigit() or int(raw_id) > MAX_ID:
        raise ValueError(f"campaign_id {raw_id!r} is not a whole number in 0..{MAX_ID}")
    name, advertiser = field("name"), field("advertiser")
    if not name:
        raise ValueError("name is empty")
    for column, value in (("name", name), ("advertiser", advertiser)):
        if len(value) > MAX_TEXT:
            raise ValueError(f"{column} is longer than {MAX_TEXT} characters")
    status = field("status").lower() or "active"
    if status not in STATUSES:
        raise ValueError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    budget = field("daily_budget_micros")
    if budget and not budget.isdigit():
        raise ValueError(f"daily_budget_micros {budget!r} is not a whole number of micros")
    return CampaignMeta(int(raw_id), name, advertiser, status, int(budget) if budget else None)


def upsert(store: MetadataStore, rows: Iterable[CampaignMeta], *, replace: bool = True) -> int:
    """Insert campaigns; existing ids are updated (or left alone with replace=False)."""
    items = list(rows)
    now = datetime.now(UTC)
    with store.begin() as conn:
        for i in range(0, len(items), _CHUNK):
            values = [{**asdict(r), "updated_at": now} for r in items[i : i + _CHUNK]]
            conn.execute(_upsert_statement(conn, replace), values)
    return len(items)


def _upsert_statement(conn: Connection, replace: bool) -> Any:
    """INSERT ... ON CONFLICT, which Postgres and SQLite spell the same way."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(campaigns)
    if not replace:
        return statement.on_conflict_do_nothing(index_elements=["campaign_id"])
    updated = {
        c: statement.excluded[c]
        for c in ("name", "advertiser", "status", "daily_budget_micros", "updated_at")
    }
    return statement.on_conflict_do_update(index_elements=["campaign_id"], set_=updated)


def by_ids(store: MetadataStore, ids: Iterable[int]) -> dict[int, CampaignMeta]:
    """Metadata of the given campaigns that the store knows."""
    wanted = sorted(set(ids))
    found: dict[int, CampaignMeta] = {}
    columns = [campaigns.c[name] for name in CampaignMeta.__dataclass_fields__]
    with store.begin() as conn:
        for i in range(0, len(wanted), _CHUNK):
            query = select(*columns).where(campaigns.c.campaign_id.in_(wanted[i : i + _CHUNK]))
            for row in conn.execute(query):
                found[row.campaign_id] = CampaignMeta(*row)
    return found


def every_campaign(store: MetadataStore) -> dict[int, CampaignMeta]:
    """Every campaign the store knows (thousands: small enough to hold)."""
    columns = [campaigns.c[name] for name in CampaignMeta.__dataclass_fields__]
    with store.begin() as conn:
        return {row.campaign_id: CampaignMeta(*row) for row in conn.execute(select(*columns))}


def ensure_demo_campaigns(
    store: MetadataStore, campaign_advertisers: Iterable[tuple[int, int]]
) -> int:
    """Name the generator's campaigns for local mode; never overwrites imported names."""
    rows = [
        CampaignMeta(cid, f"Demo campaign {cid}", f"Demo advertiser {aid}")
        for cid, aid in campaign_advertisers
    ]
    return upsert(store, rows, replace=False)
