"""A cap on request bodies, so an oversized one is refused before it is held in memory.

A declared ``Content-Length`` over the cap is answered at once; a chunked body is counted as
it arrives and refused as soon as it passes the cap. Both answers are the API's JSON error.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tradecast.api.errors import error_response

SETTING = "TRADECAST_API__MAX_BODY_BYTES"
CODE = "content_too_large"


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a chunked body passes the cap (FastAPI re-raises
    HTTPExceptions met while reading a body, so the API's handler answers it)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes ({SETTING})")


class BodyLimitMiddleware:
    """Refuse HTTP request bodies over ``limit`` bytes with a JSON 413."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            await _answer(BodyTooLarge(self.limit))(scope, receive, send)
            return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, counted_receive, send)


def _answer(problem: BodyTooLarge) -> JSONResponse:
    return error_response(problem.status_code, CODE, str(problem.detail))


async def _body_too_large(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BodyTooLarge)
    return _answer(exc)


def install_body_limit(app: FastAPI, limit: int) -> None:
    """Cap ``app``'s request bodies at ``limit`` bytes."""
    app.add_exception_handler(BodyTooLarge, _body_too_large)
    app.add_middleware(BodyLimitMiddleware, limit=limit)
