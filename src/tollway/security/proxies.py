"""Trusted reverse proxies (``TOLLWAY_TRUSTED_PROXIES``): who the client is, and over what scheme.

``X-Forwarded-For`` and ``X-Forwarded-Proto`` are honoured only when the TCP peer is one of
the trusted addresses or networks. The client is then the right-most address of
``X-Forwarded-For`` that is not trusted (each trusted proxy appends the peer it saw; whatever
is left of that was written by the client and proves nothing). From any other peer these
headers change nothing. ``Forwarded`` (RFC 7239) is deliberately not read: a proxy that sets
``X-Forwarded-For`` usually passes a client's ``Forwarded`` through untouched, so reading both
would let the client choose. This is the one mechanism: uvicorn's own ``--proxy-headers`` is
switched off in :mod:`tollway.serving`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import MutableMapping
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_ADDRESS_CHARS = 64  # usage_records.client_ip


def parse_trusted(text: str) -> tuple[Network, ...]:
    """``"10.0.0.1, 172.16.0.0/12, ::1"`` -> networks; raises ``ValueError`` naming a bad entry."""
    nets: list[Network] = []
    for part in text.split(","):
        entry = part.strip()
        if not entry:
            continue
        try:
            nets.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or network: {entry!r}") from None
    return tuple(nets)


CACHE_SIZE = 4096  # addresses judged (the proxies' own repeat on every request)


class TrustedProxies:
    def __init__(self, networks: tuple[Network, ...]) -> None:
        self.networks = networks
        self._judged: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, address: str) -> bool:
        known = self._judged.get(address)
        if known is None:
            if len(self._judged) >= CACHE_SIZE:
                self._judged.clear()
            known = self._judged[address] = self._trusts(address)
        return known

    def _trusts(self, address: str) -> bool:
        try:
            addr = ipaddress.ip_address(address.strip().strip("[]"))
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return any(addr in net for net in self.networks)

    def client_of(self, forwarded_for: str) -> str | None:
        """The right-most entry of an ``X-Forwarded-For`` value not trusted (the left-most
        when all are trusted); ``None`` for an empty value."""
        entries = [e.strip() for e in forwarded_for.split(",")]
        entries = [e for e in entries if e]
        if not entries:
            return None
        for entry in reversed(entries):
            if not self.trusts(_bare(entry)):
                return _bare(entry)[:MAX_ADDRESS_CHARS]
        return _bare(entries[0])[:MAX_ADDRESS_CHARS]

    def resolve(self, scope: MutableMapping[str, Any]) -> None:
        """Rewrite ``scope["client"]`` and ``scope["scheme"]`` from the forwarded headers when
        the peer is trusted; otherwise leave the scope as the server made it."""
        peer = scope.get("client")
        if not peer or not self.trusts(str(peer[0])):
            return
        forwarded_for = proto = None
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":  # several header lines: one list, in order
                text = value.decode("latin-1")
                forwarded_for = text if forwarded_for is None else f"{forwarded_for},{text}"
            elif name == b"x-forwarded-proto":
                proto = value.decode("latin-1")
        if forwarded_for is not None and (client := self.client_of(forwarded_for)) is not None:
            scope["client"] = (client, 0)
        if proto is not None:
            last = proto.rsplit(",", 1)[-1].strip().lower()  # the proxy nearest to us appended last
            if scope["type"] == "websocket":
                last = {"http": "ws", "https": "wss"}.get(last, last)
            if last in ("http", "https", "ws", "wss"):
                scope["scheme"] = last


def _bare(entry: str) -> str:
    """An address without its port (``1.2.3.4:5678``, ``[2001:db8::1]:443``)."""
    if entry.startswith("["):
        return entry[1:].split("]", 1)[0]
    if entry.count(":") == 1:
        return entry.split(":", 1)[0]
    return entry
