"""Sources and visuals (issue 3): PDF through the File API, URLs, grounding, the
preview image, live progress, large PDFs through upload sessions.

The Gemini stand-in's request log is the evidence of what was sent to Gemini.
"""

from __future__ import annotations

import io
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from google.cloud.firestore_v1.base_query import FieldFilter
from PIL import Image

from shared.gemini import PNG_SIGNATURE, image_size
from tests.integration.conftest import Api, StandIn, TaskWatcher, User

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
SMALL_PDF = b"%PDF-1.4\n% Tinkerbell test brief\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
STRATEGY_CALL = "streamGenerateContent"
PDF_HEADERS = {"Content-Type": "application/pdf"}


def tasks_of(tasks_collection: Any, user: User) -> list[Any]:
    return list(tasks_collection.where(filter=FieldFilter("uid", "==", user.uid)).stream())


def unique_pdf(size: int = 0) -> bytes:
    """A PDF-looking file of its own (so the sha256 dedupe does not mix tests)."""
    return SMALL_PDF + os.urandom(16) + b"\0" * size


def submit_with_pdf(http: Any, stack: dict, user: User, pdf: bytes, **fields: str) -> str:
    return Api(stack, http).submit_pdf(user, pdf, **fields)


def decoded_png(png: bytes) -> Image.Image:
    """The PNG verified by Pillow (its chunks and their CRCs), then decoded whole."""
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        image.verify()
    decoded = Image.open(io.BytesIO(png))
    decoded.load()  # every pixel: raises on missing or corrupt image data
    return decoded


def file_requests(standin: StandIn, file_name: str, method: str) -> list[dict]:
    return [r for r in standin.requests(file_name.split("/")[-1]) if r["method"] == method]


def test_pdf_goes_through_the_file_api_and_is_deleted_after(
    http: Any, stack: dict, user: User, watcher: TaskWatcher, standin: StandIn, marker: str
) -> None:
    task_id = submit_with_pdf(http, stack, user, unique_pdf(), brief=f"Bookshop {marker}")
    task = watcher.wait(task_id)
    assert task["status"] == "COMPLETED", task.get("error")

    uploads = standin.requests(task_id, endpoint="upload")
    assert len(uploads) == 2  # the resumable start, then one chunk with finalize
    (call,) = standin.requests(marker, endpoint=STRATEGY_CALL)
    assert call["has_file_part"] is True
    (file_uri,) = call["file_uris"]
    deletes = file_requests(standin, file_uri, "DELETE")
    assert len(deletes) == 1
    assert deletes[0]["started_at"] > call["ended_at"]


def test_pdf_file_is_deleted_when_gemini_fails(
    http: Any, stack: dict, user: User, watcher: TaskWatcher, standin: StandIn, marker: str
) -> None:
    standin.fault(marker, endpoint=STRATEGY_CALL, status=400)
    task = watcher.wait(submit_with_pdf(http, stack, user, unique_pdf(), brief=f"Bar {marker}"))

    assert task["status"] == "FAILED"
    (call,) = standin.requests(marker, endpoint=STRATEGY_CALL)
    assert len(file_requests(standin, call["file_uris"][0], "DELETE")) == 1


def test_two_tasks_with_the_same_pdf_share_one_upload(
    http: Any, stack: dict, new_user: Any, watcher: TaskWatcher, standin: StandIn, marker: str
) -> None:
    standin.fault(marker, endpoint=STRATEGY_CALL, latency_s=1.0)
    pdf = unique_pdf()
    users = [new_user(), new_user()]
    with ThreadPoolExecutor(2) as pool:
        task_ids = list(
            pool.map(
                lambda u: submit_with_pdf(http, stack, u, pdf, brief=f"Same PDF {marker}"), users
            )
        )
    tasks = watcher.wait_all(task_ids)

    assert {t["status"] for t in tasks.values()} == {"COMPLETED"}
    assert len({t["request"]["pdf"]["sha256"] for t in tasks.values()}) == 1
    uploads = [r for t in task_ids for r in standin.requests(t, endpoint="upload")]
    assert len(uploads) == 2  # one file: start + one chunk
    calls = standin.requests(marker, endpoint=STRATEGY_CALL)
    assert len(calls) == 2
    file_uris = {uri for call in calls for uri in call["file_uris"]}
    assert len(file_uris) == 1
    assert len(file_requests(standin, file_uris.pop(), "DELETE")) == 1


def test_urls_use_url_context_and_sources_are_recorded(
    api: Api, user: User, watcher: TaskWatcher, standin: StandIn, marker: str
) -> None:
    urls = ["https://example.com/menu", "https://unreachable.example.org/page"]
    task = watcher.wait(api.submit_ok(user, brief=f"Cafe {marker}", urls=urls, image=False))

    assert task["status"] == "COMPLETED"
    (call,) = standin.requests(marker, endpoint=STRATEGY_CALL)
    assert "urlContext" in call["tools"] or "url_context" in call["tools"]
    assert not any("earch" in tool for tool in call["tools"])
    sources = {s["url"]: s["status"] for s in task["result"]["sources"]}
    assert sources == {urls[0]: "retrieved", urls[1]: "error"}


def test_grounding_adds_google_search_and_cited_sources(
    api: Api, user: User, watcher: TaskWatcher, standin: StandIn, marker: str
) -> None:
    task = watcher.wait(api.submit_ok(user, brief=f"Gym {marker}", grounding=True, image=False))

    (call,) = standin.requests(marker, endpoint=STRATEGY_CALL)
    assert any(tool in call["tools"] for tool in ("googleSearch", "google_search"))
    cited = [s for s in task["result"]["sources"] if s["status"] == "cited"]
    assert cited and all(s["kind"] == "search" and s["domain"] for s in cited)


def test_preview_image_is_stored_and_served_to_the_owner(
    api: Api,
    user: User,
    new_user: Any,
    watcher: TaskWatcher,
    restore_standin: StandIn,
    http: Any,
    stack: dict,
    marker: str,
) -> None:
    # PNG (the default JPEG is covered by test_gemini_contract): its pixels are checked.
    restore_standin.config(image_format="png")
    task_id = api.submit_ok(user, brief=f"Florist {marker}")
    task = watcher.wait(task_id)
    image = task["result"]["image"]

    assert task["status"] == "COMPLETED"
    assert image["gcs_uri"].endswith(f"/results/{task_id}/preview.png")
    assert image["mime_type"] == "image/png"
    from shared import clients, uploads

    bucket, name = uploads.split_gcs_uri(image["gcs_uri"])
    stored = clients.storage().bucket(bucket).blob(name).download_as_bytes()
    assert stored.startswith(PNG_SIGNATURE)
    assert image_size(stored) == (image["width"], image["height"])
    assert image["width"] > 0
    decoded = decoded_png(stored)
    assert decoded.mode == "RGB"  # 8 bits a channel, as the stand-in draws it
    assert decoded.size == (image["width"], image["height"])

    url = f"{stack['STATUS_URL']}/v1/tasks/{task_id}/image"
    served = http.get(url, headers=user.headers)
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/png"
    assert served.content == stored
    assert http.get(url, headers=new_user().headers).status_code == 404
    # The image prompt is built from the strategy: its name leads to the call.
    (image_call,) = restore_standin.requests(task["result"]["strategy"]["strategy_name"], "image")
    assert image_call["response_modalities"] == ["TEXT", "IMAGE"]
    (strategy_call,) = restore_standin.requests(marker, endpoint=STRATEGY_CALL)
    assert image_call["started_at"] > strategy_call["ended_at"]


@pytest.mark.exclusive  # every image call fails while it runs
def test_image_failure_keeps_the_strategy(
    api: Api,
    user: User,
    watcher: TaskWatcher,
    standin: StandIn,
    http: Any,
    stack: dict,
    marker: str,
) -> None:
    # The image prompt is built from the strategy, which echoes the brief's marker-free
    # stand-in text; so fail every image call of this model id briefly instead.
    task_id = api.submit_ok(user, brief=f"Tailor {marker}")
    standin.fault("", endpoint="image", status=400, times=None)
    try:
        task = watcher.wait(task_id)
    finally:
        http.delete(f"{stack['GEMINI_STANDIN_URL']}/_standin/faults")

    assert task["status"] == "COMPLETED"
    assert task["result"]["strategy"]["strategy_name"]
    assert task["result"]["image"] is None
    assert task["result"]["image_error"]["code"] == "gemini_invalid_argument"


def test_progress_stages_arrive_in_order(
    http: Any, stack: dict, user: User, tasks_collection: Any, standin: StandIn, marker: str
) -> None:
    standin.fault(marker, endpoint=STRATEGY_CALL, latency_s=1.2)
    seen: list[str] = []
    finished = threading.Event()
    listening = threading.Event()

    def on_change(snapshots: list[Any], _changes: Any, _read_time: Any) -> None:
        listening.set()  # the first (empty) snapshot: the listen stream is current
        for snap in snapshots:
            data = snap.to_dict()
            stage = (data.get("progress") or {}).get("stage")
            if stage and (not seen or seen[-1] != stage):
                seen.append(stage)
            if data["status"] in ("COMPLETED", "FAILED"):
                finished.set()

    watch = tasks_collection.where(filter=FieldFilter("uid", "==", user.uid)).on_snapshot(on_change)
    try:
        # Submit only once the listener is current, or the first stages may go by unseen.
        assert listening.wait(10)
        submit_with_pdf(http, stack, user, unique_pdf(), brief=f"Toys {marker}")
        assert finished.wait(30), seen
    finally:
        watch.unsubscribe()
    order = ["queued", "reading_sources", "writing_strategy", "drawing_image", "saving", "done"]
    assert [s for s in order if s in seen] == seen  # never out of order
    assert {"queued", "writing_strategy", "drawing_image", "done"} <= set(seen)


def _upload_session(http: Any, stack: dict, user: User, **body: Any) -> dict:
    answer = http.post(f"{stack['SUBMIT_URL']}/v1/uploads", headers=user.headers, json=body)
    assert answer.status_code == 201, answer.text
    session: dict = answer.json()
    assert set(session) == {"upload_id", "upload_url", "expires_at"}
    return session


def test_45_mib_pdf_through_an_upload_session(
    http: Any, stack: dict, user: User, watcher: TaskWatcher, standin: StandIn, marker: str
) -> None:
    pdf = unique_pdf(45 * MIB)
    session = _upload_session(http, stack, user, size_bytes=len(pdf), filename="catalogue.pdf")
    put = http.put(session["upload_url"], content=pdf, headers={"Content-Type": "application/pdf"})
    assert put.status_code in (200, 201), put.text

    answer = http.post(
        f"{stack['SUBMIT_URL']}/v1/strategies",
        headers=user.headers,
        json={"brief": f"Catalogue {marker}", "upload_id": session["upload_id"], "image": False},
    )
    assert answer.status_code == 202, answer.text
    task = watcher.wait(answer.json()["task_id"], timeout=120)

    assert task["status"] == "COMPLETED", task.get("error")
    ref = task["request"]["pdf"]
    assert ref["size_bytes"] == len(pdf)
    assert ref["gcs_uri"].endswith(f"/uploads/{user.uid}/{session['upload_id']}.pdf")
    assert ref["filename"] == "catalogue.pdf"
    import hashlib

    assert ref["sha256"] == hashlib.sha256(pdf).hexdigest()
    (call,) = standin.requests(marker, endpoint=STRATEGY_CALL)
    assert call["has_file_part"]
    # 45 MiB in the SDK's 8 MiB chunks: a start request and six chunks.
    assert len(standin.requests(task["task_id"], endpoint="upload")) == 1 + 6


def test_upload_of_another_user_is_refused_and_nothing_is_left(
    http: Any, stack: dict, user: User, new_user: Any, tasks_collection: Any, topic_probe: Any
) -> None:
    pdf = unique_pdf()
    session = _upload_session(http, stack, user, size_bytes=len(pdf))
    http.put(session["upload_url"], content=pdf, headers={"Content-Type": "application/pdf"})
    stranger = new_user()
    answer = http.post(
        f"{stack['SUBMIT_URL']}/v1/strategies",
        headers=stranger.headers,
        json={"brief": "steal", "upload_id": session["upload_id"]},
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == "upload_id"
    assert tasks_of(tasks_collection, stranger) == []
    assert topic_probe() == []


def test_non_pdf_upload_is_refused_and_deleted(
    http: Any, stack: dict, user: User, tasks_collection: Any, topic_probe: Any
) -> None:
    content = b"MZ\x90\x00 not a pdf"
    session = _upload_session(http, stack, user, size_bytes=len(content))
    http.put(session["upload_url"], content=content, headers={"Content-Type": "application/pdf"})
    answer = http.post(
        f"{stack['SUBMIT_URL']}/v1/strategies",
        headers=user.headers,
        json={"brief": "exe", "upload_id": session["upload_id"]},
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == "pdf"
    from shared import clients
    from shared.settings import get_settings

    bucket = clients.storage().bucket(get_settings().bucket_name)
    assert bucket.get_blob(f"uploads/{user.uid}/{session['upload_id']}.pdf") is None
    assert tasks_of(tasks_collection, user) == []
    assert topic_probe() == []


def test_upload_session_larger_than_the_limit_is_refused(
    http: Any, stack: dict, user: User
) -> None:
    answer = http.post(
        f"{stack['SUBMIT_URL']}/v1/uploads", headers=user.headers, json={"size_bytes": 51 * MIB}
    )
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "payload_too_large"
