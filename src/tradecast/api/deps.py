"""What routes depend on: the app's services (:class:`ApiContext`) and the caller's role.

Keys come as ``Authorization: Bearer KEY`` or ``X-Api-Key: KEY`` (what LangGraph SDK clients
send). The console signs in once and then sends a session cookie
(:mod:`tradecast.api.sessions`), with its CSRF token on every change. Pages that cannot set
headers (the overlay) may pass a viewer key as ``?key=`` on GET requests that need no more
than the viewer role. No key: 401; a key whose role is too low: 403; control routes also
spend from the key's rate limit: 429.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer

from tradecast.agents.persona_card import PersonaCard
from tradecast.api.audit import DeniedLog
from tradecast.api.auth import KeyRing, Principal
from tradecast.api.errors import ApiError
from tradecast.api.runs import RunStore
from tradecast.api.sessions import (
    CSRF_HEADER,
    SESSION_COOKIE,
    Session,
    csrf_passes,
    session_of,
)
from tradecast.api.sse import FrameCache
from tradecast.bus import EventBus
from tradecast.desk.audience import Audience
from tradecast.desk.metrics import Metrics
from tradecast.desk.publisher import EventPublisher
from tradecast.desk.service import DeskService
from tradecast.graphs.chat import ChatController
from tradecast.graphs.controls import Role, role_allows
from tradecast.ratelimit import RateLimiter, retry_after
from tradecast.settings import Settings
from tradecast.voice.store import SpeechStore


@dataclass
class ApiContext:
    """The services one app instance runs with (built in its lifespan)."""

    settings: Settings
    keys: KeyRing
    limiter: RateLimiter
    metrics: Metrics
    bus: EventBus
    publisher: EventPublisher
    frames: FrameCache
    desk: DeskService
    runs: RunStore
    card: PersonaCard
    chat: ChatController
    """The operator chat graph (its conversations checkpointed with the desk's)."""
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    denied: DeniedLog = field(default_factory=DeniedLog)
    """Refused attempts (logged, rate limited)."""
    speech: SpeechStore | None = None
    """The persona's spoken lines (None: the voice is off)."""
    voice_name: str = ""
    """The voice speaking (``piper:en_US-joe-medium``...), "" when off."""
    audience: Audience | None = None
    """Viewers' chat and the persona's answers (None only in tests that build no app)."""


def get_context(request: Request) -> ApiContext:
    """The app's services (503 while the app is starting or stopping)."""
    ctx: ApiContext | None = getattr(request.app.state, "ctx", None)
    if ctx is None:
        raise ApiError(503, "not_ready", "the desk is starting or stopping; retry shortly")
    return ctx


_bearer = HTTPBearer(auto_error=False, description="an API key: `Authorization: Bearer KEY`")
_header = APIKeyHeader(
    name="X-Api-Key", auto_error=False, description="an API key (what LangGraph SDK clients send)"
)
_query = APIKeyQuery(
    name="key",
    auto_error=False,
    description="a viewer key, for pages that cannot set headers (GET only)",
)
_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


def require(role: Role, *, limited: bool = False) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting keys with at least ``role`` (and rate limited if ``limited``)."""

    async def dependency(
        request: Request,
        bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
        header: str | None = Depends(_header),
        query: str | None = Depends(_query),
    ) -> Principal:
        ctx = get_context(request)
        key = bearer.credentials if bearer else header
        try:
            principal = _admit(ctx, request, role, key, query)
        except ApiError as exc:
            ctx.denied.denied(request, exc.status, exc.message, key or query)
            raise
        if limited:
            wait = await ctx.limiter.take(principal.name)
            if wait > 0:
                ctx.metrics.rate_limited.inc()
                retry = retry_after(wait)
                raise ApiError(
                    429,
                    "rate_limited",
                    f"too many control requests for this key; retry in {retry} s",
                    {"Retry-After": retry},
                )
        request.state.principal = principal
        return principal

    return dependency


def _admit(
    ctx: ApiContext, request: Request, role: Role, key: str | None, query: str | None
) -> Principal:
    """The caller's principal (by header key, else session cookie, else ``?key=``), or the
    401/403 that refuses it."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if key:
        principal = _by_key(ctx, key)
    elif cookie and (session := session_of(ctx.desk.store, ctx.keys, cookie)) is not None:
        principal = _by_session(request, session)
    elif query:
        if role != "viewer" or request.method not in ("GET", "HEAD"):
            raise ApiError(
                401,
                "unauthorized",
                "?key= is accepted only for reads that "
                "need the viewer role; send 'Authorization: Bearer KEY'",
                _UNAUTHORIZED,
            )
        principal = _by_key(ctx, query)
    elif cookie:
        raise ApiError(
            401,
            "unauthorized",
            "the console session has expired or was ended; sign in again",
            _UNAUTHORIZED,
        )
    else:
        raise ApiError(
            401,
            "unauthorized",
            "an API key is required: send 'Authorization: Bearer KEY'",
            _UNAUTHORIZED,
        )
    if not role_allows(principal.role, role):
        raise ApiError(
            403,
            "forbidden",
            f"this needs the {role} role; the key has the {principal.role} role",
        )
    return principal


def _by_key(ctx: ApiContext, key: str) -> Principal:
    principal = ctx.keys.lookup(key)
    if principal is None:
        raise ApiError(401, "unauthorized", "unknown API key", _UNAUTHORIZED)
    return principal


def _by_session(request: Request, session: Session) -> Principal:
    if not csrf_passes(session, request):
        raise ApiError(
            403,
            "csrf_failed",
            f"a change made with a session cookie needs the session's {CSRF_HEADER} header",
        )
    return session.principal


viewer = require("viewer")
operator = require("operator")
operator_control = require("operator", limited=True)
admin_control = require("admin", limited=True)
