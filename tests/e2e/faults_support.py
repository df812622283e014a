"""Shared pieces of the fault-injection suites (tests/e2e/test_faults_*.py): the server they
run, an in-test chaos upstream, a TCP relay, and helpers to read metrics and records."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import struct
import threading
import time
from typing import Any

import openai

from tollway.settings import normalise_database_url
from tollway.store.db import make_engine

from .calls import fake
from .stack import Stack, free_port, http_json

MODEL = "gpt-4o-mini"
SERVER_ENV = {
    "TOLLWAY_BREAKER_OPEN_S": "1",
    "TOLLWAY_BREAKER_MAX_OPEN_S": "2",
    "TOLLWAY_PROBE_INTERVAL_S": "0.3",
    "TOLLWAY_PROBE_TIMEOUT_S": "2",
    "TOLLWAY_UPSTREAM_FIRST_BYTE_TIMEOUT_S": "1",
    "TOLLWAY_UPSTREAM_IDLE_TIMEOUT_S": "1",
    "TOLLWAY_LOG_FORMAT": "json",
}


class Chaos:
    """An upstream that fails every way, in turn: HTTP 500, HTTP 429, reset, hang."""

    MODES = ("500", "429", "reset", "hang")

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = int(self.sock.getsockname()[1])
        self.served: list[str] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        self._closed = True
        self.sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            data = b""
            while b"\r\n\r\n" not in data:
                more = conn.recv(65536)
                if not more:
                    return
                data += more
            head, _, body = data.partition(b"\r\n\r\n")
            m = re.search(rb"(?i)content-length:\s*(\d+)", head)
            need = int(m.group(1)) if m else 0
            while len(body) < need:
                more = conn.recv(65536)
                if not more:
                    return
                body += more
            with self._lock:
                mode = self.MODES[len(self.served) % len(self.MODES)]
                self.served.append(mode)
            if mode == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            if mode == "hang":
                time.sleep(3)
                return
            status, reason, code = (
                (500, "Internal Server Error", "server_error")
                if mode == "500"
                else (429, "Too Many Requests", "rate_limit_exceeded")
            )
            doc = json.dumps({"error": {"message": f"chaos {mode}", "type": code, "code": code}}).encode()
            conn.sendall(
                f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
                f"content-length: {len(doc)}\r\nconnection: close\r\n\r\n".encode()
                + doc
            )


def db_rows(db_url: str, query: Any) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        engine = make_engine(normalise_database_url(db_url))
        try:
            async with engine.connect() as conn:
                return [dict(r._mapping) for r in (await conn.execute(query)).all()]
        finally:
            await engine.dispose()

    return asyncio.run(go())


def metrics(stack: Stack) -> str:
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{stack.url}/metrics", timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["content-type"].startswith("text/plain")
        return str(resp.read().decode())


def sample(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


async def one_call(client: openai.AsyncOpenAI, stream: bool, tag: str) -> tuple[str, str]:
    """A chat call; returns (trace ID, the text the client received)."""
    kw: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi"}],
        "extra_body": fake(tag),
    }
    if not stream:
        raw = await client.chat.completions.with_raw_response.create(**kw)
        return raw.headers["x-request-id"], raw.parse().choices[0].message.content or ""
    raw_s = await client.chat.completions.with_raw_response.create(stream=True, **kw)
    text = ""
    async for chunk in raw_s.parse():
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
    return raw_s.headers["x-request-id"], text


def _up(url: str) -> bool | None:
    try:
        return True if http_json("GET", url)[0] == 200 else None
    except OSError:
        return None


def _requests(port: int) -> list[Any]:
    status, _, doc = http_json("GET", f"http://127.0.0.1:{port}/_fake/requests")
    assert status == 200
    return list(doc)


def _estimated_output_tokens(text: str) -> int:
    """Tollway's documented count for output whose usage never arrived: ceil(ASCII / 4)."""
    return -(-len(text) // 4)


async def stream_until_error(
    stack: Stack, secret: str, extra: dict[str, Any], include_usage: bool = False
) -> tuple[str, str, openai.APIError | None, bool]:
    """Stream a chat; returns (trace ID, text received, the error that ended the stream or
    None, whether a usage chunk arrived)."""
    text, trace, saw_usage = "", "", False
    kw: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    if include_usage:
        kw["stream_options"] = {"include_usage": True}
    try:
        async with stack.aclient(secret, timeout=20) as client:
            a = await client.chat.completions.create(**kw, extra_body=extra)
            trace = a.response.headers["x-request-id"]
            async for chunk in a:
                text += "".join(ch.delta.content or "" for ch in chunk.choices)
                saw_usage = saw_usage or chunk.usage is not None
    except openai.APIError as exc:
        return trace, text, exc, saw_usage
    return trace, text, None, saw_usage


def _billed_once(stack: Stack, account_id: str, trace: str, before: int) -> dict[str, Any]:
    """The call's one usage record; the balance moved by exactly its deduction, nothing held."""
    rec = stack.usage(trace, wait=5)
    assert [r["trace_id"] for r in stack.p.usage_list(account_id)] == [trace]
    bal = stack.balance(account_id)
    assert (before - int(bal["cash_nano"]), int(bal["held_nano"])) == (rec["deduction_nano"], 0)
    return rec


class MidStreamReset:
    """An OpenAI-shaped upstream that starts one stream, sends ``PIECES``, resets the connection
    (RST) and then stops listening, as a crashed upstream does."""

    PIECES = ("Hello", " world", "!")

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = int(self.sock.getsockname()[1])
        self.served = 0
        threading.Thread(target=self._serve_one, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _serve_one(self) -> None:
        with contextlib.suppress(OSError):
            conn, _ = self.sock.accept()
            self.sock.close()  # gone after this one: the next calls get a connect error
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            self.served += 1
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
            for i, piece in enumerate(("", *self.PIECES)):
                delta = {"role": "assistant", "content": ""} if i == 0 else {"content": piece}
                chunk = {
                    "id": "chatcmpl-reset",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": MODEL,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
                }
                conn.sendall(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            time.sleep(0.3)  # let Tollway read it all before the reset
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()


class TcpProxy:
    """A TCP relay to PostgreSQL on a fixed port: ``cut()`` makes the database unreachable (the
    port closes, live connections drop), ``restore()`` brings it back on the same port."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.port = free_port()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self.sock: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        self.sock = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def cut(self) -> None:
        if self.sock is not None:
            # close() alone does not wake a thread blocked in accept(): that accept would still take
            # one more connection after the cut. shutdown() wakes it (EINVAL) on Linux.
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
            self.sock.close()
            self.sock = None
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()

    def _accept(self, sock: socket.socket) -> None:
        while True:
            try:
                client, _ = sock.accept()
            except OSError:
                return
            if self.sock is not sock:  # cut while this accept was returning
                client.close()
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_RDWR)
