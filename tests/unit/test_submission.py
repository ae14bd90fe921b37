"""The accept path (``shared.submission.Submitter``) against in-memory fakes of its
ports: whatever fails, a request leaves exactly what it wrote removed, and nothing
that it did not write."""

from __future__ import annotations

import threading

import pytest
from google.api_core.exceptions import ServiceUnavailable

from shared.errors import FailedPrecondition, RateLimited, Unavailable
from shared.models import StrategyRequest
from shared.submission import PdfUpload, Submitter
from tests.unit.fakes import (
    FakeCaps,
    FakeKeys,
    FakePdfStore,
    FakePublisher,
    FakeSessions,
    FakeTaskWriter,
)

UID = "user-1"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


class World:
    def __init__(self) -> None:
        self.tasks = FakeTaskWriter()
        self.pdfs = FakePdfStore()
        self.queue = FakePublisher()
        self.keys = FakeKeys()
        self.sessions = FakeSessions(self.pdfs)
        self.caps = FakeCaps()
        self.submitter = Submitter(
            tasks=self.tasks,
            pdfs=self.pdfs,
            queue=self.queue,
            keys=self.keys,
            sessions=self.sessions,
            caps=self.caps,
        )

    def submit(self, pdf: bytes | None = None, key: str | None = None, **body: object):  # type: ignore[no-untyped-def]
        request = StrategyRequest.model_validate({"brief": "A bakery in Cluj", **body})
        upload = PdfUpload(data=pdf, filename="brief.pdf") if pdf is not None else None
        return self.submitter.submit(UID, request, upload, idempotency_key=key)


def test_a_task_is_created_stored_and_queued() -> None:
    world = World()
    submitted = world.submit(pdf=PDF)
    task_id = submitted.accepted.task_id
    assert submitted.created and task_id in world.tasks.docs
    assert world.queue.published == [task_id]
    assert [uri.endswith(f"/uploads/{task_id}/source.pdf") for uri in world.pdfs.objects] == [True]


def test_a_failed_publish_keeps_the_users_uploaded_pdf() -> None:
    """The upload session's object is the user's, perhaps behind an earlier task:
    a failed submit referring to it must not delete it (finding 4)."""
    world = World()
    uri = world.sessions.open(UID, "up1", PDF)
    world.queue.failures.add("publish_task", ServiceUnavailable("pubsub down"))
    with pytest.raises(Unavailable):
        world.submit(upload_id="up1")
    assert uri in world.pdfs.objects
    assert world.tasks.docs == {}


def test_a_failed_publish_removes_the_task_and_the_pdf_it_stored() -> None:
    world = World()
    world.queue.failures.add("publish_task", ServiceUnavailable("pubsub down"))
    with pytest.raises(Unavailable):
        world.submit(pdf=PDF)
    assert world.tasks.docs == {} and world.pdfs.objects == {}


def test_a_create_whose_answer_was_lost_is_removed_all_the_same() -> None:
    """The create committed but answered an error: the client is told it failed, so
    the task must not stay to be processed and billed later (finding 7)."""
    world = World()
    world.tasks.lose_answer_of_create = True
    with pytest.raises(Unavailable):
        world.submit(pdf=PDF)
    assert world.tasks.docs == {}
    assert world.tasks.discarded  # it looked
    assert world.queue.published == [] and world.pdfs.objects == {}


def test_a_capped_create_leaves_nothing_and_frees_the_key() -> None:
    world = World()
    world.tasks.failures.add("create_task", RateLimited("at most 10", retry_after_s=15))
    with pytest.raises(RateLimited):
        world.submit(pdf=PDF, key="k1")
    assert world.tasks.docs == {} and world.pdfs.objects == {} and world.queue.published == []
    assert world.keys.holder(UID, "k1") is None
    assert world.submit(key="k1").created  # the same key works again


def test_a_key_is_accepted_only_once_the_task_is_queued() -> None:
    world = World()
    states: list[str] = []
    publish = world.queue.publish_task

    def watching_publish(task_id: str) -> str:
        states.append(world.keys.holder(UID, "k2")[1])  # type: ignore[index]
        return publish(task_id)

    world.queue.publish_task = watching_publish  # type: ignore[method-assign]
    first = world.submit(key="k2")
    assert states == ["pending"]
    assert world.keys.holder(UID, "k2") == (first.accepted.task_id, "accepted")
    replay = world.submit(key="k2")
    assert not replay.created and replay.accepted.task_id == first.accepted.task_id


def test_a_replay_never_answers_with_a_task_that_is_still_pending() -> None:
    """The first request is still deciding (a cap may refuse it): the replay waits,
    and when the first is refused, answers 409, not the doomed task's id."""
    world = World()
    world.keys.reserve(UID, "k3", "fingerprint", "doomed", now=None)  # type: ignore[arg-type]
    # The doomed task exists for a moment, as a capped create's commit does.
    world.tasks.docs["doomed"] = None  # type: ignore[assignment]
    threading.Timer(0.2, world.keys.release, args=(UID, "k3")).start()
    with pytest.raises(FailedPrecondition, match="did not complete"):
        world.submit(key="k3")


# -- cheap refusals first (issue 18) ---------------------------------------------------


def test_a_user_at_a_cap_is_refused_before_the_upload_is_read() -> None:
    world = World()
    world.sessions.open(UID, "up1", PDF)
    world.caps.refusal = RateLimited("at most 10 unfinished tasks per user", retry_after_s=15)
    with pytest.raises(RateLimited):
        world.submit(upload_id="up1")
    assert world.sessions.used == []  # no Storage read, no hash
    assert world.tasks.docs == {} and world.queue.published == []


def test_a_user_at_a_cap_is_refused_before_the_pdf_is_uploaded() -> None:
    world = World()
    before = dict(world.pdfs.objects)
    world.caps.refusal = RateLimited("at most 30 tasks a minute per user", retry_after_s=9)
    with pytest.raises(RateLimited):
        world.submit(pdf=PDF)
    assert world.pdfs.objects == before
    assert world.tasks.docs == {} and world.queue.published == []


def test_a_request_without_a_pdf_asks_no_extra_read() -> None:
    world = World()
    world.submit()
    assert world.caps.asked == []  # the commit that creates it decides, as before
    world.submit(pdf=PDF)
    ((uid, anonymous, _reserved),) = world.caps.asked
    assert (uid, anonymous) == (UID, False)


def test_a_project_count_known_full_refuses_before_any_write_or_upload() -> None:
    world = World()
    world.sessions.open(UID, "up1", PDF)
    before = dict(world.pdfs.objects)
    world.caps.project_refusal = RateLimited(
        "the service takes at most 300 tasks a minute", retry_after_s=20
    )
    for body in ({}, {"upload_id": "up1"}):
        with pytest.raises(RateLimited):
            world.submit(**body)  # type: ignore[arg-type]
    with pytest.raises(RateLimited):
        world.submit(pdf=PDF)
    assert world.tasks.docs == {} and world.tasks.discarded == []  # no create, no undo
    assert world.pdfs.objects == before and world.sessions.used == []
    assert world.queue.published == [] and world.caps.asked == []


def test_every_request_asks_the_project_memory_with_its_reservation() -> None:
    world = World()
    world.submit()
    world.submit(pdf=PDF)
    plain, with_pdf = world.caps.project_asked
    assert 0 < plain < with_pdf  # a PDF is reserved at the model's whole input


def test_the_worst_case_is_computed_once_and_held_as_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shared import costs

    computed: list[int] = []
    original = costs.worst_case_micros

    def counted(*args: object, **kwargs: object) -> int:
        computed.append(original(*args, **kwargs))  # type: ignore[arg-type]
        return computed[-1]

    monkeypatch.setattr(costs, "worst_case_micros", counted)
    world = World()
    task_id = world.submit(pdf=PDF).accepted.task_id
    assert len(computed) == 1  # the prompt and schema are measured once per submit
    assert world.tasks.docs[task_id].budget_reserved_micros == computed[0]
    assert world.caps.project_asked == computed
