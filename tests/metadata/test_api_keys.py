"""API keys: created once, stored hashed, listed by prefix, revoked, verified."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

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
    ends = after.revoked[0].revoked_at + timedelta(seconds=1)
    assert not api_keys.verify(store, old, now=ends)
    assert api_keys.verify(store, new, now=ends) and api_keys.verify(store, other.key, now=ends)
    assert stored_rows(store) == [
        (other.record.id, "reporting", False),
        (before.record.id, "dashboard", True),
        (after.record.id, "dashboard", False),
    ]


def test_a_host_still_holding_the_rotated_out_key_cannot_undo_the_rotation(
    store: MetadataStore,
) -> None:
    """A host deployed before the rotation restarts its API with the old key, during the grace
    and after it: the old key keeps its revocation time and the current one keeps working."""
    old, new = stack_key("Old1"), stack_key("New2")
    t0 = datetime.now(UTC)
    api_keys.register(store, api_keys.DASHBOARD, old, now=t0)
    rotated = api_keys.register(store, api_keys.DASHBOARD, new, now=t0)
    current, retiring = rotated.record, rotated.revoked[0]
    ends = t0 + api_keys.ROTATION_GRACE
    for restart in (t0 + timedelta(minutes=5), ends + timedelta(minutes=5)):
        stale = api_keys.register(store, api_keys.DASHBOARD, old, now=restart)
        assert stale.record == retiring and stale.record.revoked_at == ends
        assert stale.revoked == ()
        assert api_keys.verify(store, new, now=restart)
    assert api_keys.verify(store, old, now=ends - timedelta(seconds=1))
    assert not api_keys.verify(store, old, now=ends)
    after = api_keys.list_keys(store, include_revoked=False, now=ends)
    assert [k.id for k in after] == [current.id]


def test_a_replaced_key_verifies_during_the_grace_and_not_after(store: MetadataStore) -> None:
    """The rolling deploy: hosts not yet deployed send the old key until their turn."""
    old, new = stack_key("Old1"), stack_key("New2")
    t0, grace = datetime.now(UTC), timedelta(minutes=10)
    api_keys.register(store, api_keys.DASHBOARD, old, now=t0)
    rotated = api_keys.register(store, api_keys.DASHBOARD, new, grace=grace, now=t0)
    assert [k.revoked_at for k in rotated.revoked] == [t0 + grace]
    for moment in (t0, t0 + grace - timedelta(microseconds=1)):
        assert api_keys.verify(store, old, now=moment) and api_keys.verify(store, new, now=moment)
    assert not api_keys.verify(store, old, now=t0 + grace)
    assert api_keys.verify(store, new, now=t0 + grace)
    # The same instant in another zone: SQLite compares stored UTC times as text.
    east = timezone(timedelta(hours=5))
    assert api_keys.verify(store, old, now=(t0 + grace - timedelta(seconds=1)).astimezone(east))
    assert not api_keys.verify(store, old, now=(t0 + grace).astimezone(east))


def test_the_default_grace_holds_the_old_key_by_the_clock_and_zero_ends_it_at_once(
    store: MetadataStore,
) -> None:
    first, second, third = stack_key("One1"), stack_key("Two2"), stack_key("Three3")
    api_keys.register(store, api_keys.DASHBOARD, first)
    api_keys.register(store, api_keys.DASHBOARD, second)
    assert api_keys.verify(store, first) and api_keys.verify(store, second)
    api_keys.register(store, api_keys.DASHBOARD, third, grace=timedelta(0))
    assert not api_keys.verify(store, second) and api_keys.verify(store, third)
    assert api_keys.verify(store, first), "a retiring key keeps its time"


def test_rotating_again_during_the_grace_does_not_extend_the_first_one(
    store: MetadataStore,
) -> None:
    t0, grace = datetime.now(UTC), timedelta(minutes=10)
    keys = [stack_key(tag) for tag in ("One1", "Two2", "Three3")]
    first = api_keys.register(store, api_keys.DASHBOARD, keys[0], grace=grace, now=t0).record
    api_keys.register(store, api_keys.DASHBOARD, keys[1], grace=grace, now=t0)
    later = t0 + timedelta(minutes=4)
    third = api_keys.register(store, api_keys.DASHBOARD, keys[2], grace=grace, now=later)
    assert [(k.id, k.revoked_at) for k in third.revoked] == [(first.id + 1, later + grace)]
    states = [(k.id, k.state(later)) for k in api_keys.list_keys(store)]
    assert states == [
        (first.id, "retiring"),
        (first.id + 1, "retiring"),
        (third.record.id, "active"),
    ]
    assert not api_keys.verify(store, keys[0], now=t0 + grace)
    assert api_keys.verify(store, keys[1], now=t0 + grace)


def test_an_explicit_revoke_ends_a_grace_at_once(store: MetadataStore) -> None:
    old, new = stack_key("Old1"), stack_key("New2")
    api_keys.register(store, api_keys.DASHBOARD, old)
    retiring = api_keys.register(store, api_keys.DASHBOARD, new).revoked[0]
    assert api_keys.verify(store, old)
    revoked = api_keys.revoke(store, str(retiring.id))
    assert revoked.revoked_at is not None and revoked.revoked_at <= datetime.now(UTC)
    assert not api_keys.verify(store, old) and api_keys.verify(store, new)
    assert api_keys.revoke(store, str(retiring.id)) == revoked


def test_list_tells_retiring_keys_from_active_and_revoked(store: MetadataStore) -> None:
    t0, grace = datetime.now(UTC), timedelta(minutes=10)
    gone = api_keys.create(store, "gone")
    api_keys.revoke(store, str(gone.record.id), now=t0)
    old = api_keys.register(store, api_keys.DASHBOARD, stack_key("Old1"), now=t0).record
    new = api_keys.register(store, api_keys.DASHBOARD, stack_key("New2"), grace=grace, now=t0)
    listed = api_keys.list_keys(store)
    assert [(k.id, k.state(t0)) for k in listed] == [
        (gone.record.id, "revoked"),
        (old.id, "retiring"),
        (new.record.id, "active"),
    ]
    assert [k.state(t0 + grace) for k in listed] == ["revoked", "revoked", "active"]
    verifying = api_keys.list_keys(store, include_revoked=False, now=t0)
    assert [k.id for k in verifying] == [old.id, new.record.id]


def test_a_negative_grace_is_refused(store: MetadataStore) -> None:
    with pytest.raises(api_keys.ApiKeyError, match="must not be negative"):
        api_keys.register(store, api_keys.DASHBOARD, stack_key("Old1"), grace=-timedelta(1))
    assert stored_rows(store) == []


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
