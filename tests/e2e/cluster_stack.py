"""Several Tollway nodes on one database and one Redis: the scale-out test stack.

``running_cluster`` starts the usual :class:`Stack` (fake upstream, provisioning, node 0) with
``TOLLWAY_REDIS_URL``/``TOLLWAY_REDIS_PREFIX`` set, then ``nodes - 1`` more server processes on
the same database, each on its own port with its own log. Nodes can be SIGKILLed and started
again; the provisioning and oracles of the stack (balances, usage, audit) serve them all.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import openai

from .stack import Proc, Stack, free_port


@dataclass
class Node:
    name: str
    port: int
    proc: Proc

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def aclient(self, secret: str, **kw: object) -> openai.AsyncOpenAI:
        kw.setdefault("max_retries", 0)
        kw.setdefault("timeout", 60.0)
        return openai.AsyncOpenAI(base_url=f"{self.url}/v1", api_key=secret, **kw)  # type: ignore[arg-type]

    def kill(self) -> None:
        """SIGKILL: the node dies with whatever it had in flight."""
        if self.proc.alive():
            self.proc.popen.send_signal(signal.SIGKILL)
            self.proc.popen.wait(10)


@dataclass
class Cluster:
    stack: Stack
    nodes: list[Node] = field(default_factory=list)
    node_env: dict[str, str] = field(default_factory=dict)

    def add_node(self, extra_env: dict[str, str] | None = None, *, wait: bool = True) -> Node:
        port = free_port()
        name = f"node{len(self.nodes)}"
        proc = self.stack.spawn_server(port, f"{name}.log", {**self.node_env, **(extra_env or {})})
        node = Node(name, port, proc)
        self.nodes.append(node)
        if wait:
            self.stack.wait_proc(proc, node.url)
        return node

    def restart(self, node: Node, *, wait: bool = True) -> None:
        """Start ``node`` again on its port (after :meth:`Node.kill` or a stop)."""
        node.proc.stop()
        node.proc = self.stack.spawn_server(node.port, f"{node.name}-again.log", self.node_env)
        if wait:
            self.stack.wait_proc(node.proc, node.url)

    def logs(self) -> str:
        return (
            "\n".join(f"----- {n.name} ({n.proc.log}) -----\n{n.proc.tail()}" for n in self.nodes)
            + "\n"
            + self.stack.logs()
        )

    def stop(self) -> None:
        for node in self.nodes[1:]:
            node.proc.stop()


@contextlib.contextmanager
def running_cluster(
    db_url: str,
    workdir: Path,
    *,
    redis_url: str,
    redis_prefix: str,
    nodes: int = 2,
    server_env: dict[str, str] | None = None,
) -> Iterator[Cluster]:
    """``nodes`` Tollway servers on ``db_url`` sharing one Redis under ``redis_prefix``."""
    env = {"TOLLWAY_REDIS_URL": redis_url, "TOLLWAY_REDIS_PREFIX": redis_prefix, **(server_env or {})}
    backend = "sqlite" if db_url.startswith("sqlite") else "postgres"
    stack = Stack(backend, db_url, workdir, server_env=env)
    cluster = Cluster(stack)
    try:
        stack.start()
        assert stack.server is not None
        cluster.nodes.append(Node("node0", int(stack.url.rsplit(":", 1)[1]), stack.server))
        for _ in range(nodes - 1):
            cluster.add_node()
        yield cluster
    finally:
        cluster.stop()
        stack.stop()
