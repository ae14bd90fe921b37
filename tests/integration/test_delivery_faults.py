"""Delivery semantics under duplicates, crashes and failures (SPEC §4, issue 4).

Nothing lost, nothing paid twice: duplicate deliveries cost one Gemini call, a
SIGKILLed worker loses no task, Gemini failing forever ends FAILED, a message
that keeps failing is dead-lettered and its task failed by ``dead_letter_task``
(only once no live lease may still finish it), and the sweeper republishes
what lost its message. The numbers each test measures are printed (``-s``).

The dead-letter case needs the message to go through every delivery attempt of
the subscription's retry policy (about a minute): a module fixture starts it at
the beginning, and the last test checks it, so the wait overlaps the others.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import STATE_FILE, TERMINAL, Api, StandIn, TaskWatcher, User

# Exclusive: it kills the worker, floods the queue, and keeps a dead-letter case
# for the whole module; heavy: hundreds of tasks at once, and time budgets and attempt
# counts that a loaded machine broke (tests/conftest.py).
pytestmark = [pytest.mark.integration, pytest.mark.exclusive, pytest.mark.heavy]

STRATEGY_CALL = "generateContent"


def http_client() -> httpx.Client:
    """A client that drops idle connections before the server does.

    functions-framework's gunicorn closes an idle keep-alive connection after 2 s;
    httpx keeps one for 5 s by default, so a request sent on it in between may meet
    the server's close: ``ReadError: Connection reset by peer`` (seen under load).
    """
    return httpx.Client(timeout=60, limits=httpx.Limits(keepalive_expiry=1.0))


def report(title: str, **figures: Any) -> None:
    """One line of figures per test: `pytest -s` shows them."""
    shown = ", ".join(f"{key}={value}" for key, value in figures.items())
    print(f"\n[delivery-faults] {title}: {shown}")


def stack_state() -> dict[str, Any]:
    state: dict[str, Any] = json.loads(STATE_FILE.read_text())
    return state


def settings() -> Any:
    from shared.settings import get_settings

    return get_settings()


def part_log(part: str, task_id: str) -> list[dict[str, Any]]:
    """The JSON lines a part of the stack (a bridge, a function) logged for one task."""
    path = Path(stack_state()["parts"][part]["log"])
    lines = []
    for line in path.read_text(errors="replace").splitlines():
        if task_id in line and line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def answers_until_acknowledged(task_id: str) -> list[int]:
    """The worker's answers to the deliveries of a task's message, up to the 2xx.

    The bridge logs an answer once it has it, a moment after the task's last write.
    """

    def answers() -> list[int]:
        statuses = [e["status"] for e in part_log("bridge", task_id) if "status" in e]
        return statuses if any(200 <= s < 300 for s in statuses) else []

    result: list[int] = wait_for(answers, timeout=10, what="the worker's acknowledgement")
    return result


def wait_for(condition: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def write_task(
    collection: Any,
    *,
    brief: str,
    status: str,
    attempts: int = 0,
    lease_expires_at: datetime | None = None,
    created_at: datetime | None = None,
    uid: str | None = None,
) -> str:
    """A task document written straight to Firestore, as a crash or a lost message leaves it."""
    from shared.models import TaskRecord, TaskRequest, TaskStatus
    from shared.tasks import to_document

    now = datetime.now(UTC)
    created = created_at or now
    task_id = uuid.uuid4().hex
    processing = status == TaskStatus.PROCESSING.value
    record = TaskRecord(
        task_id=task_id,
        uid=uid or f"ghost-{task_id[:8]}",
        status=TaskStatus(status),
        created_at=created,
        updated_at=created,
        started_at=created if processing else None,
        request=TaskRequest(brief=brief, image=False),
        attempts=attempts,
        lease_expires_at=lease_expires_at,
        lease_owner="a-worker-that-died" if processing else None,
    )
    collection.document(task_id).create(to_document(record))
    return task_id


class ThreadApis:
    """An ``Api`` with its own HTTP client per thread.

    One ``httpx.Client`` shared by a hundred threads once failed a request with
    ``ReadError: [Errno 9] Bad file descriptor``: the load tests give each thread
    its own client.
    """

    def __init__(self, stack: dict[str, str]) -> None:
        self.stack = stack
        self.local = threading.local()
        self.clients: list[httpx.Client] = []
        self.lock = threading.Lock()

    def __call__(self) -> Api:
        api: Api | None = getattr(self.local, "api", None)
        if api is None:
            client = http_client()
            with self.lock:
                self.clients.append(client)
            api = self.local.api = Api(self.stack, client)
        return api

    def close(self) -> None:
        for client in self.clients:
            client.close()


@pytest.fixture
def thread_api(stack: dict[str, str]) -> Iterator[ThreadApis]:
    apis = ThreadApis(stack)
    yield apis
    apis.close()


def wait_all_terminal(
    collection: Any, task_ids: list[str], timeout: float
) -> dict[str, dict[str, Any]]:
    """Poll until every task is terminal (batched reads).

    Not ``watcher.wait_all``: with 50-300 listeners at once, a listener now and
    then never reports the terminal write (2 of 50 and 1 of 300 in one run, while
    the worker had logged every one of them completed, no outcome discarded).
    """
    client = collection._client
    refs = [collection.document(t) for t in task_ids]
    deadline = time.monotonic() + timeout
    while True:
        docs = {snap.id: snap.to_dict() or {} for snap in client.get_all(refs)}
        left = [t for t in task_ids if docs.get(t, {}).get("status") not in TERMINAL]
        if not left:
            return docs
        if time.monotonic() > deadline:
            states = Counter(docs.get(t, {}).get("status") for t in left)
            raise AssertionError(f"{len(left)} of {len(task_ids)} tasks not terminal: {states}")
        time.sleep(0.5)


def tasks_in_processing(collection: Any, task_ids: list[str]) -> list[str]:
    return [t for t in task_ids if collection.document(t).get().get("status") == "PROCESSING"]


# ------------------------------------------------------------------ dead letters (started early)


@dataclass
class DeadLetterCase:
    task_id: str
    published_at: float


@pytest.fixture(scope="module", autouse=True)
def dead_letter_case(stack: dict[str, str], tasks_collection: Any) -> Iterator[DeadLetterCase]:
    """A task behind a lease that never ends, and its message: every delivery fails."""
    from shared import queue

    task_id = write_task(
        tasks_collection,
        brief="dead-letter case (no Gemini call expected)",
        status="PROCESSING",
        attempts=1,
        lease_expires_at=datetime.now(UTC) + timedelta(hours=1),
    )
    queue.publish_task(task_id)
    yield DeadLetterCase(task_id, time.monotonic())
    # Deselected or failed: let the handler end it rather than retry forever.
    tasks_collection.document(task_id).update({"lease_expires_at": datetime.now(UTC)})


# ------------------------------------------------------------------ a. duplicates


def test_50_tasks_each_delivered_3_more_times_at_once_cost_50_calls(
    thread_api: ThreadApis,
    new_user: Callable[[], User],
    tasks_collection: Any,
    standin: StandIn,
    marker: str,
) -> None:
    # Slow enough that the duplicates arrive while the first attempt holds the lease.
    standin.fault(marker, endpoint=STRATEGY_CALL, latency_s=1.5)
    users = [new_user() for _ in range(10)]  # 5 each: under the per-user caps
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def duplicate(task_id: str) -> None:
        answer = thread_api().deliver(task_id)
        with lock:
            answers.append(answer)

    started = time.monotonic()
    with ThreadPoolExecutor(150) as deliveries:

        def submit(index: int) -> str:
            task_id = thread_api().submit_ok(users[index % 10], brief=f"Bakery {index} {marker}")
            for _ in range(3):  # beside the Pub/Sub delivery, three more at once
                deliveries.submit(duplicate, task_id)
            return task_id

        with ThreadPoolExecutor(25) as pool:
            task_ids = list(pool.map(submit, range(50)))
        tasks = wait_all_terminal(tasks_collection, task_ids, timeout=90)
    elapsed = time.monotonic() - started

    calls = standin.requests(marker, endpoint=STRATEGY_CALL)
    statuses = Counter(t["status"] for t in tasks.values())
    direct = Counter(a.status_code for a in answers)
    report(
        "50 tasks x (1 Pub/Sub + 3 direct) deliveries",
        strategy_calls=len(calls),
        statuses=dict(statuses),
        attempts=dict(Counter(t["attempts"] for t in tasks.values())),
        direct_answers=dict(direct),
        seconds=round(elapsed, 1),
    )
    assert statuses == {"COMPLETED": 50}
    assert len(calls) == 50
    assert {t["attempts"] for t in tasks.values()} == {1}
    assert len(answers) == 150
    # 200: did the work or found it finished; 503: leased by a live attempt; 500: the
    # claim transaction lost to the contention of the duplicates (Firestore emulator:
    # "409 Transaction lock timeout" 10 times). Every non-2xx brings the message back,
    # so nothing is lost; the figures above show how many.
    assert set(direct) <= {200, 503, 500}, direct
    assert direct[503] > 0  # some duplicates did arrive during a live lease


# ------------------------------------------------------------------ b. SIGKILL mid-call


def test_worker_killed_during_10_gemini_calls_loses_no_task(
    thread_api: ThreadApis,
    new_user: Callable[[], User],
    standin: StandIn,
    tasks_collection: Any,
    marker: str,
) -> None:
    from dev import stack as dev_stack

    name = stack_state()["name"]
    standin.fault(marker, endpoint=STRATEGY_CALL, latency_s=2.5)
    users = [new_user() for _ in range(2)]
    with ThreadPoolExecutor(10) as pool:
        task_ids = list(
            pool.map(
                lambda i: thread_api().submit_ok(users[i % 2], brief=f"Tailor {i} {marker}"),
                range(10),
            )
        )
    wait_for(
        lambda: len(standin.requests(marker, endpoint=STRATEGY_CALL)) >= 10,
        timeout=30,
        what="10 strategy calls in flight",
        every=0.05,
    )
    in_flight = [c for c in standin.requests(marker, endpoint=STRATEGY_CALL) if not c["ended_at"]]

    killed_at = time.monotonic()
    dev_stack.kill_part(name, "process")
    down = stack_state()["parts"]["process"]
    dev_stack.start_part_again(name, "process")
    back_after = time.monotonic() - killed_at
    tasks = wait_all_terminal(tasks_collection, task_ids, timeout=settings().lease_seconds + 60)
    recovered_after = time.monotonic() - killed_at

    calls = standin.requests(marker, endpoint=STRATEGY_CALL)
    statuses = Counter(t["status"] for t in tasks.values())
    report(
        "SIGKILL of process_task during 10 Gemini calls",
        in_flight_at_kill=len(in_flight),
        statuses=dict(statuses),
        attempts=dict(Counter(t["attempts"] for t in tasks.values())),
        strategy_calls=len(calls),
        answering_again_s=round(back_after, 1),
        all_completed_s=round(recovered_after, 1),
        lease_seconds=settings().lease_seconds,
    )
    assert len(in_flight) == 10
    assert "killed_at" in down
    assert statuses == {"COMPLETED": 10}
    # The killed attempt's call is lost with the process; the takeover makes one more.
    assert {t["attempts"] for t in tasks.values()} == {2}
    assert len(calls) == 20
    assert tasks_in_processing(tasks_collection, task_ids) == []
    # state.json follows the new process, so `down` stops it.
    record = stack_state()["parts"]["process"]
    assert record["restarts"] >= 1 and dev_stack.part_alive(record)


# ------------------------------------------------------------------ c. failures


def test_gemini_503_forever_fails_retryable_after_the_configured_attempts(
    api: Api,
    user: User,
    watcher: TaskWatcher,
    standin: StandIn,
    tasks_collection: Any,
    dead_letter_probe: Callable[[], list[dict[str, str]]],
    marker: str,
) -> None:
    config = settings()
    standin.fault(marker, endpoint=STRATEGY_CALL, status=503)
    started = time.monotonic()
    task_id = api.submit_ok(user, brief=f"Locksmith {marker}")
    task = watcher.wait(task_id)
    elapsed = time.monotonic() - started
    dead_letters = wait_for(
        lambda: [m for m in dead_letter_probe() if m.get("task_id") == task_id],
        timeout=30,
        what="the message on the dead-letter topic",
    )
    worker_answers = answers_until_acknowledged(task_id)

    calls = standin.requests(marker, endpoint=STRATEGY_CALL)
    # Each attempt: one strategy call with the SDK's retries; between attempts,
    # Pub/Sub's backoff (plus a few seconds for the accept path and deliveries).
    budget = (
        config.max_task_attempts * config.strategy_call_worst_case_s()
        + config.redelivery_span_s(config.max_task_attempts)
        + 5
    )
    report(
        "Gemini 503 forever",
        status=task["status"],
        error=task["error"]["code"],
        attempts=task["attempts"],
        calls=len(calls),
        worker_answers=worker_answers,
        dead_letter_reason=dead_letters[0].get("reason"),
        seconds=round(elapsed, 2),
        budget_s=round(budget, 1),
    )
    assert task["status"] == "FAILED"
    assert task["error"] == {
        "code": "gemini_unavailable",
        "message": task["error"]["message"],
        "retryable": True,
    }
    assert task["attempts"] == config.max_task_attempts
    # Every attempt made every SDK call, and no more.
    assert len(calls) == config.max_task_attempts * config.gemini_strategy_max_attempts
    assert {c["status"] for c in calls} == {503}
    # Attempts before the last asked Pub/Sub for a redelivery; the last one acknowledged.
    assert worker_answers == [503] * (config.max_task_attempts - 1) + [200]
    assert elapsed < budget
    # The message went to the dead-letter topic, once, saying why; the dead-letter
    # handler found the task finished, acknowledged it and left it so.
    assert [m.get("reason") for m in dead_letters] == ["gemini_unavailable"]
    handled = wait_for(
        lambda: [e for e in part_log("bridge-deadletter", task_id) if "status" in e],
        timeout=30,
        what="the dead-letter handler's answer",
    )
    assert [e["status"] for e in handled] == [200]
    assert tasks_in_processing(tasks_collection, [task_id]) == []
    # The FAILED task is acknowledged: a later delivery does nothing.
    assert api.deliver(task_id).status_code == 200
    assert len(standin.requests(marker, endpoint=STRATEGY_CALL)) == len(calls)
    assert tasks_collection.document(task_id).get().get("status") == "FAILED"


def test_gemini_503_longer_than_one_attempt_is_ridden_out_by_redelivery(
    api: Api,
    user: User,
    watcher: TaskWatcher,
    standin: StandIn,
    dead_letter_probe: Callable[[], list[dict[str, str]]],
    marker: str,
) -> None:
    """An outage longer than the SDK's retries costs an attempt, not the task."""
    config = settings()
    outage_calls = (
        config.gemini_strategy_max_attempts + 1
    )  # the first attempt fails, the 2nd's 1st call
    standin.fault(marker, endpoint=STRATEGY_CALL, status=503, times=outage_calls)
    task_id = api.submit_ok(user, brief=f"Glazier {marker}")
    task = watcher.wait(task_id)
    calls = standin.requests(marker, endpoint=STRATEGY_CALL)
    worker_answers = answers_until_acknowledged(task_id)
    waits = [
        line
        for line in part_log("process", task_id)
        if line.get("message") == "attempt failed: the next delivery tries again"
    ]
    report(
        "Gemini 503 for one attempt and a call",
        status=task["status"],
        attempts=task["attempts"],
        calls=[c["status"] for c in calls],
        worker_answers=worker_answers,
    )
    assert task["status"] == "COMPLETED", task.get("error")
    assert task["attempts"] == 2
    assert [c["status"] for c in calls] == [503] * outage_calls + [200]
    # The first attempt gave the task back and asked Pub/Sub for a redelivery.
    assert worker_answers == [503, 200]
    assert [(w["attempt"], w["code"]) for w in waits] == [(1, "gemini_unavailable")]
    assert task["error"] is None
    assert [m for m in dead_letter_probe() if m.get("task_id") == task_id] == []


# ------------------------------------------------------------------ e. load on the accept path


def test_300_submissions_from_32_clients_no_5xx_and_all_end(
    stack: dict[str, str],
    new_user: Callable[[], User],
    tasks_collection: Any,
    standin: StandIn,
    marker: str,
) -> None:
    clients = 32
    users = [new_user() for _ in range(clients)]
    per_client = [300 // clients + (1 if i < 300 % clients else 0) for i in range(clients)]
    accepted: list[str] = []
    codes: Counter[int] = Counter()
    latencies: list[float] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        with http_client() as http:
            for n in range(per_client[index]):
                began = time.monotonic()
                answer = http.post(
                    f"{stack['SUBMIT_URL']}/v1/strategies",
                    json={"brief": f"Client {index} brief {n} {marker}", "image": n % 2 == 0},
                    headers=users[index].headers,
                )
                with lock:
                    latencies.append(time.monotonic() - began)
                    codes[answer.status_code] += 1
                    if answer.status_code == 202:
                        accepted.append(answer.json()["task_id"])

    started = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    submitted_s = time.monotonic() - started
    tasks = wait_all_terminal(tasks_collection, accepted, timeout=120)
    finished_s = time.monotonic() - started

    latencies.sort()
    statuses = Counter(t["status"] for t in tasks.values())
    report(
        "300 submissions from 32 clients",
        answers=dict(codes),
        statuses=dict(statuses),
        accept_p50_ms=round(latencies[len(latencies) // 2] * 1000),
        accept_p95_ms=round(latencies[int(len(latencies) * 0.95)] * 1000),
        submitted_s=round(submitted_s, 1),
        all_terminal_s=round(finished_s, 1),
        strategy_calls=len(standin.requests(marker, endpoint=STRATEGY_CALL)),
    )
    assert sum(codes.values()) == 300
    assert not [code for code in codes if code >= 500], codes
    assert set(codes) <= {202, 429}, codes  # 429: a per-user cap, allowed
    assert len(tasks) == len(accepted) == codes[202]
    assert set(statuses) <= {"COMPLETED", "FAILED", "CANCELLED"}
    assert statuses["COMPLETED"] == len(accepted)
    assert len(standin.requests(marker, endpoint=STRATEGY_CALL)) == len(accepted)


# ------------------------------------------------------------------ f. the sweeper


def test_sweeper_republishes_lost_work_and_fails_exhausted_tasks(
    watcher: TaskWatcher, standin: StandIn, tasks_collection: Any, marker: str
) -> None:
    from shared import recovery

    config = settings()
    now = datetime.now(UTC)
    expired = write_task(
        tasks_collection,
        brief=f"Lease expired mid-work {marker}",
        status="PROCESSING",
        attempts=1,
        lease_expires_at=now - timedelta(seconds=5),
        created_at=now - timedelta(minutes=2),
    )
    pending = write_task(
        tasks_collection,
        brief=f"Message lost while PENDING {marker}",
        status="PENDING",
        created_at=now - timedelta(seconds=config.pending_timeout_s + 60),
    )
    exhausted = write_task(
        tasks_collection,
        brief=f"Crashed too often {marker}",
        status="PROCESSING",
        attempts=config.max_task_attempts,
        lease_expires_at=now - timedelta(seconds=5),
        created_at=now - timedelta(minutes=30),
    )
    fresh = write_task(tasks_collection, brief=f"Just submitted {marker}", status="PENDING")

    swept = recovery.sweep()
    tasks = watcher.wait_all([expired, pending, exhausted], timeout=60)

    report(
        "sweeper",
        republished=len(swept.republished),
        failed=len(swept.failed),
        expired=tasks[expired]["status"],
        pending=tasks[pending]["status"],
        exhausted=tasks[exhausted]["status"],
    )
    assert {expired, pending} <= set(swept.republished)
    assert exhausted in swept.failed and exhausted not in swept.republished
    assert fresh not in swept.republished and fresh not in swept.failed
    assert tasks[expired]["status"] == "COMPLETED"
    assert tasks[expired]["attempts"] == 2
    assert tasks[pending]["status"] == "COMPLETED"
    assert tasks[pending]["attempts"] == 1
    assert tasks[exhausted]["status"] == "FAILED"
    assert tasks[exhausted]["error"]["code"] == "attempts_exhausted"
    assert tasks[exhausted]["error"]["retryable"] is True
    assert len(standin.requests(marker, endpoint=STRATEGY_CALL)) == 2
    tasks_collection.document(fresh).delete()  # no message was ever published for it


# ------------------------------------------------------------------ c. dead letters (checked last)


def test_a_message_that_keeps_failing_is_dead_lettered_and_its_task_failed(
    dead_letter_case: DeadLetterCase,
    stack: dict[str, str],
    watcher: TaskWatcher,
    tasks_collection: Any,
) -> None:
    from google.cloud import pubsub_v1

    from tests.integration.events import pubsub_cloud_event

    config = settings()
    task_id = dead_letter_case.task_id
    inspect = stack_state()["resources"]["inspect_subscription"]
    subscriber = pubsub_v1.SubscriberClient()
    dead: dict[str, Any] = {}

    def dead_lettered() -> bool:
        answer = subscriber.pull(
            subscription=inspect, max_messages=50, return_immediately=True, timeout=10
        )
        if answer.received_messages:
            subscriber.acknowledge(
                subscription=inspect, ack_ids=[m.ack_id for m in answer.received_messages]
            )
        for received in answer.received_messages:
            if received.message.attributes.get("task_id") == task_id:
                dead.update(received.message.attributes)
                dead["dead_lettered_at"] = received.message.publish_time
        return bool(dead)

    try:
        wait_for(dead_lettered, timeout=150, what="the message on the dead-letter topic", every=1)
    finally:
        subscriber.close()
    # From the first publish to the dead-letter topic, by the emulator's clock.
    first_published = datetime.fromisoformat(
        dead["CloudPubSubDeadLetterSourceTopicPublishTime"].replace("Z", "+00:00")
    )
    dead_after = (dead["dead_lettered_at"] - first_published).total_seconds()
    worker_answers = [e for e in part_log("bridge", task_id) if e["message"] != "delivered"]

    # The handler leaves a task under a live lease alone: it asks for the dead letter
    # again later (503), through its bridge...
    refusals = wait_for(
        lambda: [e for e in part_log("bridge-deadletter", task_id) if e["message"] == "refused"],
        timeout=30,
        what="the dead-letter handler refusing the leased task",
    )
    assert {e["status"] for e in refusals} == {503}, (
        "dead_letter_task must answer 503 (retry later)"
    )
    # ...and when called directly.
    with http_client() as http:
        direct = http.post(
            stack["DEADLETTER_URL"],
            content=json.dumps(pubsub_cloud_event(task_id)),
            headers={"Content-Type": "application/cloudevents+json"},
        )
    assert direct.status_code == 503, direct.text
    assert tasks_collection.document(task_id).get().get("status") == "PROCESSING"

    # Once the lease has expired, the next redelivery of the dead letter fails the task.
    expired_at = time.monotonic()
    tasks_collection.document(task_id).update({"lease_expires_at": datetime.now(UTC)})
    task = watcher.wait(task_id, timeout=60)
    failed_after = time.monotonic() - expired_at
    handler = part_log("bridge-deadletter", task_id)

    report(
        "message that keeps failing",
        worker_refusals=len(worker_answers),
        dead_letter_delivery_count=dead.get("CloudPubSubDeadLetterSourceDeliveryCount"),
        dead_lettered_after_s=round(dead_after, 1),
        handler_refusals=sum(1 for e in handler if e.get("status") == 503),
        failed_after_lease_expiry_s=round(failed_after, 1),
        status=task["status"],
    )
    assert dead["CloudPubSubDeadLetterSourceDeliveryCount"] == str(config.max_delivery_attempts)
    assert dead["CloudPubSubDeadLetterSourceSubscription"].endswith("-process")
    assert len(worker_answers) == config.max_delivery_attempts
    # SPEC §4: not dead-lettered while a live lease may still finish.
    assert dead_after > config.lease_seconds
    assert task["status"] == "FAILED"
    assert task["error"]["code"] == "delivery_failed"
    assert task["error"]["retryable"] is True
    assert task["attempts"] == 1
    assert "Traceback" not in task["error"]["message"]
    wait_for(
        lambda: any(e["message"] == "delivered" for e in part_log("bridge-deadletter", task_id)),
        timeout=10,
        what="the dead letter acknowledged",
    )
