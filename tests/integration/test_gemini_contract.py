"""Real Gemini on first contact (issue 8), end to end through the stack.

The worker talks to the strict stand-in through the real SDK: only served model ids,
thinking tokens, JPEG images after thought parts, search redirect links and a search
entry point, the SDK's X-Server-Timeout deadline, and every way an answer can be
unusable. The stand-in's request log is the evidence of what the worker sent.
"""

from __future__ import annotations

import io
import math
import os
from typing import Any

import pytest
from PIL import Image

from dev.gemini_standin import SEARCH_TOKENS, URL_CONTEXT_TOKENS_PER_URL
from shared import clients, uploads
from shared.settings import Settings
from tests.integration.conftest import Api, StandIn, TaskWatcher, User
from tests.integration.test_sources import submit_with_pdf

pytestmark = pytest.mark.integration

STRATEGY_CALL = "streamGenerateContent"
SMALL_PDF = b"%PDF-1.4\n% Tinkerbell contract test\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
REDIRECT_PREFIX = "https://vertexaisearch.cloud.google.com/grounding-api-redirect/"


def settings() -> Settings:
    return Settings()  # the test stack's environment, as the functions read it


def submit_full(http: Any, stack: dict, user: User, marker: str) -> str:
    fields = {
        "brief": f"Bicycle repair shop in Iasi {marker}",
        "language": "ro",
        "grounding": "true",
        "image": "true",
        "urls": "https://example.com/",
    }
    return submit_with_pdf(http, stack, user, SMALL_PDF + os.urandom(16), **fields)


def stored(gcs_uri: str) -> bytes:
    bucket, name = uploads.split_gcs_uri(gcs_uri)
    data: bytes = clients.storage().bucket(bucket).blob(name).download_as_bytes()
    return data


def test_shipped_defaults_complete_a_task_with_pdf_url_grounding_and_image(
    api: Api,
    user: User,
    watcher: TaskWatcher,
    standin: StandIn,
    http: Any,
    stack: dict,
    marker: str,
) -> None:
    config = settings()
    task_id = submit_full(http, stack, user, marker)
    task = watcher.wait(task_id)
    assert task["status"] == "COMPLETED", task.get("error")
    result = task["result"]

    # The served defaults went to Gemini, each call with its own deadline.
    (strategy_call,) = standin.requests(marker, endpoint=STRATEGY_CALL)
    assert strategy_call["model"] == config.gemini_text_model == "gemini-3.8-flash"
    assert strategy_call["has_file_part"]
    assert strategy_call["deadline_s"] == math.ceil(config.gemini_strategy_timeout_s)
    (image_call,) = standin.requests(result["strategy"]["strategy_name"], endpoint="image")
    assert image_call["model"] == config.gemini_image_model == "gemini-nano-banana-2.1"
    assert image_call["deadline_s"] == math.ceil(config.gemini_image_timeout_s)
    # Each File API upload request carries the upload deadline, not the client's.
    upload_calls = standin.requests(task_id, endpoint="upload")
    assert upload_calls
    assert {c["deadline_s"] for c in upload_calls} == {math.ceil(config.gemini_upload_timeout_s)}

    # Usage adds up, thinking included (both calls think).
    usage = result["usage"]
    assert usage["thoughts_tokens"] > 0
    assert usage["output_tokens"] > usage["thoughts_tokens"]
    assert usage["prompt_tokens"] + usage["output_tokens"] == usage["total_tokens"]
    # url_context and search ran: what they read (toolUsePromptTokenCount) is billed as
    # input, so it is in the task's prompt tokens.
    assert usage["prompt_tokens"] >= URL_CONTEXT_TOKENS_PER_URL + SEARCH_TOKENS

    # The preview is the final JPEG (not the thought sketch), sized and typed as it is.
    image = result["image"]
    assert image["mime_type"] == "image/jpeg"
    assert image["gcs_uri"].endswith(f"/results/{task_id}/preview.jpg")
    data = stored(image["gcs_uri"])
    decoded = Image.open(io.BytesIO(data))
    assert decoded.format == "JPEG"
    assert decoded.size == (image["width"], image["height"])
    assert image["width"] * 9 == pytest.approx(image["height"] * 16, rel=0.05)  # 16:9
    served = http.get(f"{stack['STATUS_URL']}/v1/tasks/{task_id}/image", headers=user.headers)
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/jpeg"
    assert served.content == data
    # An image and nothing else (issue 18): not sniffed, not run as a document.
    assert served.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in served.headers["content-security-policy"]

    # Sources: the URL as read, search results as redirect links with their domain.
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for source in result["sources"]:
        by_kind.setdefault(source["kind"], []).append(source)
    assert [s["url"] for s in by_kind["url_context"]] == ["https://example.com/"]
    assert by_kind["search"]
    for source in by_kind["search"]:
        assert source["url"].startswith(REDIRECT_PREFIX)
        assert source["domain"] and "/" not in source["domain"]
        assert source["status"] == "cited"
    assert result["search_entry_point"] and "<" in result["search_entry_point"]


def test_png_from_the_image_model_is_stored_and_served_as_png(
    api: Api,
    user: User,
    watcher: TaskWatcher,
    restore_standin: StandIn,
    http: Any,
    stack: dict,
    marker: str,
) -> None:
    restore_standin.config(image_format="png")
    task_id = api.submit_ok(user, brief=f"Pottery studio {marker}")
    image = watcher.wait(task_id)["result"]["image"]

    assert image["mime_type"] == "image/png"
    assert image["gcs_uri"].endswith(f"/results/{task_id}/preview.png")
    decoded = Image.open(io.BytesIO(stored(image["gcs_uri"])))
    assert (decoded.format, decoded.size) == ("PNG", (image["width"], image["height"]))
    served = http.get(f"{stack['STATUS_URL']}/v1/tasks/{task_id}/image", headers=user.headers)
    assert served.headers["content-type"] == "image/png"


def test_a_retired_model_fails_the_task_once_naming_the_setting(
    api: Api, user: User, watcher: TaskWatcher, restore_standin: StandIn, marker: str
) -> None:
    model = settings().gemini_text_model
    restore_standin.config(withdrawn_models=[model])
    task = watcher.wait(api.submit_ok(user, brief=f"Tea room {marker}"))

    assert task["status"] == "FAILED"
    error = task["error"]
    assert error["code"] == "gemini_model_not_found"
    assert error["retryable"] is False
    assert model in error["message"] and "GEMINI_TEXT_MODEL" in error["message"]
    assert task["attempts"] == 1
    calls = restore_standin.requests(marker, endpoint=STRATEGY_CALL)
    assert [c["status"] for c in calls] == [404]


@pytest.mark.parametrize(
    ("shaping", "code"),
    [
        ({"finish_reason": "SAFETY"}, "content_blocked"),
        ({"finish_reason": "PROHIBITED_CONTENT"}, "content_blocked"),
        ({"finish_reason": "RECITATION"}, "content_blocked"),
        ({"block_reason": "BLOCKLIST"}, "content_blocked"),
        ({"finish_reason": "MAX_TOKENS"}, "answer_truncated"),
    ],
    ids=["safety", "prohibited", "recitation", "prompt-blocklist", "max-tokens"],
)
def test_a_blocked_or_truncated_answer_fails_at_once(
    api: Api,
    user: User,
    watcher: TaskWatcher,
    standin: StandIn,
    marker: str,
    shaping: dict[str, str],
    code: str,
) -> None:
    standin.fault(marker, endpoint=STRATEGY_CALL, times=None, **shaping)
    task = watcher.wait(api.submit_ok(user, brief=f"Bakery {marker}"))

    assert task["status"] == "FAILED"
    assert task["error"]["code"] == code
    assert task["error"]["retryable"] is False
    assert "Traceback" not in task["error"]["message"]
    assert task["result"] is None
    assert len(standin.requests(marker, endpoint=STRATEGY_CALL)) == 1  # paid once, no retry


@pytest.mark.parametrize("shaping", [{"bad_json": True}, {"schema_invalid": True}])
def test_an_unusable_answer_is_asked_again_once_then_fails(
    api: Api,
    user: User,
    watcher: TaskWatcher,
    standin: StandIn,
    marker: str,
    shaping: dict[str, bool],
) -> None:
    standin.fault(marker, endpoint=STRATEGY_CALL, times=None, **shaping)
    task = watcher.wait(api.submit_ok(user, brief=f"Cobbler {marker}"))

    assert task["status"] == "FAILED"
    assert task["error"]["code"] == "gemini_schema_mismatch"
    assert task["error"]["retryable"] is False
    assert task["attempts"] == 2
    assert len(standin.requests(marker, endpoint=STRATEGY_CALL)) == 2


def test_an_unusable_answer_once_is_ridden_out(
    api: Api, user: User, watcher: TaskWatcher, standin: StandIn, marker: str
) -> None:
    standin.fault(marker, endpoint=STRATEGY_CALL, times=1, schema_invalid=True)
    task = watcher.wait(api.submit_ok(user, brief=f"Upholsterer {marker}", image=False))

    assert task["status"] == "COMPLETED"
    assert task["attempts"] == 2
    assert len(standin.requests(marker, endpoint=STRATEGY_CALL)) == 2


def test_a_call_past_its_deadline_gets_504_and_the_retry_finishes(
    api: Api, user: User, watcher: TaskWatcher, standin: StandIn, marker: str
) -> None:
    config = settings()
    assert config.gemini_strategy_max_attempts >= 2, "the test stack retries within an attempt"
    # Longer than the strategy deadline: the stand-in answers 504 at the deadline.
    standin.fault(
        marker, endpoint=STRATEGY_CALL, times=1, latency_s=config.gemini_strategy_timeout_s + 3
    )
    task = watcher.wait(api.submit_ok(user, brief=f"Clockmaker {marker}", image=False))

    assert task["status"] == "COMPLETED"
    calls = standin.requests(marker, endpoint=STRATEGY_CALL)
    assert [c["status"] for c in calls] == [504, 200]
    first = calls[0]
    assert first["deadline_s"] == math.ceil(config.gemini_strategy_timeout_s)
    # Answered at the deadline, not after the injected latency.
    assert first["ended_at"] - first["started_at"] < config.gemini_strategy_timeout_s + 2


def test_a_test_not_alone_may_not_reach_the_whole_standin(standin: StandIn) -> None:
    """The guard behind the exclusive marker (tests/conftest.py): harmless calls here,
    refused before they reach the stand-in, since this test shares the stack."""
    reaches = (
        standin.config,
        lambda: standin.fault("", latency_s=1, times=0),
        lambda: standin.requests(""),
    )
    for reach in reaches:
        with pytest.raises(AssertionError, match="mark the test exclusive"):
            reach()
