"""PDFs in the web app: dropped onto the form, and a PDF over the request limit
sent through an upload session (POST /v1/uploads, PUT with a progress bar, then
JSON with upload_id). The limit is lowered for the test through the page's
runtime config, so a 200 KB PDF takes the session path."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, Request, expect

from tests.e2e.conftest import WebApp
from tests.e2e.helpers import DONE_MS, message, pdf_bytes, submit_brief, wait_completed

pytestmark = pytest.mark.e2e

# Drops a file on an element the way a browser does: dragenter, dragover, drop,
# each with a DataTransfer that holds the File.
DROP = """
([selector, name, type, bytes]) => {
  const target = document.querySelector(selector);
  const data = new DataTransfer();
  data.items.add(new File([new Uint8Array(bytes)], name, {type}));
  const fire = (kind) => target.dispatchEvent(
    new DragEvent(kind, {dataTransfer: data, bubbles: true, cancelable: true}));
  fire('dragenter');
  const lit = document.getElementById('pdf-drop').classList.contains('dragging');
  const accepted = !fire('dragover');  // preventDefault() = "drop here"
  fire('drop');
  return {lit, accepted};
}
"""

# Records each value the upload bar shows while the upload runs.
RECORD_UPLOAD = """
() => {
  window.__upload = [];
  const bar = document.getElementById('upload-bar');
  const box = document.getElementById('upload-box');
  new MutationObserver(() => {
    if (!box.hidden) window.__upload.push(Number(bar.value));
  }).observe(document.getElementById('pdf').closest('.field'),
             {attributes: true, subtree: true, childList: true, characterData: true});
}
"""


def drop_file(page: Page, name: str, data: bytes, mime: str = "application/pdf") -> Any:
    return page.evaluate(DROP, ["#pdf-drop", name, mime, list(data)])


def test_a_pdf_dropped_on_the_form_goes_with_the_brief(
    web: WebApp, marker: str, read_task: Callable[[str], dict[str, Any]]
) -> None:
    page = web.open()
    pdf = pdf_bytes(4096)
    result = drop_file(page, "dropped brief.pdf", pdf)
    assert result == {"lit": True, "accepted": True}
    expect(page.locator("#pdf-drop")).not_to_have_class(re.compile(r"\bdragging\b"))
    assert page.evaluate("document.getElementById('pdf').files[0].name") == "dropped brief.pdf"
    expect(page.locator("#pdf-chosen")).to_contain_text("dropped brief.pdf")
    expect(page.locator("#pdf-chosen")).to_contain_text("4 KiB")

    with page.expect_request(lambda r: r.url.endswith("/v1/strategies")) as sent:
        submit_brief(page, f"Climbing gym in Cluj ({marker})", image=False)
    assert (sent.value.header_value("content-type") or "").startswith("multipart/form-data")
    task = read_task(wait_completed(page))
    assert task["request"]["pdf"]["filename"] == "dropped brief.pdf"
    assert task["request"]["pdf"]["size_bytes"] == len(pdf)


def test_a_dropped_file_that_is_not_a_pdf_is_refused(web: WebApp) -> None:
    page = web.open()
    page.on("filechooser", lambda _: None)  # interception on before the click
    # A click on the zone's button opens the file chooser too.
    with page.expect_file_chooser() as chooser:
        page.click("#pdf-drop .file-button")
    assert chooser.value.element.get_attribute("id") == "pdf"
    drop_file(page, "notes.txt", b"hello", mime="text/plain")
    expect(page.locator("#pdf-error")).to_have_text(message("en", "val.pdf_type"))
    assert page.evaluate("document.getElementById('pdf').files.length") == 0
    # The PDF can be removed again with its button.
    drop_file(page, "ok.pdf", pdf_bytes(100))
    expect(page.locator("#pdf-error")).to_be_hidden()
    page.click("#pdf-remove")
    assert page.evaluate("document.getElementById('pdf').files.length") == 0
    expect(page.locator("#pdf-chosen-row")).to_be_hidden()
    expect(page.locator("#pdf")).to_be_focused()


def test_a_large_pdf_goes_through_an_upload_session(
    new_web: Callable[..., WebApp],
    marker: str,
    read_task: Callable[[str], dict[str, Any]],
    stack_env: dict[str, str],
) -> None:
    threshold = 100_000
    app = new_web(config={"uploadThresholdBytes": threshold})
    page = app.open()
    requests: list[Request] = []
    page.on("request", lambda r: requests.append(r) if r.method != "OPTIONS" else None)
    page.evaluate(RECORD_UPLOAD)
    pdf = pdf_bytes(200_000)
    page.set_input_files(
        "#pdf", files=[{"name": "catalogue.pdf", "mimeType": "application/pdf", "buffer": pdf}]
    )
    submit_brief(page, f"Furniture shop catalogue ({marker})", image=False)
    task_id = wait_completed(page)

    session_calls = [r for r in requests if r.url.endswith("/v1/uploads")]
    assert len(session_calls) == 1
    assert session_calls[0].method == "POST"
    assert json.loads(session_calls[0].post_data or "{}") == {
        "size_bytes": len(pdf),
        "filename": "catalogue.pdf",
    }
    session = session_calls[0].response()
    assert session is not None and session.status == 201
    upload = session.json()
    puts = [r for r in requests if r.method == "PUT"]
    assert [r.url for r in puts] == [upload["upload_url"]]
    assert puts[0].url.startswith(stack_env["STORAGE_EMULATOR_HOST"])
    (submitted,) = [r for r in requests if r.url.endswith("/v1/strategies")]
    assert (submitted.header_value("content-type") or "").startswith("application/json")
    body = json.loads(submitted.post_data or "{}")
    assert body["upload_id"] == upload["upload_id"]
    assert "pdf" not in body

    # The progress bar showed the upload and ended full; then it went away.
    shown = page.evaluate("window.__upload")
    assert shown and shown[-1] == 100, shown
    expect(page.locator("#upload-box")).to_be_hidden()

    task = read_task(task_id)
    ref = task["request"]["pdf"]
    uid = page.evaluate("document.body.dataset.uid")
    assert ref["gcs_uri"].endswith(f"/uploads/{uid}/{upload['upload_id']}.pdf")
    assert ref["size_bytes"] == len(pdf)
    assert ref["filename"] == "catalogue.pdf"


def test_a_small_pdf_stays_inside_the_request(new_web: Callable[..., WebApp], marker: str) -> None:
    page = new_web(config={"uploadThresholdBytes": 100_000}).open()
    uploads: list[str] = []
    page.on("request", lambda r: uploads.append(r.url) if "/v1/uploads" in r.url else None)
    page.set_input_files(
        "#pdf",
        files=[{"name": "small.pdf", "mimeType": "application/pdf", "buffer": pdf_bytes(50_000)}],
    )
    with page.expect_request(lambda r: r.url.endswith("/v1/strategies")) as sent:
        submit_brief(page, f"Small PDF ({marker})", image=False)
    assert (sent.value.header_value("content-type") or "").startswith("multipart/form-data")
    expect(page.locator("#task-status")).to_have_attribute(
        "data-status", "COMPLETED", timeout=DONE_MS
    )
    assert uploads == []
