"""Console sign-in (``/v1/session``): an API key in, a session cookie and CSRF token out
(:mod:`tradecast.api.sessions`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from tradecast.api.deps import ApiContext, get_context
from tradecast.api.errors import ERROR_RESPONSES, ApiError
from tradecast.api.sessions import (
    SESSION_COOKIE,
    Session,
    clear_session_cookie,
    cookie_secure,
    csrf_passes,
    session_of,
    set_session_cookie,
    sign_in,
    sign_out,
)
from tradecast.ratelimit import retry_after

router = APIRouter(prefix="/v1/session", tags=["ops"])
MAX_KEY_CHARS = 256


class SignIn(BaseModel):
    """The API key to sign in with (it is not kept: the session is)."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=MAX_KEY_CHARS)


class SessionView(BaseModel):
    """A signed-in console: its role, and the token every change it makes must carry."""

    role: str
    name: str = Field(description="the key's public name, as the journal records it")
    csrf_token: str = Field(description="send it as X-CSRF-Token on every POST/PUT/DELETE")
    expires_at: str = Field(description="when the session ends (ISO 8601)")


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, {"WWW-Authenticate": "Bearer"})


def _current(request: Request, ctx: ApiContext) -> Session:
    session = session_of(ctx.desk.store, ctx.keys, request.cookies.get(SESSION_COOKIE, ""))
    if session is None:
        raise _unauthorized("not signed in, or the session has expired")
    return session


@router.post("", response_model=SessionView, responses=ERROR_RESPONSES)
async def open_session(
    body: SignIn, request: Request, response: Response, ctx: ApiContext = Depends(get_context)
) -> dict[str, str]:
    """Sign in with an API key: sets the ``tradecast_session`` cookie (HttpOnly,
    SameSite=Strict, Secure over TLS) and answers the session's CSRF token; a session this
    browser held before ends. Attempts are rate limited per client address."""
    client = request.client.host if request.client else "unknown"
    wait = await ctx.limiter.take(f"sign-in:{client}")
    if wait > 0:
        retry = retry_after(wait)
        raise ApiError(
            429, "rate_limited", f"too many sign-ins; retry in {retry} s", {"Retry-After": retry}
        )
    opened = sign_in(ctx.desk.store, ctx.keys, body.key, ctx.settings.api.session_ttl_s)
    if opened is None:
        ctx.denied.denied(request, 401, "sign-in with an unknown key", body.key)
        raise _unauthorized("unknown API key")
    token, session = opened
    sign_out(ctx.desk.store, request.cookies.get(SESSION_COOKIE, ""))
    set_session_cookie(
        response,
        token,
        ttl_s=ctx.settings.api.session_ttl_s,
        secure=cookie_secure(request, ctx.settings.api.secure_cookies),
    )
    return session.as_json()


@router.get("", response_model=SessionView, responses=ERROR_RESPONSES)
async def current_session(
    request: Request, ctx: ApiContext = Depends(get_context)
) -> dict[str, str]:
    """The session of this browser's cookie (401: not signed in)."""
    return _current(request, ctx).as_json()


@router.delete("", status_code=204, responses=ERROR_RESPONSES)
async def close_session(request: Request, ctx: ApiContext = Depends(get_context)) -> Response:
    """Sign out: the session ends on the server and the cookie is cleared. A live session
    needs its CSRF header; a cookie that is no longer a session is just cleared."""
    token = request.cookies.get(SESSION_COOKIE, "")
    session = session_of(ctx.desk.store, ctx.keys, token)
    if session is not None and not csrf_passes(session, request):
        raise ApiError(403, "csrf_failed", "signing out needs the session's X-CSRF-Token")
    sign_out(ctx.desk.store, token)
    response = Response(status_code=204)
    clear_session_cookie(response, secure=cookie_secure(request, ctx.settings.api.secure_cookies))
    return response
