"""Time budgets hold through the real SDK (issue 15, items 11 and 15): the PDF's whole File
API upload ends by ``pdf_upload_worst_case_s()`` whatever its requests meet (a stalled start
or chunk, chunk answers without X-Goog-Upload-Status, a slow files.get), a file delete never
holds up the attempt, and a strategy stream that trickles (no read ever times out) ends at
``strategy_call_worst_case_s()`` with its connection closed then, not at the stream's end.

Timeouts are small (set through the environment); each bound is derived from the settings,
plus ``MARGIN_S`` for the test's own overhead.
"""

from __future__ import annotations

import hashlib
import io
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dev.gemini_standin import StandinServer
from shared import clients, gemini, gemini_files
from shared.gemini import GeminiError
from shared.models import PdfRef, TaskRequest
from shared.settings import MIB, Settings
from tests.standin_helpers import running_standin
from tests.unit.test_gemini_backend import clean, requests_of, standin_settings, use

__all__ = ["clean"]  # the autouse fixture: no setting or client leaks between tests

# The test's own overhead past a budget (thread wake-ups, the in-process stand-in).
MARGIN_S = 0.3
# File API requests: each one's own deadline, then processing. One chunk of PDF at most.
UPLOAD_TIMEOUT_S = 1.0
FILE_ACTIVE_TIMEOUT_S = 0.2
# The strategy call: its deadline is also httpx's timeout for each read.
STRATEGY_TIMEOUT_S = 1.6
# A stream that trickles: every pause under the per-read timeout, the whole far beyond it.
TRICKLE_PIECES = 6
TRICKLE_PAUSE_S = 0.75 * STRATEGY_TIMEOUT_S
PDF_BYTES = b"%PDF-1.4\n%%EOF\n"


@pytest.fixture(scope="module")
def standin() -> Iterator[StandinServer]:
    with running_standin() as server:
        yield server


def fault(standin: StandinServer, **rule: Any) -> None:
    httpx.post(f"{standin.url}/_standin/faults", json=rule).raise_for_status()


# -- the PDF's upload --------------------------------------------------------------------------


class OneObjectStorage:
    """Cloud Storage as ``_upload`` reads it: any blob opens to the same bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def bucket(self, _name: str) -> OneObjectStorage:
        return self

    def blob(self, _name: str) -> OneObjectStorage:
        return self

    def open(self, _mode: str, chunk_size: int | None = None) -> io.BytesIO:
        return io.BytesIO(self.data)


@pytest.fixture
def upload_settings(monkeypatch: pytest.MonkeyPatch, standin: StandinServer) -> Settings:
    """Short File API deadlines; one task alone with its PDF (the shared record, in
    Firestore, is not what these tests are about: the task uploads, and its leave is the
    last user's, which deletes the file)."""
    settings = standin_settings(
        monkeypatch,
        standin,
        GEMINI_UPLOAD_TIMEOUT_S=str(UPLOAD_TIMEOUT_S),
        FILE_ACTIVE_TIMEOUT_S=str(FILE_ACTIVE_TIMEOUT_S),
        GEMINI_MAX_ATTEMPTS="2",
        MAX_PDF_BYTES=str(MIB),
        MAX_UPLOAD_PDF_BYTES=str(MIB),
    )
    monkeypatch.setattr(
        gemini_files, "_acquire", lambda _sha256, _task_id: (gemini_files.Role.UPLOAD, None)
    )
    monkeypatch.setattr(gemini_files, "_publish", lambda *_args: None)
    monkeypatch.setattr(gemini_files, "_abandon", lambda *_args: None)
    monkeypatch.setattr(
        gemini_files, "_leave", lambda _sha256, file: gemini_files._delete_file(file)
    )
    return settings


def storing(monkeypatch: pytest.MonkeyPatch, marker: str, data: bytes = PDF_BYTES) -> PdfRef:
    monkeypatch.setattr(clients, "storage", lambda: OneObjectStorage(data))
    return PdfRef(
        gcs_uri=f"gs://demo-tinkerbell-uploads/uploads/{marker}/source.pdf",
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def failed_upload(pdf: PdfRef, marker: str) -> tuple[GeminiError, float]:
    """``pdf_for_gemini``'s error and how long it took to come."""
    started = time.monotonic()
    with (
        pytest.raises(GeminiError) as failed,
        gemini_files.pdf_for_gemini(pdf, task_id=marker, deadline=started + 600),
    ):
        pass
    return failed.value, time.monotonic() - started


def test_the_budget_is_the_one_these_tests_bound(upload_settings: Settings) -> None:
    assert upload_settings.pdf_upload_worst_case_s() == UPLOAD_TIMEOUT_S + FILE_ACTIVE_TIMEOUT_S


@pytest.mark.parametrize(
    "rules",
    [
        # Every upload request stalls: the resumable start is retried (retry_options),
        # each try with the request's whole deadline.
        pytest.param([{"latency_s": 30}], id="start-stalls"),
        # The start answers late, then the chunk stalls: it may have only what is left.
        pytest.param(
            [{"latency_s": 0.8 * UPLOAD_TIMEOUT_S, "times": 1}, {"latency_s": 30}],
            id="chunk-stalls-after-a-slow-start",
        ),
    ],
)
def test_a_stalled_upload_ends_by_the_pdf_budget(
    upload_settings: Settings,
    standin: StandinServer,
    monkeypatch: pytest.MonkeyPatch,
    rules: list[dict[str, Any]],
) -> None:
    marker = uuid.uuid4().hex
    pdf = storing(monkeypatch, marker)
    for rule in rules:
        fault(standin, match=marker, endpoint="upload", **rule)
    error, took = failed_upload(pdf, marker)
    assert took < upload_settings.pdf_upload_worst_case_s() + MARGIN_S
    assert (error.code, error.retryable) == ("gemini_deadline_exceeded", True)


def test_chunk_answers_without_upload_status_end_by_the_pdf_budget(
    upload_settings: Settings, standin: StandinServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK re-posts such a chunk up to 3 times, sleeping 1, 2 and 4 s, whatever
    retry_options say: 7 s that no request deadline bounds."""
    marker = uuid.uuid4().hex
    pdf = storing(monkeypatch, marker)
    fault(standin, match=marker, endpoint="upload", status=503, no_upload_status=True)
    error, took = failed_upload(pdf, marker)
    assert took < upload_settings.pdf_upload_worst_case_s() + MARGIN_S
    assert (error.code, error.retryable) == ("gemini_deadline_exceeded", True)
    # The chunk was answered without the header, and the SDK went on to post it again.
    statuses = [r["status"] for r in requests_of(standin, marker) if r["endpoint"] == "upload"]
    assert statuses[:2] == [200, 503]


def test_a_slow_files_get_ends_by_the_pdf_budget(
    upload_settings: Settings, standin: StandinServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stand-in's file is PROCESSING for a while after its upload: the worker polls
    files.get, each poll with the time left as its own deadline."""
    marker = uuid.uuid4().hex
    pdf = storing(monkeypatch, marker)
    fault(standin, match=marker, endpoint="files", latency_s=30)
    error, took = failed_upload(pdf, marker)
    assert took < upload_settings.pdf_upload_worst_case_s() + MARGIN_S
    # Each poll timed out at its own deadline (the time left), well before our timer.
    assert (error.code, error.retryable) == ("gemini_unreachable", True)
    gets = [r for r in requests_of(standin, marker) if r["method"] == "GET"]
    assert gets, "the upload never waited for the file to become ACTIVE"


def test_a_slow_file_delete_does_not_hold_up_the_attempt(
    upload_settings: Settings, standin: StandinServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file Gemini cannot read is FAILED: deleted, and the attempt fails. The delete goes
    on in the background: the attempt has its answer before the delete has its own."""
    httpx.post(f"{standin.url}/_standin/config", json={"file_processing_s": 0}).raise_for_status()
    marker = uuid.uuid4().hex
    pdf = storing(monkeypatch, marker, b"not a PDF at all")
    delete_latency_s = 0.8 * UPLOAD_TIMEOUT_S  # within the delete's deadline: it succeeds
    fault(standin, match=marker, endpoint="files", latency_s=delete_latency_s)
    error, took = failed_upload(pdf, marker)
    returned_at = time.time()
    assert (error.code, error.retryable) == ("pdf_unreadable", False)
    assert took < delete_latency_s
    delete = wait_for_end(standin, marker, "DELETE", timeout_s=UPLOAD_TIMEOUT_S + 2)
    assert delete["status"] == 200  # the file is gone all the same
    assert delete["ended_at"] > returned_at


def wait_for_end(standin: StandinServer, marker: str, method: str, timeout_s: float) -> Any:
    """The stand-in's log entry of the request, once it has ended (None if it did not)."""
    give_up = time.monotonic() + timeout_s
    while True:
        found = [r for r in requests_of(standin, marker) if r["method"] == method]
        if found and found[-1]["ended_at"] is not None:
            return found[-1]
        if time.monotonic() > give_up:
            return found[-1] if found else None
        time.sleep(0.02)


# -- the strategy call -------------------------------------------------------------------------


@pytest.fixture
def trickling(monkeypatch: pytest.MonkeyPatch, standin: StandinServer) -> tuple[Settings, str]:
    """Settings with one try of the strategy call, and a marker whose stream trickles."""
    standin_settings(monkeypatch, standin)
    settings = use(
        monkeypatch,
        GEMINI_STRATEGY_TIMEOUT_S=str(STRATEGY_TIMEOUT_S),
        GEMINI_STRATEGY_MAX_ATTEMPTS="1",
    )
    marker = uuid.uuid4().hex
    fault(
        standin,
        match=marker,
        endpoint="streamGenerateContent",
        stream_pieces=TRICKLE_PIECES,
        stream_pause_s=TRICKLE_PAUSE_S,
    )
    return settings, marker


def failed_strategy(marker: str) -> tuple[GeminiError, float]:
    started = time.monotonic()
    with pytest.raises(GeminiError) as failed:
        gemini.generate_strategy(TaskRequest(brief=f"A bakery in Lyon {marker}", image=False))
    return failed.value, time.monotonic() - started


def test_a_trickling_stream_ends_at_the_strategy_limit(
    trickling: tuple[Settings, str],
) -> None:
    """httpx's timeout bounds each read: a stream whose every pause is under it would run
    to its end (here (TRICKLE_PIECES - 1) * TRICKLE_PAUSE_S = 6 s) without our timer."""
    settings, marker = trickling
    limit = settings.strategy_call_worst_case_s()
    assert limit == STRATEGY_TIMEOUT_S
    error, took = failed_strategy(marker)
    assert (error.code, error.retryable) == ("gemini_deadline_exceeded", True)
    assert limit - 0.05 < took < limit + MARGIN_S


def test_a_call_past_its_limit_has_its_connection_closed_then(
    trickling: tuple[Settings, str], standin: StandinServer
) -> None:
    """A stream left open is generated, and billed, to its end: when the timer gives up on
    the call, its connection closes at once (the stand-in ends the request's log entry
    the moment its client closes), not at the next event nor at the stream's end."""
    _settings, marker = trickling
    error, _took = failed_strategy(marker)
    gave_up_at = time.time()
    assert error.code == "gemini_deadline_exceeded"
    stream = wait_for_end(standin, marker, "POST", timeout_s=TRICKLE_PAUSE_S + 0.5)
    assert stream is not None and stream["ended_at"] is not None, "the stream is still open"
    assert stream["ended_at"] - gave_up_at < MARGIN_S
