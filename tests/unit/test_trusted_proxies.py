"""Parsing TOLLWAY_TRUSTED_PROXIES and choosing the client from X-Forwarded-For."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from tollway.security.proxies import TrustedProxies, parse_trusted
from tollway.settings import Settings


def proxies(text: str) -> TrustedProxies:
    return TrustedProxies(parse_trusted(text))


def test_parse_accepts_addresses_networks_and_blanks() -> None:
    nets = parse_trusted(" 10.0.0.1, 172.16.0.0/12 ,, ::1, fd00::/8 ")
    assert [str(n) for n in nets] == ["10.0.0.1/32", "172.16.0.0/12", "::1/128", "fd00::/8"]
    assert parse_trusted("") == ()


def test_a_typo_fails_at_start_up() -> None:
    with pytest.raises(ValueError, match=r"'10\.0\.0\.300'"):
        parse_trusted("10.0.0.1, 10.0.0.300")
    with pytest.raises(ValidationError, match="trusted_proxies"):
        Settings(trusted_proxies="localhost")


@pytest.mark.parametrize(
    ("xff", "client"),
    [
        ("198.51.100.7", "198.51.100.7"),
        ("198.51.100.7, 10.0.0.2", "198.51.100.7"),
        ("1.1.1.1, 198.51.100.7, 10.0.0.2", "198.51.100.7"),  # the left is the client's claim
        ("198.51.100.7:1234, 10.0.0.2", "198.51.100.7"),
        ("[2001:db8::5]:443", "2001:db8::5"),
        ("2001:db8::5", "2001:db8::5"),
        ("10.0.0.3, 10.0.0.2", "10.0.0.3"),  # all trusted: the left-most
        ("not-an-ip, 10.0.0.2", "not-an-ip"),  # no address: allow lists refuse it
        (" , ", None),
    ],
)
def test_the_client_is_the_right_most_untrusted_entry(xff: str, client: str | None) -> None:
    assert proxies("10.0.0.0/8").client_of(xff) == client


def scope(peer: str, *headers: tuple[bytes, bytes], kind: str = "http") -> dict[str, Any]:
    scheme = "http" if kind == "http" else "ws"
    return {"type": kind, "scheme": scheme, "client": (peer, 1), "headers": list(headers)}


def test_only_a_trusted_peer_rewrites_the_scope() -> None:
    p = proxies("10.0.0.0/8")
    hdrs = ((b"x-forwarded-for", b"198.51.100.7"), (b"x-forwarded-proto", b"https"))
    untrusted = scope("203.0.113.9", *hdrs)
    p.resolve(untrusted)
    assert untrusted["client"] == ("203.0.113.9", 1) and untrusted["scheme"] == "http"
    trusted = scope("10.0.0.9", *hdrs)
    p.resolve(trusted)
    assert trusted["client"] == ("198.51.100.7", 0) and trusted["scheme"] == "https"
    odd = scope("10.0.0.9", (b"x-forwarded-proto", b"gopher"))
    p.resolve(odd)
    assert odd["scheme"] == "http" and odd["client"] == ("10.0.0.9", 1)
    ws = scope("10.0.0.9", (b"x-forwarded-proto", b"http, https"), kind="websocket")
    p.resolve(ws)
    assert ws["scheme"] == "wss"
    no_client: dict[str, Any] = {"type": "http", "scheme": "http", "client": None, "headers": []}
    p.resolve(no_client)
    assert no_client["client"] is None
