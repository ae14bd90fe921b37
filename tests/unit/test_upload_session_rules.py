"""Upload session requests (issue 10, item 5): a bounded size is required, and a
browser gets a session only from our web app's origin, before anything is written."""

from __future__ import annotations

import pytest

from shared import upload_sessions
from shared.errors import InvalidArgument, PayloadTooLarge
from shared.settings import get_settings


@pytest.fixture(autouse=True)
def no_services(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refused request must not reach Firestore or Cloud Storage at all."""

    def touched() -> None:
        raise AssertionError("a refused upload request reached a Google service")

    monkeypatch.setattr(upload_sessions.clients, "firestore", touched)
    monkeypatch.setattr(upload_sessions.clients, "storage", touched)


@pytest.mark.parametrize(
    "body",
    [{}, {"filename": "a.pdf"}, {"size_bytes": 0}, {"size_bytes": "12"}, {"size_bytes": 1.5}],
)
def test_a_session_needs_an_exact_size(body: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument) as refused:
        upload_sessions.parse_upload_request(body)
    assert refused.value.field == "size_bytes"


def test_a_size_above_the_limit_is_413() -> None:
    limit = get_settings().max_upload_pdf_bytes
    request = upload_sessions.parse_upload_request({"size_bytes": limit + 1})
    with pytest.raises(PayloadTooLarge):
        upload_sessions.create_session("u", request, origin=None)


def test_a_foreign_origin_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "https://app.example")
    get_settings.cache_clear()
    try:
        request = upload_sessions.parse_upload_request({"size_bytes": 100})
        with pytest.raises(InvalidArgument, match="Origin"):
            upload_sessions.create_session("u", request, origin="https://evil.example")
    finally:
        get_settings.cache_clear()
