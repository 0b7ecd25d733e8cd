"""Errors the API answers with, and the handlers that turn them into JSON for people."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from adpulse.metadata.store import MetadataUnavailable
from api.schemas import ErrorBody

log = logging.getLogger("adpulse.api")


class ApiError(Exception):
    """An answer other than 200 with a one-line `detail`."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers


def bad_parameter(param: str, message: str, value: Any = None) -> RequestValidationError:
    """A 422 in FastAPI's own shape, naming the query parameter at fault."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("query", param), "msg": message, "input": value}]
    )


def _error(description: str) -> dict[str, Any]:
    # Content spelled out (not `model=`): FastAPI would file it under the route's media type,
    # which is text/csv for the export.
    return {
        "description": description,
        "content": {"application/json": {"schema": ErrorBody.model_json_schema()}},
    }


# Documented on every data route so clients (and schemathesis) know these answers.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _error("Missing, unknown or revoked API key"),
    503: _error("ClickHouse or the metadata store is unavailable"),
    504: _error("The query ran out of time; narrow the range"),
}


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=exc.headers)


async def _metadata_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    log.warning("metadata store unavailable: %s", exc)
    return JSONResponse({"detail": str(exc)}, status_code=503)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(MetadataUnavailable, _metadata_unavailable)
