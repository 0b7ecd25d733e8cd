"""API keys: shown once at creation, stored as SHA-256 hashes, listed by prefix, revoked.

Keys are 256 random bits, so a plain SHA-256 (not a slow password hash) is enough: there is
nothing to guess, and a fast hash keeps the per-request check to one indexed lookup. Most keys
are made here (`create`); a deployment's own key, the dashboard's, is made by the stack and
registered by the API at startup (`register`).

A key verifies until its `revoked_at`. `revoke` sets it to now; `register`, replacing older
keys of a name, sets theirs to now + a grace period, so a key can be "retiring": revoked at a
time still to come, and verifying until then.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, Connection, Insert, Row, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from adpulse.errors import AdpulseError
from adpulse.metadata.store import MetadataStore
from adpulse.metadata.tables import api_keys

KEY_PREFIX = "adp_"
SHOWN_CHARS = 12  # "adp_" + 8 characters: enough to tell keys apart in `apikey list`
MAX_KEY_CHARS = 128
DASHBOARD = "dashboard"  # the name the API registers ADPULSE_DASHBOARD_API_KEY under
# How long a replaced key still verifies: a rolling deploy reaches every host well within it, and
# until a host's turn its dashboard sends the key it was deployed with. The API reads
# ADPULSE_KEY_ROTATION_GRACE_S, whose default this is (tests/test_settings.py holds them equal).
ROTATION_GRACE = timedelta(hours=1)
# A key made elsewhere must be as strong as ours: 43 URL-safe characters carry 256 bits.
_WELL_FORMED = re.compile(rf"{KEY_PREFIX}[A-Za-z0-9_-]{{43,{MAX_KEY_CHARS - len(KEY_PREFIX)}}}")


class ApiKeyError(AdpulseError):
    """An API key command named no key, or an ambiguous one."""


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None  # from then on the key does not verify; may be still to come

    def state(self, now: datetime) -> Literal["active", "retiring", "revoked"]:
        """Active (never revoked), retiring (revoked at a time after `now`) or revoked."""
        if self.revoked_at is None:
            return "active"
        return "retiring" if self.revoked_at > now else "revoked"


@dataclass(frozen=True)
class NewKey:
    key: str  # the secret; shown once, never stored
    record: ApiKey


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def is_well_formed(key: str) -> bool:
    """Whether `key` is what `generate_key` makes: the prefix and at least 256 random bits."""
    return _WELL_FORMED.fullmatch(key) is not None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Registered:
    record: ApiKey  # the registered key; revoked_at set if it had been replaced before
    # The older keys of its name this call retired: revoked at now + grace.
    revoked: tuple[ApiKey, ...]


def create(store: MetadataStore, name: str) -> NewKey:
    """Store a new key's hash under `name` and return the key itself."""
    name = _checked_name(name)
    key = generate_key()
    prefix, created_at = key[:SHOWN_CHARS], datetime.now(UTC)
    statement = insert(api_keys).values(
        name=name, prefix=prefix, key_hash=hash_key(key), created_at=created_at
    )
    with store.begin() as conn:
        new_id = conn.execute(statement.returning(api_keys.c.id)).scalar_one()
    return NewKey(key, ApiKey(new_id, name, prefix, created_at, None))


def register(
    store: MetadataStore,
    name: str,
    key: str,
    *,
    grace: timedelta = ROTATION_GRACE,
    now: datetime | None = None,
) -> Registered:
    """Store a key made elsewhere (the stack's dashboard key) under `name` unless its hash is
    stored already, and retire the older keys of that name: a rotated key replaces the last.

    A retired key is revoked at `now + grace`, not at once: during a rolling deploy the hosts
    not yet deployed serve dashboards that still send it. A key already retiring or revoked
    keeps its time (`revoke` ends a grace early). Idempotent, and safe when API replicas start
    at once: the unique `key_hash` lets one insert win and the others find its row, and each
    older key is retired once. A key revoked or retiring before stays so and retires nothing,
    so a host still holding a rotated-out key cannot undo the rotation (`record.revoked_at`
    tells the caller). Raises ApiKeyError, without the value, for a name or key `create` would
    not make, or a negative grace.
    """
    name = _checked_name(name)
    if not is_well_formed(key):
        raise ApiKeyError(
            f"the key to register as {name!r} is not an adpulse API key ({KEY_PREFIX} and 43 "
            f"to {MAX_KEY_CHARS - len(KEY_PREFIX)} URL-safe characters)"
        )
    if grace < timedelta(0):
        raise ApiKeyError(f"the grace of a replaced {name!r} key must not be negative: {grace}")
    key_hash, now = hash_key(key), _now(now)
    values = {"name": name, "prefix": key[:SHOWN_CHARS], "key_hash": key_hash, "created_at": now}
    with store.begin() as conn:
        conn.execute(_insert_unless_stored(conn, values))
        record = _record(
            conn.execute(select(*_COLUMNS).where(api_keys.c.key_hash == key_hash)).one()
        )
        if record.revoked_at is not None:
            return Registered(record, ())
        older = (
            update(api_keys)
            .where(
                api_keys.c.name == name,
                api_keys.c.id < record.id,
                api_keys.c.revoked_at.is_(None),
            )
            .values(revoked_at=now + grace)
            .returning(*_COLUMNS)
        )
        revoked = tuple(_record(row) for row in conn.execute(older))
    return Registered(record, revoked)


def list_keys(
    store: MetadataStore, *, include_revoked: bool = True, now: datetime | None = None
) -> list[ApiKey]:
    """Every key by id; without `include_revoked`, those that verify at `now` (retiring ones
    too)."""
    query = select(*_COLUMNS).order_by(api_keys.c.id)
    if not include_revoked:
        query = query.where(_verifies_at(_now(now)))
    with store.begin() as conn:
        return [_record(row) for row in conn.execute(query)]


def revoke(store: MetadataStore, ident: str, *, now: datetime | None = None) -> ApiKey:
    """Revoke the key with this id or prefix at once, a retiring key too (its grace ends now).
    Revoking a revoked key changes nothing."""
    column = api_keys.c.id if ident.isdigit() else api_keys.c.prefix
    value: int | str = int(ident) if ident.isdigit() else ident
    with store.begin() as conn:
        rows = conn.execute(select(*_COLUMNS).where(column == value)).all()
        if not rows:
            raise ApiKeyError(f"no API key with id or prefix {ident!r}; see `adpulse apikey list`")
        if len(rows) > 1:
            raise ApiKeyError(f"prefix {ident!r} names {len(rows)} keys; revoke by id instead")
        record, now = _record(rows[0]), _now(now)
        if record.state(now) != "revoked":
            conn.execute(update(api_keys).where(api_keys.c.id == record.id).values(revoked_at=now))
            record = ApiKey(record.id, record.name, record.prefix, record.created_at, now)
    return record


def verify(store: MetadataStore, presented: str, *, now: datetime | None = None) -> bool:
    """True when `presented` is a stored key not revoked at `now` (default: the clock's now)."""
    if not presented.startswith(KEY_PREFIX) or len(presented) > MAX_KEY_CHARS:
        return False
    query = select(api_keys.c.id).where(
        api_keys.c.key_hash == hash_key(presented), _verifies_at(_now(now))
    )
    with store.begin() as conn:
        return conn.execute(query).first() is not None


def _now(now: datetime | None) -> datetime:
    # In UTC: SQLite stores times without their zone, and compares them as text.
    return datetime.now(UTC) if now is None else now.astimezone(UTC)


def _verifies_at(now: datetime) -> ColumnElement[bool]:
    return or_(api_keys.c.revoked_at.is_(None), api_keys.c.revoked_at > now)


def _checked_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= 100 or not name.isprintable():
        raise ApiKeyError(f"key name {name!r} must be 1..100 printable characters")
    return name


def _insert_unless_stored(conn: Connection, values: dict[str, Any]) -> Insert:
    """INSERT that does nothing when the key's hash is stored (also by a concurrent insert:
    Postgres waits for that one to commit, then skips)."""
    if conn.dialect.name == "postgresql":
        return (
            postgresql.insert(api_keys)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[api_keys.c.key_hash])
        )
    return (
        sqlite.insert(api_keys)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[api_keys.c.key_hash])
    )


_COLUMNS = (
    api_keys.c.id,
    api_keys.c.name,
    api_keys.c.prefix,
    api_keys.c.created_at,
    api_keys.c.revoked_at,
)


def _utc(moment: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; every stored time is UTC.
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def _record(row: Row[Any, Any, Any, Any, Any]) -> ApiKey:
    created = _utc(row.created_at)
    assert created is not None
    return ApiKey(row.id, row.name, row.prefix, created, _utc(row.revoked_at))
