"""API keys: created once, stored hashed, listed by prefix, revoked, verified."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from adpulse.metadata import api_keys
from adpulse.metadata.store import MetadataStore
from adpulse.metadata.tables import api_keys as table
from adpulse.settings import Settings


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


# --- keys made elsewhere: the dashboard's, from the stack ----------------------------------------


def stack_key(tag: str) -> str:
    """A key as the stack makes it: the prefix and 43 letters and digits (stacks/secret_store)."""
    return api_keys.KEY_PREFIX + (tag * 43)[:43]


def stored_rows(store: MetadataStore) -> list[tuple[int, str, bool]]:
    """(id, name, revoked) of every stored key, by id."""
    with store.begin() as conn:
        rows = conn.execute(select(table).order_by(table.c.id)).all()
    return [(row.id, row.name, row.revoked_at is not None) for row in rows]


def test_registering_a_key_twice_stores_it_once(store: MetadataStore) -> None:
    key = stack_key("Dash1")
    first = api_keys.register(store, api_keys.DASHBOARD, key)
    again = api_keys.register(store, api_keys.DASHBOARD, key)
    assert again.record == first.record and again.revoked == ()
    assert first.record.revoked_at is None and first.record.prefix == key[:12]
    assert stored_rows(store) == [(first.record.id, "dashboard", False)]
    assert api_keys.verify(store, key)


def test_a_rotated_key_replaces_the_previous_one_of_its_name_only(store: MetadataStore) -> None:
    other = api_keys.create(store, "reporting")
    old, new = stack_key("Old1"), stack_key("New2")
    before = api_keys.register(store, api_keys.DASHBOARD, old)
    after = api_keys.register(store, api_keys.DASHBOARD, new)
    assert [k.id for k in after.revoked] == [before.record.id]
    assert after.revoked[0].revoked_at is not None
    assert not api_keys.verify(store, old)
    assert api_keys.verify(store, new) and api_keys.verify(store, other.key)
    assert stored_rows(store) == [
        (other.record.id, "reporting", False),
        (before.record.id, "dashboard", True),
        (after.record.id, "dashboard", False),
    ]


def test_a_host_still_holding_the_rotated_out_key_cannot_undo_the_rotation(
    store: MetadataStore,
) -> None:
    """A host deployed before the rotation restarts its API with the old key: the old key
    stays revoked and the current one keeps working."""
    old, new = stack_key("Old1"), stack_key("New2")
    api_keys.register(store, api_keys.DASHBOARD, old)
    current = api_keys.register(store, api_keys.DASHBOARD, new).record
    stale = api_keys.register(store, api_keys.DASHBOARD, old)
    assert stale.record.revoked_at is not None and stale.revoked == ()
    assert api_keys.verify(store, new) and not api_keys.verify(store, old)
    assert [k.id for k in api_keys.list_keys(store, include_revoked=False)] == [current.id]


@pytest.mark.parametrize(
    "key",
    [
        "",
        "adp_short",
        stack_key("x")[:-1],  # 42 characters after the prefix: less than 256 bits
        "xyz_" + "a" * 43,
        "adp_" + "a" * 42 + "!",
        "adp_" + "a" * 125,
    ],
)
def test_a_value_that_is_not_a_key_is_refused_without_showing_it(
    store: MetadataStore, key: str
) -> None:
    with pytest.raises(api_keys.ApiKeyError, match="is not an adpulse API key") as info:
        api_keys.register(store, api_keys.DASHBOARD, key)
    assert not key or key not in str(info.value)
    assert stored_rows(store) == []


def test_api_replicas_starting_at_once_store_the_key_once_and_revoke_the_old_once(
    store_settings: Settings,
) -> None:
    """Three API processes' worth of stores (one engine each), registering the same rotated
    key at the same moment, on Postgres and SQLite alike."""
    from adpulse.metadata.store import open_store

    setup = open_store(store_settings)
    old = api_keys.register(setup, api_keys.DASHBOARD, stack_key("Old1")).record
    stores = [open_store(store_settings) for _ in range(3)]
    start = threading.Barrier(len(stores))
    results: list[api_keys.Registered] = []

    def start_api(replica: MetadataStore) -> None:
        start.wait()
        results.append(api_keys.register(replica, api_keys.DASHBOARD, stack_key("New2")))

    threads = [threading.Thread(target=start_api, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert len(results) == 3, "a registration failed (see the thread's exception above)"
        assert len({r.record.id for r in results}) == 1
        assert [k.id for r in results for k in r.revoked] == [old.id]
        new_id = results[0].record.id
        assert stored_rows(setup) == [(old.id, "dashboard", True), (new_id, "dashboard", False)]
    finally:
        for opened in (setup, *stores):
            opened.close()
