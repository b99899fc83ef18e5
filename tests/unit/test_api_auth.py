"""API keys, roles and the control rate limit."""

from __future__ import annotations

import pytest

from tradecast.api.auth import KeyRing
from tradecast.settings import load_settings


def test_keys_parse_with_several_per_role_and_names_that_hide_the_key():
    ring = KeyRing.parse(
        " viewer:aaaaaaaa1 , operator:bbbbbbbb2,operator:cccccccc3,admin:dddddddd4,"
    )
    assert dict(ring.roles()) == {"viewer": 1, "operator": 2, "admin": 1}
    principal = ring.lookup("cccccccc3")
    assert principal is not None and principal.role == "operator"
    assert principal.name.startswith("operator:") and "cccccccc3" not in principal.name
    assert ring.lookup("bbbbbbbb2").name != principal.name
    assert ring.lookup("nope") is None and ring.lookup("") is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("viewer", "must be 'role:KEY'"),
        ("root:aaaaaaaaaa", "must be 'role:KEY'"),
        ("viewer:short", "at least 8 characters"),
        ("viewer:has space in", "at least 8 characters"),
        ("viewer:aaaaaaaa1,admin:aaaaaaaa1", "configured twice"),
        (" , ", "no API keys"),
    ],
)
def test_bad_key_settings_say_what_is_wrong(spec: str, message: str):
    with pytest.raises(ValueError, match=message):
        KeyRing.parse(spec)


def test_generated_keys_are_random_and_one_per_role():
    first, keys = KeyRing.generate()
    _, other = KeyRing.generate()
    assert set(keys) == {"viewer", "operator", "admin"}
    assert all(len(k) >= 32 for k in keys.values()) and keys != other
    assert first.lookup(keys["admin"]).role == "admin"


def test_tradecast_api_keys_is_the_same_as_the_nested_setting(monkeypatch):
    monkeypatch.setenv("TRADECAST_API_KEYS", "viewer:aaaaaaaa1")
    assert load_settings().api.api_keys == "viewer:aaaaaaaa1"
    monkeypatch.setenv("TRADECAST_API__API_KEYS", "admin:bbbbbbbb2")
    assert load_settings().api.api_keys == "admin:bbbbbbbb2", "the nested one wins"
