"""Fixtures for tests against the running local stack (``make test`` starts it).

Everything here talks to real emulators and to the Gemini stand-in over HTTP.
Each test works as its own freshly signed-up user and tags its briefs with a
unique marker, so the stand-in's request log and fault rules stay per test.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.receivers import Receiver, running_receiver

STATE_FILE = Path(os.environ.get("TB_STACK_STATE", ".stack/test/state.json"))
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED"}


def _stack_env() -> dict[str, str]:
    if not STATE_FILE.exists():
        pytest.fail(
            f"no running stack ({STATE_FILE} missing): run the tests with `make test`",
            pytrace=False,
        )
    env: dict[str, str] = json.loads(STATE_FILE.read_text())["env"]
    return env


@pytest.fixture(scope="session")
def stack() -> dict[str, str]:
    env = _stack_env()
    # The client libraries read these from the process environment.
    for key in (
        "GOOGLE_CLOUD_PROJECT",
        "FIRESTORE_EMULATOR_HOST",
        "PUBSUB_EMULATOR_HOST",
        "STORAGE_EMULATOR_HOST",
        "UPLOADS_BUCKET",
    ):
        if key in env:
            os.environ[key] = env[key]
    from shared.settings import get_settings

    get_settings.cache_clear()
    return env


@pytest.fixture(scope="session")
def http() -> Iterator[httpx.Client]:
    # gunicorn closes idle connections after 2 s: drop ours before it does.
    limits = httpx.Limits(max_connections=64, keepalive_expiry=1.0)
    with httpx.Client(timeout=30, limits=limits) as client:
        yield client


@dataclass(frozen=True)
class User:
    uid: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="session")
def new_user(stack: dict[str, str], http: httpx.Client) -> Callable[[], User]:
    """Sign up a fresh anonymous user in the Auth emulator."""

    def make() -> User:
        answer = http.post(
            f"{stack['AUTH_EMULATOR_URL']}/identitytoolkit.googleapis.com/v1/accounts:signUp",
            params={"key": "emulator-key"},
            json={"returnSecureToken": True},
        )
        assert answer.status_code == 200, f"Auth emulator sign-up: {answer.text}"
        body = answer.json()
        return User(uid=body["localId"], token=body["idToken"])

    return make


@pytest.fixture
def user(new_user: Callable[[], User]) -> User:
    return new_user()


@pytest.fixture
def marker() -> str:
    return f"mk-{uuid.uuid4().hex[:12]}"


class StandIn:
    """The Gemini stand-in's control API: fault rules and the request log.

    What reaches past the calling test (the global config, a fault or a log read that
    matches every request) needs the test to be exclusive, that is alone on its stack
    (tests/conftest.py): ``alone`` says whether the running test is, and a test that
    is not gets an error here instead of a flaky neighbour."""

    def __init__(self, base: str, http: httpx.Client) -> None:
        self.base = base
        self.http = http
        self.alone = False  # set for each test (_standin_knows_the_test)

    def _needs_the_stack_alone(self, what: str) -> None:
        assert self.alone, f"{what} reaches every test on the stack: mark the test exclusive"

    def fault(self, match: str, **rule: Any) -> None:
        if not match:
            self._needs_the_stack_alone("a fault rule that matches every request")
        answer = self.http.post(f"{self.base}/_standin/faults", json={"match": match, **rule})
        answer.raise_for_status()

    def config(self, **values: Any) -> dict[str, Any]:
        """Change the stand-in's global knobs (``image_format``, ``withdrawn_models``...);
        returns the previous ones, to restore with ``config(**previous)``."""
        self._needs_the_stack_alone("the stand-in's global config")
        previous: dict[str, Any] = self.http.get(f"{self.base}/_standin/config").json()
        self.http.post(f"{self.base}/_standin/config", json=values).raise_for_status()
        return previous

    def requests(self, contains: str, endpoint: str | None = None) -> list[dict[str, Any]]:
        if not contains:
            self._needs_the_stack_alone("reading every request the stand-in logged")
        params = {"contains": contains} | ({"endpoint": endpoint} if endpoint else {})
        answer = self.http.get(f"{self.base}/_standin/requests", params=params)
        answer.raise_for_status()
        found: list[dict[str, Any]] = answer.json()["requests"]
        return found

    def max_concurrency(self, contains: str) -> int:
        answer = self.http.get(
            f"{self.base}/_standin/requests/max_concurrency", params={"contains": contains}
        )
        answer.raise_for_status()
        return int(answer.json()["max_concurrency"])


@pytest.fixture(scope="session")
def standin(stack: dict[str, str], http: httpx.Client) -> StandIn:
    base = stack.get("GEMINI_STANDIN_URL") or stack.get("GEMINI_BASE_URL")
    assert base, "the test stack must run against the Gemini stand-in"
    return StandIn(base, http)


@pytest.fixture(autouse=True)
def _standin_knows_the_test(request: pytest.FixtureRequest, standin: StandIn) -> None:
    standin.alone = request.node.get_closest_marker("exclusive") is not None


@pytest.fixture
def restore_standin(standin: StandIn) -> Iterator[StandIn]:
    """The stand-in, its global config put back after the test (which is exclusive: the
    fixture's name is in tests/conftest.py's list)."""
    previous = standin.config()
    try:
        yield standin
    finally:
        standin.config(**previous)


@pytest.fixture(scope="session")
def firestore_client(stack: dict[str, str]) -> Any:
    from shared import clients

    return clients.firestore()


@pytest.fixture(scope="session")
def tasks_collection(stack: dict[str, str], firestore_client: Any) -> Any:
    from shared.settings import get_settings

    return firestore_client.collection(get_settings().tasks_collection)


class TaskWatcher:
    """Follows task documents with Firestore realtime listeners (no polling)."""

    def __init__(self, collection: Any) -> None:
        self.collection = collection

    def wait(self, task_id: str, timeout: float = 60) -> dict[str, Any]:
        """Block until the task is terminal; return the document."""
        return self.wait_all([task_id], timeout)[task_id]

    def wait_all(self, task_ids: list[str], timeout: float = 120) -> dict[str, dict[str, Any]]:
        """Block until every task is terminal, with one listener per task."""
        remaining = set(task_ids)
        found: dict[str, dict[str, Any]] = {}
        lock = threading.Lock()
        done = threading.Event()

        def listen(task_id: str) -> Any:
            def on_change(snapshots: list[Any], _changes: Any, _read_time: Any) -> None:
                for snap in snapshots:
                    data = snap.to_dict() if snap.exists else None
                    if data and data.get("status") in TERMINAL:
                        with lock:
                            found[task_id] = data
                            remaining.discard(task_id)
                            if not remaining:
                                done.set()

            return self.collection.document(task_id).on_snapshot(on_change)

        watches = {task_id: listen(task_id) for task_id in task_ids}
        deadline = time.monotonic() + timeout
        try:
            while not done.wait(min(1.0, max(deadline - time.monotonic(), 0.0))):
                if time.monotonic() >= deadline:
                    break
                with lock:
                    pending = sorted(remaining)
                for task_id in pending:
                    if not watches[task_id].is_active:
                        # The emulator has been seen to end a listen stream under load
                        # (499 RST_STREAM), which the SDK does not reopen: we do, as the
                        # CLI does; the new listener's first snapshot is the document now.
                        print(f"\n[watcher] the listener of task {task_id} ended: reopened")
                        watches[task_id].unsubscribe()
                        watches[task_id] = listen(task_id)
        finally:
            for watch in watches.values():
                watch.unsubscribe()
        if not done.is_set():
            # Under heavy load the emulator's listen stream has been seen to miss a
            # final write: ask once more, directly, before calling it a failure.
            for task_id in sorted(remaining):
                data = self.collection.document(task_id).get().to_dict()
                if data and data.get("status") in TERMINAL:
                    print(f"\n[watcher] the listener missed the end of task {task_id}")
                    found[task_id] = data
                    remaining.discard(task_id)
        if remaining:
            last = {
                t: (self.collection.document(t).get().to_dict() or {}).get("status")
                for t in sorted(remaining)[:5]
            }
            raise AssertionError(
                f"{len(remaining)} of {len(task_ids)} tasks not finished in {timeout}s: {last}"
            )
        return found


@pytest.fixture(scope="session")
def watcher(tasks_collection: Any) -> TaskWatcher:
    return TaskWatcher(tasks_collection)


class Api:
    """The HTTP API of the three functions, as a client sees it."""

    def __init__(self, stack: dict[str, str], http: httpx.Client) -> None:
        self.stack = stack
        self.http = http

    def submit(self, user: User | None, **body: Any) -> httpx.Response:
        headers = user.headers if user else {}
        return self.http.post(
            f"{self.stack['SUBMIT_URL']}/v1/strategies", json=body, headers=headers
        )

    def submit_ok(self, user: User, **body: Any) -> str:
        answer = self.submit(user, **body)
        assert answer.status_code == 202, answer.text
        task_id: str = answer.json()["task_id"]
        return task_id

    def submit_pdf(self, user: User, pdf: bytes, **fields: str) -> str:
        """A multipart submit with a PDF (form fields as strings): its task id, a 202."""
        parts: list[tuple[str, Any]] = [(name, (None, value)) for name, value in fields.items()]
        parts.append(("pdf", ("brief.pdf", pdf, "application/pdf")))
        answer = self.http.post(
            f"{self.stack['SUBMIT_URL']}/v1/strategies", headers=user.headers, files=parts
        )
        assert answer.status_code == 202, answer.text
        task_id: str = answer.json()["task_id"]
        return task_id

    def status(self, user: User | None, task_id: str) -> httpx.Response:
        headers = user.headers if user else {}
        return self.http.get(f"{self.stack['STATUS_URL']}/v1/tasks/{task_id}", headers=headers)

    def cancel(self, user: User, task_id: str) -> httpx.Response:
        """The Cancel button: a finished task is left alone (409), not erased."""
        return self.http.delete(
            f"{self.stack['STATUS_URL']}/v1/tasks/{task_id}",
            params={"cancel_only": "true"},
            headers=user.headers,
        )

    def deliver(self, task_id: str, *, publish_time: str | None = None) -> httpx.Response:
        """Push one CloudEvent straight to process_task, as Pub/Sub would."""
        from tests.integration.events import pubsub_cloud_event

        event = pubsub_cloud_event(task_id, publish_time=publish_time)
        return self.http.post(
            self.stack["PROCESS_URL"],
            content=json.dumps(event),
            headers={"Content-Type": "application/cloudevents+json"},
            timeout=60,
        )


@pytest.fixture(scope="session")
def api(stack: dict[str, str], http: httpx.Client) -> Api:
    return Api(stack, http)


@contextlib.contextmanager
def _probe(topic: str) -> Iterator[Callable[[], list[dict[str, str]]]]:
    """A subscription of the test's own on ``topic``: the attributes of what was
    published there since it was made."""
    from google.cloud import pubsub_v1

    from shared.settings import get_settings

    project = get_settings().google_cloud_project
    subscriber = pubsub_v1.SubscriberClient()
    name = subscriber.subscription_path(project, f"probe-{uuid.uuid4().hex[:10]}")
    subscriber.create_subscription(name=name, topic=subscriber.topic_path(project, topic))

    def published() -> list[dict[str, str]]:
        answer = subscriber.pull(
            subscription=name, max_messages=100, return_immediately=True, timeout=10
        )
        if answer.received_messages:
            subscriber.acknowledge(
                subscription=name, ack_ids=[m.ack_id for m in answer.received_messages]
            )
        return [dict(m.message.attributes) for m in answer.received_messages]

    try:
        yield published
    finally:
        subscriber.delete_subscription(subscription=name)
        subscriber.close()


@pytest.fixture
def topic_probe(stack: dict[str, str]) -> Iterator[Callable[[], list[str]]]:
    """What was published on the tasks topic (task ids)?"""
    from shared.settings import get_settings

    with _probe(get_settings().tasks_topic) as published:
        yield lambda: [attributes.get("task_id", "") for attributes in published()]


@pytest.fixture
def dead_letter_probe(stack: dict[str, str]) -> Iterator[Callable[[], list[dict[str, str]]]]:
    """What reached the dead-letter topic (each message's attributes)?"""
    from shared.settings import get_settings

    with _probe(get_settings().dead_letter_topic) as published:
        yield published


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on this machine (answers 204 unless scripted otherwise)."""
    with running_receiver() as made:
        yield made


@contextlib.contextmanager
def worker_at_standin(
    standin: StandIn, monkeypatch: pytest.MonkeyPatch, **env: str | None
) -> Iterator[Any]:
    """A worker in this process, wired to the real adapters, its settings changed by
    ``env`` (None: unset) and Gemini at the stack's stand-in; this process's settings
    and Gemini client come back after."""
    from shared import clients, gemini_port, queue, tasks, uploads
    from shared.processing import Worker
    from shared.settings import get_settings

    monkeypatch.setenv("GEMINI_BASE_URL", standin.base)
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    saved = clients._instances.pop("gemini", None)
    get_settings.cache_clear()
    try:
        yield Worker(store=tasks, previews=uploads, dead_letters=queue, gemini=gemini_port)
    finally:
        clients._instances.pop("gemini", None)
        if saved is not None:
            clients._instances["gemini"] = saved
        monkeypatch.undo()
        get_settings.cache_clear()
