"""API keys with roles: ``viewer`` (streams and reads) < ``operator`` (chat, desk control,
approvals) < ``admin`` (risk limits, kill switch).

Keys are configured as ``TRADECAST_API_KEYS="viewer:KEY,operator:KEY,admin:KEY"`` (several
keys per role allowed). With none configured the server generates one key per role at start
and logs them once: it never runs open. Keys are compared by their SHA-256 digest, and a key's
public name (``operator:3f2a9c1d``, a digest prefix) is what the journal records as the actor.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tradecast.graphs.controls import ROLE_RANK, Role

MIN_KEY_LENGTH = 8
KEY_ALPHABET_HINT = "letters, digits and -_.~+/="


@dataclass(frozen=True)
class Principal:
    """Who is calling: the role of their key and the key's public name."""

    role: Role
    name: str


def key_digest(key: str) -> str:
    """The SHA-256 digest a key (or a session cookie) is known by."""
    return hashlib.sha256(key.encode()).hexdigest()


def _proof(salt: str, digest: str) -> str:
    return hashlib.sha256(f"{salt}:{digest}".encode()).hexdigest()


class KeyRing:
    """The configured API keys, looked up by digest."""

    def __init__(self, keys: Iterable[tuple[Role, str]]) -> None:
        self._by_digest: dict[str, Principal] = {}
        for role, key in keys:
            digest = key_digest(key)
            if digest in self._by_digest:
                raise ValueError("the same API key is configured twice")
            self._by_digest[digest] = Principal(role, f"{role}:{digest[:8]}")
        if not self._by_digest:
            raise ValueError("no API keys configured")

    @classmethod
    def parse(cls, spec: str) -> KeyRing:
        """Keys from ``'role:KEY,role:KEY'``; ValueError says which entry is wrong and why."""
        entries: list[tuple[Role, str]] = []
        for position, raw in enumerate(spec.split(","), start=1):
            entry = raw.strip()
            if not entry:
                continue
            role, sep, key = entry.partition(":")
            role, key = role.strip().lower(), key.strip()
            if not sep or role not in ROLE_RANK:
                raise ValueError(
                    f"API key entry {position} must be 'role:KEY' with role viewer, operator "
                    f"or admin (got {role[:20]!r})"
                )
            if len(key) < MIN_KEY_LENGTH or any(c.isspace() for c in key):
                raise ValueError(
                    f"API key entry {position} ({role}): the key must be at least "
                    f"{MIN_KEY_LENGTH} characters without spaces ({KEY_ALPHABET_HINT})"
                )
            entries.append((role, key))
        if not entries:
            raise ValueError("no API keys in the setting; expected 'viewer:KEY,operator:KEY,...'")
        return cls(entries)

    @classmethod
    def generate(cls) -> tuple[KeyRing, dict[Role, str]]:
        """One fresh random key per role (for a server started without configured keys)."""
        keys: dict[Role, str] = {role: secrets.token_urlsafe(24) for role in ROLE_RANK}
        return cls(keys.items()), keys

    def lookup(self, key: str) -> Principal | None:
        """The principal of ``key`` (None: not a configured key)."""
        if not key:
            return None
        return self._by_digest.get(key_digest(key))

    def by_proof(self, salt: str, proof: str) -> Principal | None:
        """The principal of the key whose :func:`key_proof` with ``salt`` is ``proof`` (None:
        no configured key has it)."""
        for digest, principal in self._by_digest.items():
            if hmac.compare_digest(_proof(salt, digest), proof):
                return principal
        return None

    def proof(self, salt: str, key: str) -> str:
        """A digest of ``key`` salted with ``salt``: what a session stores instead of the key's
        plain digest, so a copy of the store gives nothing to guess keys from offline."""
        return _proof(salt, key_digest(key))

    def roles(self) -> Mapping[Role, int]:
        """How many keys each role has."""
        counts: dict[Role, int] = dict.fromkeys(ROLE_RANK, 0)
        for principal in self._by_digest.values():
            counts[principal.role] += 1
        return counts
