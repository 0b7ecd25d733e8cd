"""Campaign metadata: CSV parsing (pure), import as upsert, lookups, demo names."""

from __future__ import annotations

import pytest

from adpulse.metadata import campaigns
from adpulse.metadata.campaigns import CampaignFileError, CampaignMeta
from adpulse.metadata.store import MetadataStore

GOOD = """\ufeffcampaign_id,name,advertiser,status,daily_budget_micros
1,Spring Sale,Acme,active,50000000
2, Back-to-school ,Globex,PAUSED,
3,Brand,,,
"""


def test_csv_rows_are_parsed_and_trimmed() -> None:
    assert campaigns.parse_csv(GOOD) == [
        CampaignMeta(1, "Spring Sale", "Acme", "active", 50_000_000),
        CampaignMeta(2, "Back-to-school", "Globex", "paused", None),
        CampaignMeta(3, "Brand", "", "active", None),
    ]


def test_only_id_and_name_are_required() -> None:
    assert campaigns.parse_csv("name,campaign_id\nX,7\n") == [CampaignMeta(7, "X")]


def test_missing_columns_name_what_is_expected() -> None:
    with pytest.raises(CampaignFileError, match=r"f.csv: header lacks campaign_id; expected"):
        campaigns.parse_csv("id,name\n1,x\n", "f.csv")


def test_every_bad_row_is_reported_by_line_and_nothing_is_kept() -> None:
    text = (
        "campaign_id,name,status,daily_budget_micros\n"
        "abc,x,active,\n"
        "1,,active,\n"
        "2,y,running,\n"
        "3,z,active,-5\n"
        "4294967296,big,,\n"
        "5,ok,,\n"
        "5,again,,\n"
    )
    with pytest.raises(CampaignFileError) as caught:
        campaigns.parse_csv(text, "c.csv")
    assert str(caught.value) == (
        "c.csv: nothing imported; fix "
        "line 2: campaign_id 'abc' is not a whole number in 0..4294967295; "
        "line 3: name is empty; "
        "line 4: status 'running' is not one of active, paused, archived; "
        "line 5: daily_budget_micros '-5' is not a whole number of micros; "
        "line 6: campaign_id '4294967296' is not a whole number in 0..4294967295; "
        "line 8: campaign_id 5 repeats line 7"
    )


def test_import_upserts_and_lookup_returns_known_ids(store: MetadataStore) -> None:
    assert campaigns.upsert(store, campaigns.parse_csv(GOOD)) == 3
    changed = [CampaignMeta(1, "Summer Sale", "Acme", "archived", 1)]
    campaigns.upsert(store, changed)
    found = campaigns.by_ids(store, [1, 3, 99])
    assert found == {1: changed[0], 3: CampaignMeta(3, "Brand", "", "active", None)}


def test_lookup_of_many_ids_crosses_chunks(store: MetadataStore) -> None:
    rows = [CampaignMeta(i, f"c{i}") for i in range(1, 1201)]
    campaigns.upsert(store, rows)
    assert len(campaigns.by_ids(store, range(0, 1500))) == 1200


def test_demo_names_never_overwrite_imported_ones(store: MetadataStore) -> None:
    campaigns.upsert(store, [CampaignMeta(1, "Real name", "Acme")])
    campaigns.ensure_demo_campaigns(store, [(1, 10), (2, 20)])
    assert campaigns.by_ids(store, [1, 2]) == {
        1: CampaignMeta(1, "Real name", "Acme"),
        2: CampaignMeta(2, "Demo campaign 2", "Demo advertiser 20"),
    }
