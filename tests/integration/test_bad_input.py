"""Bad requests get a clear 4xx in the SPEC's error shape and leave nothing behind."""

from __future__ import annotations

from typing import Any

import pytest
from google.cloud.firestore_v1.base_query import FieldFilter

from tests.integration.conftest import Api, User

# Exclusive: it counts every uploaded object (tests/conftest.py).
pytestmark = [pytest.mark.integration, pytest.mark.exclusive]

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _nothing_left(tasks_collection: Any, user: User, topic_probe: Any, bucket: Any) -> None:
    assert list(tasks_collection.where(filter=FieldFilter("uid", "==", user.uid)).stream()) == []
    assert topic_probe() == []


@pytest.fixture
def bucket(stack: dict) -> Any:
    from shared import clients
    from shared.settings import get_settings

    return clients.storage().bucket(get_settings().bucket_name)


def multipart(data: dict, files: dict | None = None) -> list[tuple[str, Any]]:
    """Form fields and files as multipart parts (httpx sends bare ``data`` urlencoded)."""
    parts: list[tuple[str, Any]] = []
    for name, value in data.items():
        for item in value if isinstance(value, list) else [value]:
            parts.append((name, (None, item)))
    parts += list((files or {}).items())
    return parts


def _object_names(bucket: Any) -> set[str]:
    return {blob.name for blob in bucket.list_blobs(prefix="uploads/")}


JSON_CASES = [
    ({}, 400, "brief"),
    ({"brief": "   "}, 400, "brief"),
    ({"brief": "x" * 20_001}, 400, "brief"),
    ({"brief": 42}, 400, "brief"),
    ({"brief": "ok", "colour": "red"}, 400, "colour"),
    ({"brief": "ok", "urls": "https://example.com"}, 400, "urls"),
    ({"brief": "ok", "urls": ["http://127.0.0.1/admin"]}, 400, "urls"),
    ({"brief": "ok", "urls": ["http://0x7f.1/"]}, 400, "urls"),
    ({"brief": "ok", "urls": ["http://metadata.google.internal./"]}, 400, "urls"),
    ({"brief": "ok", "urls": ["https://user@example.com/"]}, 400, "urls"),
    ({"brief": "ok", "urls": ["file:///etc/passwd"]}, 400, "urls"),
    ({"brief": "ok", "urls": [f"https://example.com/{i}" for i in range(21)]}, 400, "urls"),
    ({"brief": "ok", "urls": ["x"] * 101}, 400, "urls"),  # refused before validation
    ({"brief": "ok", "language": "english"}, 400, "language"),
    ({"brief": "ok", "image": "yes"}, 400, "image"),
    ({"brief": "ok", "grounding": 1}, 400, "grounding"),
    ({"brief": "ok", "upload_id": "../../etc"}, 400, "upload_id"),
    ({"brief": "ok", "webhook_url": "http://hooks.example.com/x"}, 400, "webhook_url"),
    ({"brief": "ok", "webhook_url": "https://10.0.0.1/x"}, 400, "webhook_url"),
    ({"brief": "ok", "webhook_url": "https://[::ffff:169.254.169.254]/"}, 400, "webhook_url"),
    ({"brief": "ok", "webhook_url": "https://metadata.google.internal/x"}, 400, "webhook_url"),
    ({"brief": "ok", "webhook_url": 42}, 400, "webhook_url"),
]


@pytest.mark.parametrize(("body", "status", "field"), JSON_CASES)
def test_bad_json_field(
    api: Api,
    user: User,
    body: dict,
    status: int,
    field: str,
    tasks_collection: Any,
    topic_probe: Any,
    bucket: Any,
) -> None:
    answer = api.submit(user, **body)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_argument"
    assert error["field"] == field
    assert error["message"].startswith(field)
    _nothing_left(tasks_collection, user, topic_probe, bucket)


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code"),
    [
        (b"{not json", "application/json", 400, "invalid_argument"),
        (b'{"brief": "\xff\xfe"}', "application/json", 400, "invalid_argument"),
        (b'["brief"]', "application/json", 400, "invalid_argument"),
        (b'{"brief": "a", "brief": "b"}', "application/json", 400, "invalid_argument"),
        (b"brief=hello", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        (b"hello", "text/plain", 415, "unsupported_media_type"),
        (
            b'{"brief": "x", "urls": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
            "application/json",
            400,
            "invalid_argument",
        ),
    ],
    ids=["broken-json", "invalid-utf8", "array", "duplicate-key", "urlencoded", "text", "nested"],
)
def test_bad_body(
    http: Any,
    stack: dict,
    user: User,
    content: bytes,
    content_type: str,
    status: int,
    code: str,
    tasks_collection: Any,
    topic_probe: Any,
    bucket: Any,
) -> None:
    answer = http.post(
        f"{stack['SUBMIT_URL']}/v1/strategies",
        content=content,
        headers={**user.headers, "Content-Type": content_type},
    )
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code
    _nothing_left(tasks_collection, user, topic_probe, bucket)


def test_wrong_method_and_route(http: Any, stack: dict, user: User) -> None:
    get = http.get(f"{stack['SUBMIT_URL']}/v1/strategies", headers=user.headers)
    assert get.status_code == 405
    assert get.json()["error"]["code"] == "method_not_allowed"
    assert get.headers["Allow"] == "POST"
    elsewhere = http.post(f"{stack['SUBMIT_URL']}/v1/other", json={}, headers=user.headers)
    assert elsewhere.status_code == 404
    put = http.put(f"{stack['STATUS_URL']}/v1/tasks/abc", headers=user.headers)
    assert put.status_code == 405


def test_multipart_with_a_pdf_stores_it_and_completes(
    http: Any, stack: dict, user: User, bucket: Any, watcher: Any, marker: str
) -> None:
    answer = http.post(
        f"{stack['SUBMIT_URL']}/v1/strategies",
        headers=user.headers,
        files=multipart(
            {"brief": f"Bookshop {marker}", "urls": ["https://example.com/a"], "image": "false"},
            {"pdf": ("../../evil name.pdf", PDF, "application/pdf")},
        ),
    )
    assert answer.status_code == 202, answer.text
    task_id = answer.json()["task_id"]
    task = watcher.wait(task_id)
    pdf = task["request"]["pdf"]
    assert pdf["gcs_uri"].endswith(f"/uploads/{task_id}/source.pdf")
    assert pdf["size_bytes"] == len(PDF)
    assert pdf["filename"] == "evil name.pdf"
    assert task["request"]["image"] is False
    assert task["request"]["urls"] == ["https://example.com/a"]
    assert bucket.blob(f"uploads/{task_id}/source.pdf").download_as_bytes() == PDF


@pytest.mark.parametrize(
    ("files", "data", "status", "field"),
    [
        ({"pdf": ("fake.pdf", b"GIF89a not a pdf", "application/pdf")}, {"brief": "b"}, 400, "pdf"),
        ({"doc": ("a.pdf", PDF, "application/pdf")}, {"brief": "b"}, 400, "doc"),
        ({}, {"brief": "b", "image": "maybe"}, 400, "image"),
        ({}, {"brief": "b", "extra": "x"}, 400, "extra"),
        ({}, {"brief": ["a", "b"]}, 400, "brief"),
        ({"pdf": ("a.pdf", PDF, "application/pdf")}, {}, 400, "brief"),
    ],
    ids=["not-a-pdf", "unknown-file-field", "bad-bool", "unknown-field", "repeated", "no-brief"],
)
def test_bad_multipart(
    http: Any,
    stack: dict,
    user: User,
    files: dict,
    data: dict,
    status: int,
    field: str,
    tasks_collection: Any,
    topic_probe: Any,
    bucket: Any,
) -> None:
    before = _object_names(bucket)
    answer = http.post(
        f"{stack['SUBMIT_URL']}/v1/strategies", headers=user.headers, files=multipart(data, files)
    )
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["field"] == field
    _nothing_left(tasks_collection, user, topic_probe, bucket)
    assert _object_names(bucket) == before


# Issue 18: a JSON body is refused before it is read past MAX_JSON_BODY_BYTES (256 KiB);
# a 32 MiB one of short strings cost a submit instance ~770 MiB to parse.
BIG_JSON = b'{"brief": "x", "urls": [' + b'"a",' * (31 * 1024 * 1024 // 4) + b'"a"]}'


@pytest.mark.parametrize("route", ["/v1/strategies", "/v1/uploads"])
def test_a_json_body_past_its_limit_is_refused_unread(
    http: Any,
    stack: dict,
    user: User,
    route: str,
    tasks_collection: Any,
    topic_probe: Any,
    bucket: Any,
) -> None:
    answer = http.post(
        f"{stack['SUBMIT_URL']}{route}",
        content=BIG_JSON,
        headers={**user.headers, "Content-Type": "application/json"},
    )
    assert answer.status_code == 413, answer.text
    error = answer.json()["error"]
    assert error["code"] == "payload_too_large"
    assert "at most 262144 bytes" in error["message"]
    _nothing_left(tasks_collection, user, topic_probe, bucket)


def test_a_chunked_json_body_is_refused_unread(
    http: Any, stack: dict, user: User, tasks_collection: Any, topic_probe: Any, bucket: Any
) -> None:
    """Without a Content-Length nothing is read (gunicorn leaves the stream unbounded):
    the answer says what to send instead of "not valid JSON"."""

    def pieces() -> Any:
        yield b'{"brief": "x", "urls": ['
        for _ in range(300):
            yield b'"a",' * 256  # 1 KiB a piece: 300 KiB in all
        yield b'"a"]}'

    answer = http.post(
        f"{stack['SUBMIT_URL']}/v1/strategies",
        content=pieces(),
        headers={**user.headers, "Content-Type": "application/json"},
    )
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_argument" and "Content-Length" in error["message"]
    _nothing_left(tasks_collection, user, topic_probe, bucket)
