"""Answers the real Gemini API gives, through the real SDK and the stand-in that
reproduces them (issue 15, defects 10–16; ../shared/GEMINI_WIRE.md, "Answers the real
API gives that a stand-in must reproduce"): 499 under load, HTML 5xx pages, a 404 that
is not about the model, continuation tokens, tool-use tokens, a routed model, chunk
answers without X-Goog-Upload-Status, and a call that outlasts its time.
"""

from __future__ import annotations

import io
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import types

from dev.gemini_standin import URL_CONTEXT_TOKENS_PER_URL, StandinServer
from shared import clients, gemini
from shared.models import MarketingStrategy, TaskRequest
from shared.settings import Settings, get_settings
from tests.standin_helpers import running_standin
from tests.unit.test_gemini_backend import clean, requests_of, standin_settings, use

__all__ = ["clean"]  # the autouse fixture: no setting or client leaks between tests


@pytest.fixture(scope="module")
def standin() -> Iterator[StandinServer]:
    with running_standin() as server:
        yield server


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, standin: StandinServer) -> Settings:
    return standin_settings(monkeypatch, standin, GEMINI_STRATEGY_MAX_ATTEMPTS="2")


def fault(standin: StandinServer, **rule: Any) -> None:
    httpx.post(f"{standin.url}/_standin/faults", json=rule).raise_for_status()


def brief(marker: str, **fields: Any) -> TaskRequest:
    return TaskRequest(brief=f"A bakery in Lyon {marker}", **fields)


def test_499_cancelled_is_retried_like_503(settings: Settings, standin: StandinServer) -> None:
    marker = uuid.uuid4().hex
    fault(standin, match=marker, endpoint="streamGenerateContent", status=499, times=1)
    answer = gemini.generate_strategy(brief(marker))
    assert answer.strategy.strategy_name
    assert [r["status"] for r in requests_of(standin, marker)] == [499, 200]


def test_499_that_lasts_fails_the_attempt_retryably(
    settings: Settings, standin: StandinServer
) -> None:
    marker = uuid.uuid4().hex
    fault(standin, match=marker, endpoint="streamGenerateContent", status=499)
    with pytest.raises(gemini.GeminiError) as failed:
        gemini.generate_strategy(brief(marker))
    assert (failed.value.code, failed.value.retryable) == ("gemini_cancelled", True)


def test_an_html_error_page_gets_a_code_from_the_status(
    settings: Settings, standin: StandinServer
) -> None:
    marker = uuid.uuid4().hex
    fault(standin, match=marker, endpoint="streamGenerateContent", status=503, html=True)
    with pytest.raises(gemini.GeminiError) as failed:
        gemini.generate_strategy(brief(marker))
    assert (failed.value.code, failed.value.retryable) == ("gemini_unavailable", True)
    assert " " not in failed.value.code
    # The SDK read the page's reason phrase as the status: what the code must not use.
    cause = failed.value.__cause__
    assert cause is not None and getattr(cause, "status", None) == "Service Unavailable"


def test_only_a_404_that_names_the_model_is_a_wrong_model(
    settings: Settings, standin: StandinServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = uuid.uuid4().hex
    fault(
        standin,
        match=marker,
        endpoint="streamGenerateContent",
        status=404,
        message="Requested entity was not found.",
    )
    with pytest.raises(gemini.GeminiError) as other:
        gemini.generate_strategy(brief(marker))
    assert (other.value.code, other.value.retryable) == ("gemini_not_found", False)

    use(monkeypatch, GEMINI_TEXT_MODEL="gemini-2.5-flash")  # withdrawn in late 2026
    with pytest.raises(gemini.GeminiError) as wrong:
        gemini.generate_strategy(brief(uuid.uuid4().hex))
    assert wrong.value.code == "gemini_model_not_found"
    assert "GEMINI_TEXT_MODEL" in wrong.value.message


def test_a_continuation_is_never_resent_silently(
    settings: Settings, standin: StandinServer
) -> None:
    marker = uuid.uuid4().hex
    fault(standin, match=marker, endpoint="streamGenerateContent", finish_reason="CONTINUATION")
    with pytest.raises(gemini.GeminiError) as failed:
        gemini.generate_strategy(brief(marker))
    assert (failed.value.code, failed.value.retryable) == ("answer_truncated", False)
    # One request: the SDK's automatic continuation (a second request with a fresh
    # deadline that no budget counts) is off.
    assert len(requests_of(standin, marker)) == 1


def test_the_stand_in_offers_a_continuation_token_as_the_api_does(
    standin: StandinServer,
) -> None:
    httpx.post(f"{standin.url}/_standin/reset").raise_for_status()
    marker = uuid.uuid4().hex
    fault(standin, match=marker, endpoint="generateContent", finish_reason="CONTINUATION", times=1)
    client = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=standin.url))
    answer = client.models.generate_content(
        model="gemini-3.8-flash",
        contents=f"Say hello {marker}",
        config=types.GenerateContentConfig(automatic_continuation=False),
    )
    candidate = (answer.candidates or [None])[0]
    assert candidate is not None and candidate.finish_reason == types.FinishReason.CONTINUATION
    assert candidate.continuation_token


def test_tool_use_tokens_are_billed_as_input(settings: Settings, standin: StandinServer) -> None:
    marker = uuid.uuid4().hex
    answer = gemini.generate_strategy(brief(marker, urls=["https://bakery.example/menu"]))
    # The page url_context read is billed as input (toolUsePromptTokenCount).
    assert answer.usage.prompt_tokens >= URL_CONTEXT_TOKENS_PER_URL
    assert answer.usage.prompt_tokens + answer.usage.output_tokens == answer.usage.total_tokens


def test_a_deprecated_model_is_answered_by_its_successor(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, GEMINI_TEXT_MODEL="gemini-3.7-flash")
    answer = gemini.generate_strategy(brief(uuid.uuid4().hex))
    assert answer.model.startswith("gemini-3.8-flash")  # what the task records


def test_a_chunk_answer_without_upload_status_is_posted_again(standin: StandinServer) -> None:
    httpx.post(f"{standin.url}/_standin/reset").raise_for_status()
    marker = uuid.uuid4().hex
    fault(standin, match=marker, endpoint="upload", status=503, no_upload_status=True, times=1)
    client = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=standin.url))
    started = time.monotonic()
    uploaded = client.files.upload(
        file=io.BytesIO(b"%PDF-1.4\n%%EOF\n"),
        config=types.UploadFileConfig(mime_type="application/pdf", display_name=marker),
    )
    assert uploaded.name
    # The SDK slept 1 s and posted the chunk again: time an attempt's budget must hold.
    assert time.monotonic() - started >= 1.0
    # The start, the chunk answered without the header, the same chunk again.
    assert [r["status"] for r in requests_of(standin, marker)] == [200, 503, 200]


def test_a_call_past_its_limit_ends_the_attempt_not_later(settings: Settings) -> None:
    """httpx bounds each read, not a whole stream: our own timer bounds the call."""
    ended = threading.Event()
    release = threading.Event()
    started = time.monotonic()
    with pytest.raises(gemini.GeminiError) as failed:
        gemini.within(lambda: release.wait(30), time.monotonic() + 0.3, ended)
    assert time.monotonic() - started < 5
    assert (failed.value.code, failed.value.retryable) == ("gemini_deadline_exceeded", True)
    assert ended.is_set()
    release.set()
    assert gemini.within(lambda: 42, time.monotonic() + 5) == 42
    with pytest.raises(ZeroDivisionError):
        gemini.within(lambda: 1 / 0, time.monotonic() + 5)


def test_sdk_retries_include_499(settings: Settings) -> None:
    options = clients.gemini_http_options(timeout_s=1, attempts=2)
    assert options.retry_options is not None
    assert 499 in (options.retry_options.http_status_codes or [])


def test_the_strategy_and_image_calls_turn_automatic_continuation_off(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[types.GenerateContentConfig] = []
    real = clients.gemini()

    class Recording:
        def __getattr__(self, name: str) -> Any:
            return getattr(real.models, name)

        def generate_content_stream(self, **kwargs: Any) -> Any:
            seen.append(kwargs["config"])
            return real.models.generate_content_stream(**kwargs)

        def generate_content(self, **kwargs: Any) -> Any:
            seen.append(kwargs["config"])
            return real.models.generate_content(**kwargs)

    class Client:
        models = Recording()

    monkeypatch.setattr(clients, "gemini", lambda: Client())
    answer = gemini.generate_strategy(brief(uuid.uuid4().hex))
    gemini.generate_image(MarketingStrategy.model_validate(answer.strategy.model_dump()))
    assert [config.automatic_continuation for config in seen] == [False, False]
    assert get_settings().gemini_text_model
