"""Gemini through Vertex AI (issue 12): the worker's code path, in this process, against
the running test stack's Gemini stand-in (its Vertex AI routes) and Cloud Storage emulator.

The stack's own functions keep the Developer API (the rest of the suite runs that path
end to end); here GEMINI_BACKEND=vertex is set for this process only, and the worker
(``shared.processing.Worker`` with the real adapters) processes tasks written straight
to Firestore, their PDFs uploaded to the storage emulator first. The stand-in's request
log shows what reached it: project-scoped Vertex AI paths, the PDF as its ``gs://``
URI, and no File API request at all.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from shared import uploads
from shared.models import PdfRef, TaskMessage, TaskRecord, TaskRequest, TaskStatus
from shared.processing import RedeliverLater, Worker
from shared.queue import Delivery
from shared.settings import get_settings
from tests.integration.conftest import StandIn, worker_at_standin

pytestmark = pytest.mark.integration

SMALL_PDF = b"%PDF-1.4\n% Tinkerbell on Vertex AI\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
FILE_API = ("upload", "files")


@pytest.fixture
def vertex(
    stack: dict[str, str], standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Worker]:
    """This process's settings switched to Vertex AI at the stack's stand-in."""
    env: dict[str, str | None] = {
        "GEMINI_BACKEND": "vertex",
        "GEMINI_VERTEX_LOCATION": None,
        "GEMINI_API_VERSION": None,
    }
    with worker_at_standin(standin, monkeypatch, **env) as worker:
        assert get_settings().uses_vertex
        yield worker


def write_task(tasks_collection: Any, request: TaskRequest, task_id: str | None = None) -> str:
    """A PENDING task, as the accept path leaves it (no message: the test delivers)."""
    from shared.tasks import to_document

    now = datetime.now(UTC)
    task_id = task_id or uuid.uuid4().hex
    record = TaskRecord(
        task_id=task_id,
        uid=f"vertex-{task_id[:8]}",
        status=TaskStatus.PENDING,
        created_at=now,
        updated_at=now,
        request=request,
    )
    tasks_collection.document(task_id).create(to_document(record))
    return task_id


def deliver(worker: Worker, task_id: str, attempt: int = 1) -> None:
    worker.handle_delivery(
        Delivery(
            message=TaskMessage(task_id=task_id),
            message_id=uuid.uuid4().hex,
            publish_time=datetime.now(UTC),
            delivery_attempt=attempt,
        )
    )


def task_of(tasks_collection: Any, task_id: str) -> dict[str, Any]:
    data: dict[str, Any] = tasks_collection.document(task_id).get().to_dict()
    return data


def file_api_requests(standin: StandIn) -> list[dict[str, Any]]:
    return [r for r in standin.requests("") if r["endpoint"] in FILE_API]


def pdf_request(task_id: str, marker: str, **fields: Any) -> TaskRequest:
    pdf = uploads.store_pdf(task_id, SMALL_PDF + os.urandom(16), "brief.pdf")
    return TaskRequest(brief=f"Bicycle repair shop in Iasi {marker}", pdf=pdf, **fields)


@pytest.mark.exclusive  # counts every File API request, and takes the next image call
def test_pdf_url_grounding_and_image_on_vertex_without_the_file_api(
    vertex: Worker,
    standin: StandIn,
    tasks_collection: Any,
    firestore_client: Any,
    marker: str,
) -> None:
    task_id = uuid.uuid4().hex
    request = pdf_request(
        task_id, marker, urls=["https://example.com/"], grounding=True, image=True
    )
    assert request.pdf is not None
    file_api_before = len(file_api_requests(standin))
    write_task(tasks_collection, request, task_id)

    deliver(vertex, task_id)

    task = task_of(tasks_collection, task_id)
    assert task["status"] == "COMPLETED", task.get("error")
    result = task["result"]
    assert result["strategy"]["strategy_name"].startswith("[stand-in sample")
    kinds = {source["kind"] for source in result["sources"]}
    assert kinds == {"url_context", "search"}
    search = [s for s in result["sources"] if s["kind"] == "search"]
    assert all(s["url"].startswith("https://vertexaisearch.cloud.google.com/") for s in search)
    assert all(s["domain"] for s in search)
    assert result["search_entry_point"]
    usage = result["usage"]
    assert usage["thoughts_tokens"] > 0
    assert usage["prompt_tokens"] + usage["output_tokens"] == usage["total_tokens"]
    image = result["image"]
    assert image["gcs_uri"] == f"gs://{get_settings().bucket_name}/results/{task_id}/preview.jpg"
    assert image["mime_type"] == "image/jpeg" and image["width"] and image["height"]

    # What reached the stand-in: Vertex AI's paths, the PDF by its gs:// URI...
    project = get_settings().vertex_project
    [strategy] = standin.requests(marker, endpoint="streamGenerateContent")
    assert strategy["backend"] == "vertex"
    assert strategy["path"] == (
        f"/v1/projects/{project}/locations/global/publishers/google/models/"
        f"{get_settings().gemini_text_model}:streamGenerateContent"
    )
    assert strategy["file_uris"] == [request.pdf.gcs_uri]
    assert sorted(strategy["tools"]) == ["google_search", "url_context"]
    image_calls = [r for r in standin.requests("", endpoint="image") if r["seq"] > strategy["seq"]]
    assert image_calls and image_calls[0]["backend"] == "vertex"
    assert image_calls[0]["model"] == get_settings().gemini_image_model
    # ...and no File API request, no shared-file record.
    assert len(file_api_requests(standin)) == file_api_before
    assert [r for r in standin.requests(task_id) if r["endpoint"] in FILE_API] == []
    files = get_settings().gemini_files_collection
    assert not firestore_client.collection(files).document(request.pdf.sha256).get().exists


def test_a_pdf_object_that_does_not_exist_fails_the_task(
    vertex: Worker, standin: StandIn, tasks_collection: Any, marker: str
) -> None:
    task_id = uuid.uuid4().hex
    missing = PdfRef(
        gcs_uri=f"gs://{get_settings().bucket_name}/uploads/{task_id}/source.pdf",
        size_bytes=100,
        sha256=uuid.uuid4().hex * 2,
    )
    write_task(
        tasks_collection,
        TaskRequest(brief=f"Flower shop {marker}", pdf=missing, image=False),
        task_id,
    )

    deliver(vertex, task_id)

    task = task_of(tasks_collection, task_id)
    assert task["status"] == "FAILED"
    assert task["error"]["code"] == "gemini_invalid_argument"
    assert task["error"]["retryable"] is False
    [call] = standin.requests(marker)
    assert (call["backend"], call["status"]) == ("vertex", 400)
    assert call["file_uris"] == [missing.gcs_uri]


def test_a_503_ends_the_attempt_retryably_and_the_next_delivery_completes(
    vertex: Worker, standin: StandIn, tasks_collection: Any, marker: str
) -> None:
    task_id = uuid.uuid4().hex
    request = pdf_request(task_id, marker, image=False)
    write_task(tasks_collection, request, task_id)
    tries = get_settings().gemini_strategy_max_attempts
    standin.fault(marker, endpoint="generateContent", status=503, times=tries)

    with pytest.raises(RedeliverLater):
        deliver(vertex, task_id)

    task = task_of(tasks_collection, task_id)
    assert task["status"] == "PROCESSING"  # back to Pub/Sub, not FAILED
    assert task["attempt_errors"] == ["gemini_unavailable"]
    assert task["progress"]["stage"] == "waiting_to_retry"
    assert [r["status"] for r in standin.requests(marker)] == [503] * tries

    deliver(vertex, task_id, attempt=2)

    task = task_of(tasks_collection, task_id)
    assert task["status"] == "COMPLETED", task.get("error")
    assert task["attempts"] == 2
    calls = standin.requests(marker)
    assert [r["status"] for r in calls] == [503] * tries + [200]
    assert {r["backend"] for r in calls} == {"vertex"}
