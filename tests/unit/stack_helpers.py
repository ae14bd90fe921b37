"""Helpers of the dev/stack/ unit tests (test_stack_plan*.py): ports free a moment
ago, a process that is alive without being one, and fake Pub/Sub and Firestore clients
for the resources `up` makes."""

from __future__ import annotations

import socket
from types import SimpleNamespace
from typing import Any

from dev import stack


def free_ports_env(count: int) -> dict[str, str]:
    """Port variables set to ports that were free a moment ago."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        ports = [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    variables = [variable for variable, _default in stack.PORT_DEFAULTS.values()]
    return dict(zip(variables, map(str, ports), strict=False))


class FakeProc:
    """Stands for a Popen: alive, with a pid no real process of ours has."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode = None

    def poll(self) -> None:
        return None

    def wait(self, timeout: float | None = None) -> int:
        return 0


class FakePubSub:
    """Stands for the Pub/Sub emulator behind pubsub_v1's two clients: what was made,
    deleted and published (``publisher()`` and ``subscriber()`` are the clients)."""

    def __init__(self) -> None:
        self.topics: list[str] = []
        self.subscriptions: dict[str, dict[str, Any]] = {}  # path -> creation request
        self.deleted: list[str] = []
        self.published: list[tuple[str, bytes, dict[str, str]]] = []

    def publisher(self) -> FakePublisher:
        return FakePublisher(self)

    def subscriber(self) -> FakeSubscriber:
        return FakeSubscriber(self)


class _Published:
    def result(self, timeout: float | None = None) -> str:
        return "message-id"


class FakePublisher:
    def __init__(self, pubsub: FakePubSub) -> None:
        self.pubsub = pubsub

    def create_topic(self, *, name: str) -> None:
        from google.api_core.exceptions import AlreadyExists

        if name in self.pubsub.topics:
            raise AlreadyExists(name)
        self.pubsub.topics.append(name)

    def publish(self, topic: str, data: bytes, **attributes: str) -> _Published:
        self.pubsub.published.append((topic, data, attributes))
        return _Published()

    def stop(self) -> None:
        pass


class FakeSubscriber:
    def __init__(self, pubsub: FakePubSub) -> None:
        self.pubsub = pubsub

    def create_subscription(self, *, request: dict[str, Any]) -> None:
        from google.api_core.exceptions import AlreadyExists

        if request["name"] in self.pubsub.subscriptions:
            raise AlreadyExists(request["name"])
        self.pubsub.subscriptions[request["name"]] = request

    def delete_subscription(self, *, subscription: str) -> None:
        from google.api_core.exceptions import NotFound

        if self.pubsub.subscriptions.pop(subscription, None) is None:
            raise NotFound(subscription)
        self.pubsub.deleted.append(subscription)

    def close(self) -> None:
        pass


class FakeFirestore:
    """Stands for ``firestore.Client``: one collection's query, whose filters it records;
    it answers the ids it was given, whatever the filter."""

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids
        self.collections: list[str] = []
        self.filters: list[tuple[str, str, Any]] = []

    def __call__(self, project: str | None = None) -> FakeFirestore:
        return self

    def collection(self, name: str) -> FakeFirestore:
        self.collections.append(name)
        return self

    def where(self, *, filter: Any) -> FakeFirestore:  # the keyword the client takes
        self.filters.append((filter.field_path, filter.op_string, filter.value))
        return self

    def select(self, fields: list[str]) -> FakeFirestore:
        return self

    def stream(self) -> list[SimpleNamespace]:
        return [SimpleNamespace(id=task_id) for task_id in self.ids]

    def close(self) -> None:
        pass
