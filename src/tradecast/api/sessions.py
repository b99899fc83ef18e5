"""Console sign-in: an API key exchanged for a session cookie that carries no key.

The cookie (:data:`SESSION_COOKIE`) is HttpOnly, SameSite=Strict, Secure when the request
came over TLS (or ``api.secure_cookies``), and expires after ``api.session_ttl_s``. The desk
store keeps only its SHA-256 digest and a digest of the key salted with the cookie, so
sessions survive a restart, are shared by replicas, and end when their key is removed from the
configuration.

Cookies are ambient credentials, so a request that changes state and comes with one must also
carry the session's CSRF token in :data:`CSRF_HEADER` (the synchronizer-token pattern). A key
sent in a header is not ambient and needs no token.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import Request, Response

from tradecast.api.auth import KeyRing, Principal, key_digest
from tradecast.desk.store import DeskStore, StoredSession

SESSION_COOKIE = "tradecast_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_TOKEN_CHARS = 128
"""A longer cookie is no token of ours (it is not even looked up)."""


@dataclass(frozen=True)
class Session:
    """A signed-in console: who it is and the token its state changes must carry."""

    principal: Principal
    csrf_token: str
    expires_at: float

    def as_json(self) -> dict[str, str]:
        """What the page is told about its session."""
        return {
            "role": self.principal.role,
            "name": self.principal.name,
            "csrf_token": self.csrf_token,
            "expires_at": datetime.fromtimestamp(self.expires_at, UTC).isoformat(),
        }


def sign_in(store: DeskStore, keys: KeyRing, key: str, ttl_s: int) -> tuple[str, Session] | None:
    """A new session for ``key`` and its cookie value; None when the key is not configured."""
    principal = keys.lookup(key)
    if principal is None:
        return None
    token = secrets.token_urlsafe(32)
    stored = StoredSession(
        token_digest=key_digest(token),
        key_name=principal.name,
        key_proof=keys.proof(token, key),
        csrf_token=secrets.token_urlsafe(32),
        expires_at=time.time() + ttl_s,
    )
    store.open_session(stored)
    return token, Session(principal, stored.csrf_token, stored.expires_at)


def session_of(store: DeskStore, keys: KeyRing, token: str) -> Session | None:
    """The live session of a cookie value (None: unknown, expired or its key removed)."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    stored = store.session(key_digest(token))
    if stored is None:
        return None
    principal = keys.by_proof(token, stored.key_proof)
    if principal is None:
        return None
    return Session(principal, stored.csrf_token, stored.expires_at)


def sign_out(store: DeskStore, token: str) -> None:
    """End the session of a cookie value (nothing happens for an unknown one)."""
    if token and len(token) <= MAX_TOKEN_CHARS:
        store.close_session(key_digest(token))


def csrf_passes(session: Session, request: Request) -> bool:
    """Whether ``request`` may act with ``session``: reads always; changes with the token."""
    if request.method in SAFE_METHODS:
        return True
    sent = request.headers.get(CSRF_HEADER, "")
    return hmac.compare_digest(sent.encode(), session.csrf_token.encode())


def set_session_cookie(response: Response, token: str, *, ttl_s: int, secure: bool) -> None:
    """Give the browser its session cookie (``secure``: over TLS only)."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=ttl_s,
        path="/",
        httponly=True,
        secure=secure,
        samesite="strict",
    )


def clear_session_cookie(response: Response, *, secure: bool) -> None:
    """Tell the browser to forget its session cookie."""
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, secure=secure, samesite="strict"
    )


def cookie_secure(request: Request, always: bool) -> bool:
    """Whether the cookie must be Secure: the request came over TLS (as the trusted proxy
    says), or the settings say so (``api.secure_cookies``)."""
    return always or request.url.scheme == "https"
