"""API keys: shown once at creation, stored as SHA-256 hashes, listed by prefix, revoked.

Keys are 256 random bits, so a plain SHA-256 (not a slow password hash) is enough: there is
nothing to guess, and a fast hash keeps the per-request check to one indexed lookup.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, insert, select, update

from adpulse.errors import AdpulseError
from adpulse.metadata.store import MetadataStore
from adpulse.metadata.tables import api_keys

KEY_PREFIX = "adp_"
SHOWN_CHARS = 12  # "adp_" + 8 characters: enough to tell keys apart in `apikey list`
MAX_KEY_CHARS = 128


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


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create(store: MetadataStore, name: str) -> NewKey:
    """Store a new key's hash under `name` and return the key itself."""
    name = name.strip()
    if not 1 <= len(name) <= 100 or not name.isprintable():
        raise ApiKeyError(f"key name {name!r} must be 1..100 printable characters")
    key = generate_key()
    prefix, created_at = key[:SHOWN_CHARS], datetime.now(UTC)
    statement = insert(api_keys).values(
        name=name, prefix=prefix, key_hash=hash_key(key), created_at=created_at
    )
    with store.begin() as conn:
        new_id = conn.execute(statement.returning(api_keys.c.id)).scalar_one()
    return NewKey(key, ApiKey(new_id, name, prefix, created_at, None))


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
