"""API keys: shown once at creation, stored as SHA-256 hashes, listed by prefix, revoked.

Keys are 256 random bits, so a plain SHA-256 (not a slow password hash) is enough: there is
nothing to guess, and a fast hash keeps the per-request check to one indexed lookup. Most keys
are made here (`create`); a deployment's own key, the dashboard's, is made by the stack and
registered by the API at startup (`register`).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Insert, Row, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from adpulse.errors import AdpulseError
from adpulse.metadata.store import MetadataStore
from adpulse.metadata.tables import api_keys

KEY_PREFIX = "adp_"
SHOWN_CHARS = 12  # "adp_" + 8 characters: enough to tell keys apart in `apikey list`
MAX_KEY_CHARS = 128
DASHBOARD = "dashboard"  # the name the API registers ADPULSE_DASHBOARD_API_KEY under
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
    revoked_at: datetime | None


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
    revoked: tuple[ApiKey, ...]  # the older keys of its name this call revoked


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


def register(store: MetadataStore, name: str, key: str) -> Registered:
    """Store a key made elsewhere (the stack's dashboard key) under `name` unless its hash is
    stored already, and revoke the older keys of that name: a rotated key replaces the last.

    Idempotent, and safe when API replicas start at once: the unique `key_hash` lets one insert
    win and the others find its row, and each older key is revoked once. A key revoked before
    stays revoked and revokes nothing, so a host still holding a rotated-out key cannot undo
    the rotation (`record.revoked_at` tells the caller). Raises ApiKeyError, without the value,
    for a name or key `create` would not make.
    """
    name = _checked_name(name)
    if not is_well_formed(key):
        raise ApiKeyError(
            f"the key to register as {name!r} is not an adpulse API key ({KEY_PREFIX} and 43 "
            f"to {MAX_KEY_CHARS - len(KEY_PREFIX)} URL-safe characters)"
        )
    key_hash, now = hash_key(key), datetime.now(UTC)
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
            .values(revoked_at=now)
            .returning(*_COLUMNS)
        )
        revoked = tuple(_record(row) for row in conn.execute(older))
    return Registered(record, revoked)


def list_keys(store: MetadataStore, *, include_revoked: bool = True) -> list[ApiKey]:
    query = select(*_COLUMNS).order_by(api_keys.c.id)
    if not include_revoked:
        query = query.where(api_keys.c.revoked_at.is_(None))
    with store.begin() as conn:
        return [_record(row) for row in conn.execute(query)]


def revoke(store: MetadataStore, ident: str) -> ApiKey:
    """Revoke the key with this id or prefix. Revoking a revoked key changes nothing."""
    column = api_keys.c.id if ident.isdigit() else api_keys.c.prefix
    value: int | str = int(ident) if ident.isdigit() else ident
    with store.begin() as conn:
        rows = conn.execute(select(*_COLUMNS).where(column == value)).all()
        if not rows:
            raise ApiKeyError(f"no API key with id or prefix {ident!r}; see `adpulse apikey list`")
        if len(rows) > 1:
            raise ApiKeyError(f"prefix {ident!r} names {len(rows)} keys; revoke by id instead")
        record = _record(rows[0])
        if record.revoked_at is None:
            now = datetime.now(UTC)
            conn.execute(update(api_keys).where(api_keys.c.id == record.id).values(revoked_at=now))
            record = ApiKey(record.id, record.name, record.prefix, record.created_at, now)
    return record


def verify(store: MetadataStore, presented: str) -> bool:
    """True when `presented` is a stored key that is not revoked."""
    if not presented.startswith(KEY_PREFIX) or len(presented) > MAX_KEY_CHARS:
        return False
    query = select(api_keys.c.id).where(
        api_keys.c.key_hash == hash_key(presented), api_keys.c.revoked_at.is_(None)
    )
    with store.begin() as conn:
        return conn.execute(query).first() is not None


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
