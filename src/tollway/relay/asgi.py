"""Minimal ASGI plumbing for the data plane: no framework objects on the hot path."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeVar

import orjson

from tollway.errors import PayloadTooLarge

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]
T = TypeVar("T")

JSON_CT = (b"content-type", b"application/json")
SSE_CT = (b"content-type", b"text/event-stream; charset=utf-8")


def header(scope: Scope, name: bytes) -> bytes | None:
    for k, v in scope["headers"]:
        if k == name:
            return bytes(v)
    return None


async def read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionResetError("client went away while sending the request")
        body = message.get("body", b"")
        if body:
            size += len(body)
            if size > limit:
                raise PayloadTooLarge(f"the request body is larger than the limit of {limit} bytes")
            chunks.append(body)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_bytes(send: Send, status: int, body: bytes, headers: Headers) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_json(send: Send, status: int, payload: Any, headers: Headers) -> None:
    await send_bytes(send, status, orjson.dumps(payload), [JSON_CT, *headers])


class ClientGone(Exception):
    """The client disconnected before the call finished."""


class ClientWatch:
    """Notices a client disconnect from the moment the body is read to the end of the call.

    ``race(aw)`` runs ``aw`` and cancels it if the client leaves first (raising ClientGone),
    so an upstream call nobody will read is stopped; ``on_gone`` registers other reactions.
    """

    def __init__(self, receive: Receive) -> None:
        self.gone = asyncio.Event()
        self._callbacks: list[Callable[[], object]] = []
        self._task = asyncio.get_running_loop().create_task(self._watch(receive))

    async def _watch(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.gone.set()
                for callback in list(self._callbacks):
                    callback()
                return

    def on_gone(self, callback: Callable[[], object]) -> None:
        self._callbacks.append(callback)

    async def race(self, aw: Awaitable[T]) -> T:
        if self.gone.is_set():
            raise ClientGone
        # Cancel the calling task itself on disconnect (no extra task per awaited step).
        task = asyncio.current_task()
        assert task is not None
        self._callbacks.append(task.cancel)
        try:
            return await aw
        except asyncio.CancelledError:
            if self.gone.is_set() and task.uncancel() == 0:
                raise ClientGone from None
            raise
        finally:
            self._callbacks.remove(task.cancel)

    def close(self) -> None:
        self._task.cancel()
