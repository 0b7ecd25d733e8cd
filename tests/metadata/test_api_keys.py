"""API keys: created once, stored hashed, listed by prefix, revoked, verified."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from adpulse.metadata import api_keys
from adpulse.metadata.store import MetadataStore
from adpulse.metadata.tables import api_keys as table


def test_created_key_verifies_and_only_its_hash_is_stored(store: MetadataStore) -> None:
    new = api_keys.create(store, "dashboard")
    assert new.key.startswith("adp_") and len(new.key) > 40
    assert api_keys.verify(store, new.key)
    with store.begin() as conn:
        stored = [tuple(row) for row in conn.execute(select(table))]
    assert not any(new.key in str(value) for row in stored for value in row)
    assert stored[0][3] == api_keys.hash_key(new.key)
    assert new.record.prefix == new.key[:12]


@pytest.mark.parametrize("presented", ["", "adp_", "nope", "adp_" + "x" * 43, "a" * 5000])
def test_wrong_keys_do_not_verify(store: MetadataStore, presented: str) -> None:
    api_keys.create(store, "real")
    assert not api_keys.verify(store, presented)


def test_revoked_key_stops_verifying_by_id_or_prefix(store: MetadataStore) -> None:
    first, second = api_keys.create(store, "a"), api_keys.create(store, "b")
    revoked = api_keys.revoke(store, str(first.record.id))
    assert revoked.revoked_at is not None
    api_keys.revoke(store, second.record.prefix)
    assert not api_keys.verify(store, first.key)
    assert not api_keys.verify(store, second.key)
    again = api_keys.revoke(store, str(first.record.id))
    assert again.revoked_at == revoked.revoked_at


def test_list_shows_prefixes_and_state(store: MetadataStore) -> None:
    kept, gone = api_keys.create(store, "kept"), api_keys.create(store, "gone")
    api_keys.revoke(store, str(gone.record.id))
    listed = api_keys.list_keys(store)
    assert [(k.name, k.prefix, k.revoked_at is None) for k in listed] == [
        ("kept", kept.record.prefix, True),
        ("gone", gone.record.prefix, False),
    ]
    assert all(k.created_at.tzinfo is not None for k in listed)
    assert [k.name for k in api_keys.list_keys(store, include_revoked=False)] == ["kept"]


def test_revoking_an_unknown_key_says_where_to_look(store: MetadataStore) -> None:
    with pytest.raises(
        api_keys.ApiKeyError, match=r"no API key with id or prefix '42'.*apikey list"
    ):
        api_keys.revoke(store, "42")


@pytest.mark.parametrize("name", ["", " ", "x" * 101, "tab\there"])
def test_bad_names_are_refused(store: MetadataStore, name: str) -> None:
    with pytest.raises(api_keys.ApiKeyError, match=r"1\.\.100 printable"):
        api_keys.create(store, name)
