"""A revision reuses its parent's File API copy of the PDF (issue 19) when
GEMINI_FILE_KEEP_S keeps it: a worker in this process, wired to the real adapters and
this stack's emulators and Gemini stand-in, runs a task and then its revision with the
setting on. The copy is uploaded once, used by both, then deleted by the tidy once idle
past the window, or at once after the task is erased."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared import clients, erasure, gemini_files, tasks, uploads
from shared.models import Revision, TaskRecord, TaskRequest, TaskStatus
from shared.processing import Worker
from shared.settings import get_settings
from tests.integration.conftest import StandIn, worker_at_standin
from tests.integration.test_sources import SMALL_PDF, file_requests
from tests.integration.test_vertex import deliver, task_of

pytestmark = pytest.mark.integration

STRATEGY_CALL = "generateContent"
KEEP_S = 3600


@pytest.fixture
def keeping_worker(standin: StandIn, monkeypatch: pytest.MonkeyPatch) -> Iterator[Worker]:
    """This process's settings with GEMINI_FILE_KEEP_S on, Gemini at the stand-in."""
    with worker_at_standin(
        standin, monkeypatch, GEMINI_FILE_KEEP_S=str(KEEP_S), GEMINI_API_KEY="placeholder"
    ) as worker:
        yield worker


def _write(tasks_collection: Any, uid: str, task_id: str, request: TaskRequest) -> None:
    now = datetime.now(UTC)
    record = TaskRecord(
        task_id=task_id,
        uid=uid,
        status=TaskStatus.PENDING,
        created_at=now,
        updated_at=now,
        request=request,
    )
    tasks_collection.document(task_id).create(tasks.to_document(record))


def _record(sha256: str) -> dict[str, Any] | None:
    collection = clients.firestore().collection(get_settings().gemini_files_collection)
    snapshot = collection.document(sha256).get()
    return snapshot.to_dict() if snapshot.exists else None


def _run_parent_and_revision(
    worker: Worker, tasks_collection: Any, standin: StandIn, marker: str
) -> tuple[str, str, str]:
    """The parent, then its revision; returns both ids and the one file's name."""
    uid = f"keep-{marker}"
    parent_id = uuid.uuid4().hex
    pdf = uploads.store_pdf(parent_id, SMALL_PDF + os.urandom(16), "brief.pdf")
    request = TaskRequest(brief=f"A cider house {marker}", pdf=pdf, image=False)
    _write(tasks_collection, uid, parent_id, request)
    deliver(worker, parent_id)
    parent = task_of(tasks_collection, parent_id)
    assert parent["status"] == "COMPLETED", parent.get("error")
    kept = _record(pdf.sha256)
    assert kept is not None and kept["users"] == 0 and kept["idle_since"] is not None

    revision = Revision(
        parent_task_id=parent_id,
        instruction="Halve the budget",
        strategy=TaskRecord.model_validate(parent).result.strategy,  # type: ignore[union-attr]
    )
    revision_id = uuid.uuid4().hex
    _write(tasks_collection, uid, revision_id, request.model_copy(update={"revision": revision}))
    deliver(worker, revision_id)
    assert task_of(tasks_collection, revision_id)["status"] == "COMPLETED"

    calls = standin.requests(marker, endpoint=STRATEGY_CALL)
    assert len(calls) == 2
    uris = {uri for call in calls for uri in call["file_uris"]}
    assert len(uris) == 1  # both read the same copy...
    assert len(standin.requests(parent_id, endpoint="upload")) == 2  # start + one chunk
    assert standin.requests(revision_id, endpoint="upload") == []  # ...uploaded once
    name = kept["name"]
    assert file_requests(standin, name, "DELETE") == []  # kept, not deleted
    return parent_id, revision_id, name


def test_a_revision_reuses_the_kept_copy_and_the_tidy_deletes_it_later(
    keeping_worker: Worker, tasks_collection: Any, standin: StandIn, marker: str
) -> None:
    parent_id, _, name = _run_parent_and_revision(keeping_worker, tasks_collection, standin, marker)
    sha256 = task_of(tasks_collection, parent_id)["request"]["pdf"]["sha256"]

    # Within the window nothing goes; past it, the copy and its record do.
    gemini_files.tidy()
    assert _record(sha256) is not None
    later = datetime.now(UTC) + timedelta(seconds=KEEP_S + 1)
    assert gemini_files.tidy(later) >= 1
    assert _record(sha256) is None
    assert len(file_requests(standin, name, "DELETE")) == 1


def test_an_erased_task_has_its_kept_copy_deleted_at_the_next_tidy(
    keeping_worker: Worker, tasks_collection: Any, standin: StandIn, marker: str
) -> None:
    parent_id, revision_id, name = _run_parent_and_revision(
        keeping_worker, tasks_collection, standin, marker
    )
    sha256 = task_of(tasks_collection, parent_id)["request"]["pdf"]["sha256"]
    uid = task_of(tasks_collection, parent_id)["uid"]
    erasure.erase_task(revision_id, uid=uid)
    erasure.erase_task(parent_id, uid=uid)
    record = _record(sha256)
    assert record is not None and record["idle_since"] < datetime.now(UTC) - timedelta(days=1)
    assert gemini_files.tidy() >= 1  # now: no window to wait for
    assert _record(sha256) is None
    assert len(file_requests(standin, name, "DELETE")) == 1
