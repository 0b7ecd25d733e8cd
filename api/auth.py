"""API keys on every data route: `Authorization: Bearer <key>`, checked against stored hashes.

The key is never logged: it lives only in the header, which no log line of adpulse or uvicorn
prints, and in this function's locals while it is hashed. A key that passed is trusted for
`api_key_cache_s` seconds without asking the store again (see cache.VerifiedKeys).
"""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from adpulse.metadata import api_keys
from api.deps import ContextDep
from api.errors import ApiError

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An adpulse API key (`adpulse apikey create NAME`), sent as a Bearer token",
)
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


async def require_api_key(
    ctx: ContextDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Refuse the request with 401 unless it carries a stored, unrevoked key."""
    if credentials is None:
        ctx.metrics.auth_failures.labels("missing").inc()
        raise ApiError(
            401,
            "missing API key: send `Authorization: Bearer <key>`; an operator creates keys with "
            "`adpulse apikey create NAME`",
            _CHALLENGE,
        )
    key_hash = api_keys.hash_key(credentials.credentials)
    if ctx.verified_keys.fresh(key_hash):
        return
    valid = await anyio.to_thread.run_sync(api_keys.verify, ctx.store, credentials.credentials)
    if not valid:
        ctx.metrics.auth_failures.labels("invalid").inc()
        raise ApiError(401, "API key not recognised or revoked; ask for a new one", _CHALLENGE)
    ctx.verified_keys.remember(key_hash)
