"""Every error the API returns has one JSON shape: ``{"error": {"code", "message"}}``.

Validation errors (422) add ``fields``: each a field path and what is wrong with it. The
domain's refusals are mapped here, once: :class:`~tradecast.errors.NotFound` is a 404
(``not_found``, its message as is), so routes let it propagate. An unexpected exception is
logged with its traceback and answered with a 500 that names a request id to find it in the
log, never the exception itself.
"""

from __future__ import annotations

import traceback
import uuid
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tradecast.errors import ConfirmationRequired, DeskConflict, NotFound, StoreUnavailable
from tradecast.logs import get_logger

log = get_logger(__name__)


RETRY_AFTER_S = 5
"""What a 503 for an unreachable desk store tells the client to wait."""


class ApiError(Exception):
    """An error answered as JSON with ``status`` (raise it from routes and dependencies)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
        *,
        fields: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.fields = fields


class ErrorDetail(BaseModel):
    """What went wrong."""

    code: str
    message: str
    fields: list[dict[str, str]] | None = None


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "no API key, or an unknown one"},
    403: {"model": ErrorBody, "description": "the key's role may not do this"},
    422: {"model": ErrorBody, "description": "invalid input (fields say which and why)"},
}
CONTROL_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    413: {"model": ErrorBody, "description": "request body over TRADECAST_API__MAX_BODY_BYTES"},
    429: {"model": ErrorBody, "description": "rate limited (see Retry-After)"},
}


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    fields: list[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The JSON error response."""
    body: dict[str, Any] = {"code": code, "message": message}
    if fields is not None:
        body["fields"] = fields
    return JSONResponse({"error": body}, status_code=status, headers=dict(headers or {}))


def _code_for(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "request"


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, fields=exc.fields, headers=exc.headers)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return error_response(
        exc.status_code, _code_for(exc.status_code), message, headers=getattr(exc, "headers", None)
    )


async def _not_found(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, NotFound)
    return error_response(404, "not_found", str(exc))


async def _conflict(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DeskConflict)
    return error_response(409, "conflict", str(exc))


async def _store_unavailable(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StoreUnavailable)
    return error_response(
        503, "unavailable", f"{exc}; retry shortly", headers={"Retry-After": str(RETRY_AFTER_S)}
    )


async def _confirmation_required(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ConfirmationRequired)
    response = error_response(409, "confirmation_required", str(exc))
    response.headers["X-Confirm-Token"] = exc.token
    return response


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = [
        {"field": _field(tuple(err.get("loc", ()))), "message": str(err.get("msg", ""))}
        for err in exc.errors()
    ]
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5]) or "invalid input"
    return error_response(422, "validation_error", summary, fields=fields)


class CatchAllMiddleware:
    """Turns an exception no handler took into the JSON 500 (and logs it once, with a request
    id), instead of letting the server answer with its own body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            request_id = uuid.uuid4().hex[:12]
            log.error(
                "api.unhandled_error",
                request_id=request_id,
                path=scope.get("path"),
                method=scope.get("method"),
                exception="".join(traceback.format_exception(exc)),
            )
            if started:
                return  # the response was under way: all we can do is end it
            response = error_response(
                500,
                "internal_error",
                f"internal error; the server log has the details (request id {request_id})",
            )
            await response(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error as ``{"error": {...}}``."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(DeskConflict, _conflict)
    app.add_exception_handler(ConfirmationRequired, _confirmation_required)
    app.add_exception_handler(StoreUnavailable, _store_unavailable)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(CatchAllMiddleware)
