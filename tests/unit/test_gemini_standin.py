"""The Gemini stand-in, driven by the real, unmodified google-genai SDK.

The stand-in runs in-process on a free port; every test starts from a reset state.
"""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import errors, types
from PIL import Image
from pydantic import BaseModel, Field

from dev.gemini_standin import MARKER, StandinServer
from dev.gemini_standin.config import Config
from tests.standin_helpers import running_standin

MODEL = "gemini-3.8-flash"
IMAGE_MODEL = "gemini-nano-banana-2.1"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REDIRECT_PREFIX = "https://vertexaisearch.cloud.google.com/grounding-api-redirect/"
PDF_BYTES = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


class Step(BaseModel):
    step_number: int = Field(ge=1)
    description: str


class Channel(BaseModel):
    name: str
    budget_share: float = Field(ge=0, le=1)


class Plan(BaseModel):
    strategy_name: str
    required_budget: float = Field(ge=0)
    steps: list[Step] = Field(min_length=1)
    channels: list[Channel]
    notes: str | None = None


JSON_CONFIG = types.GenerateContentConfig(
    response_schema=Plan, response_mime_type="application/json"
)


@pytest.fixture(scope="module")
def standin() -> Iterator[StandinServer]:
    with running_standin() as server:
        yield server


@pytest.fixture(autouse=True)
def _reset(fresh_standin: None) -> None:
    """Every test starts from the stand-in's initial state (tests/unit/conftest.py)."""


def make_client(url: str, retry: types.HttpRetryOptions | None = None) -> genai.Client:
    options = types.HttpOptions(
        base_url=url, api_version="v1beta", timeout=10_000, retry_options=retry
    )
    return genai.Client(api_key="test-key", http_options=options)


@pytest.fixture(scope="module")
def client(standin: StandinServer) -> genai.Client:
    return make_client(standin.url)  # the module keeps the reference: the SDK needs it alive


@pytest.fixture(scope="module")
def retrying_client(standin: StandinServer) -> genai.Client:
    retry = types.HttpRetryOptions(attempts=3, initial_delay=0.01, max_delay=0.02)
    return make_client(standin.url, retry)


def unique(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}"


def logged(control: httpx.Client, contains: str, **params: str) -> list[dict[str, Any]]:
    response = control.get("/_standin/requests", params={"contains": contains, **params})
    response.raise_for_status()
    return response.json()["requests"]


def add_fault(control: httpx.Client, **rule: Any) -> str:
    response = control.post("/_standin/faults", json=rule)
    response.raise_for_status()
    return response.json()["id"]


def first_candidate(response: types.GenerateContentResponse) -> types.Candidate:
    assert response.candidates, "the stand-in always answers with one candidate"
    return response.candidates[0]


def parts_of(response: types.GenerateContentResponse) -> list[types.Part]:
    content = first_candidate(response).content
    assert content is not None and content.parts is not None
    return content.parts


def with_text(part: types.Part, text: str) -> list[types.PartUnionDict]:
    """A file part followed by a text part (what the SDK makes of ``[part, "text"]``)."""
    return [part, types.Part.from_text(text=text)]


def wait_for_state(client: genai.Client, name: str, timeout: float = 3.0) -> types.File:
    deadline = time.monotonic() + timeout
    while True:
        file = client.files.get(name=name)
        if file.state != types.FileState.PROCESSING or time.monotonic() > deadline:
            return file
        time.sleep(0.05)


# -- structured output -------------------------------------------------------------------------


def test_response_schema_gives_a_valid_marked_instance(client: genai.Client) -> None:
    response = client.models.generate_content(
        model=MODEL, contents="Write a strategy for a bakery.", config=JSON_CONFIG
    )
    plan = response.parsed
    assert isinstance(plan, Plan)  # pydantic checked ge/le bounds and min_length
    assert MARKER in (response.text or "")
    assert plan.strategy_name.startswith(MARKER)
    assert plan.notes is not None  # optional fields are filled too
    assert all(0 <= channel.budget_share <= 1 for channel in plan.channels)
    assert all(step.step_number >= 1 for step in plan.steps)
    assert 2 <= len(plan.steps) <= 3
    usage = response.usage_metadata
    assert usage is not None and usage.prompt_token_count and usage.candidates_token_count
    assert usage.thoughts_token_count and usage.thoughts_token_count > 0  # a thinking model
    assert usage.total_token_count == (
        usage.prompt_token_count + usage.candidates_token_count + usage.thoughts_token_count
    )
    assert first_candidate(response).finish_reason == types.FinishReason.STOP


def test_same_request_same_answer_and_other_request_other_answer(client: genai.Client) -> None:
    first = client.models.generate_content(model=MODEL, contents="same brief", config=JSON_CONFIG)
    second = client.models.generate_content(model=MODEL, contents="same brief", config=JSON_CONFIG)
    other = client.models.generate_content(model=MODEL, contents="other brief", config=JSON_CONFIG)
    assert first.text == second.text
    assert other.text != first.text


def test_language_tag_marks_strings(client: genai.Client) -> None:
    response = client.models.generate_content(
        model=MODEL, contents="Brief: sell bread.\nlanguage: ro", config=JSON_CONFIG
    )
    assert isinstance(response.parsed, Plan)
    assert response.parsed.strategy_name.startswith("[stand-in sample, ro]")


def test_response_json_schema_with_refs(client: genai.Client) -> None:
    config = types.GenerateContentConfig(
        response_json_schema=Plan.model_json_schema(), response_mime_type="application/json"
    )
    response = client.models.generate_content(model=MODEL, contents="json schema", config=config)
    assert isinstance(response.parsed, dict)
    plan = Plan.model_validate(response.parsed)
    assert plan.notes is not None and plan.notes.startswith(MARKER)


def test_plain_text_without_schema(client: genai.Client, control: httpx.Client) -> None:
    marker = unique("plain")
    response = client.models.generate_content(model=MODEL, contents=f"say hi {marker}")
    assert (response.text or "").startswith(MARKER)
    [entry] = logged(control, marker)
    assert entry["endpoint"] == "generateContent"
    assert entry["model"] == MODEL
    assert entry["response_schema"] is False
    assert entry["status"] == 200


def test_stream_concatenates_to_valid_json(client: genai.Client) -> None:
    chunks = list(
        client.models.generate_content_stream(
            model=MODEL, contents="stream a strategy", config=JSON_CONFIG
        )
    )
    assert 2 <= len(chunks) <= 4
    plan = Plan.model_validate_json("".join(chunk.text or "" for chunk in chunks))
    assert plan.strategy_name.startswith(MARKER)
    assert first_candidate(chunks[-1]).finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata is not None
    assert all(first_candidate(chunk).finish_reason is None for chunk in chunks[:-1])


def test_a_stream_its_client_closes_ends_then_not_at_its_next_event(
    client: genai.Client, control: httpx.Client
) -> None:
    """A cancelled task's worker shuts its socket mid-stream: the log must show the call
    ended then (what the in-flight tests count), not when the next event was due."""
    control.post("/_standin/config", json={"stream_pause_s": 5, "stream_pieces": 3})
    marker = f"closed-{uuid.uuid4().hex}"
    stream = client.models.generate_content_stream(
        model=MODEL, contents=f"stream a strategy {marker}", config=JSON_CONFIG
    )
    next(iter(stream))  # the first event is in: the stream is open, the next one 5 s away
    (entry,) = logged(control, marker)
    assert entry["ended_at"] is None
    closed_at = time.time()
    stream.close()  # closes the response, and the connection with it
    deadline = time.monotonic() + 3
    while (entry := logged(control, marker)[0])["ended_at"] is None:
        assert time.monotonic() < deadline, "the stand-in did not notice the close"
        time.sleep(0.02)
    assert entry["ended_at"] - closed_at < 1.0


# -- files -------------------------------------------------------------------------------------


def test_file_lifecycle(client: genai.Client, control: httpx.Client, tmp_path: Path) -> None:
    pdf_path = tmp_path / "brief.pdf"
    pdf_path.write_bytes(PDF_BYTES)
    from_path = client.files.upload(
        file=pdf_path, config=types.UploadFileConfig(mime_type="application/pdf")
    )
    uploaded = client.files.upload(
        file=io.BytesIO(PDF_BYTES),
        config=types.UploadFileConfig(mime_type="application/pdf", display_name="brief.pdf"),
    )
    assert uploaded.state == types.FileState.PROCESSING
    assert uploaded.size_bytes == len(PDF_BYTES)
    assert uploaded.display_name == "brief.pdf"
    assert wait_for_state(client, from_path.name or "").state == types.FileState.ACTIVE
    active = wait_for_state(client, uploaded.name or "")
    assert active.state == types.FileState.ACTIVE
    assert uploaded.name in {f.name for f in client.files.list()}

    marker = unique("with-file")
    part = types.Part.from_uri(file_uri=active.uri or "", mime_type="application/pdf")
    response = client.models.generate_content(model=MODEL, contents=with_text(part, marker))
    assert (response.text or "").startswith(MARKER)
    [entry] = logged(control, marker)
    assert entry["has_file_part"] is True
    assert entry["file_uris"] == [active.uri]

    client.files.delete(name=uploaded.name or "")
    with pytest.raises(errors.ClientError) as gone:
        client.files.get(name=uploaded.name or "")
    assert gone.value.code == 403
    with pytest.raises(errors.ClientError) as stale:
        client.models.generate_content(model=MODEL, contents=with_text(part, "deleted file"))
    assert stale.value.code == 400


def test_pdf_mime_type_without_pdf_bytes_fails(client: genai.Client) -> None:
    uploaded = client.files.upload(
        file=io.BytesIO(b"PK\x03\x04 not a pdf"),
        config=types.UploadFileConfig(mime_type="application/pdf"),
    )
    assert wait_for_state(client, uploaded.name or "").state == types.FileState.FAILED
    part = types.Part.from_uri(file_uri=uploaded.uri or "", mime_type="application/pdf")
    with pytest.raises(errors.ClientError) as failed:
        client.models.generate_content(model=MODEL, contents=with_text(part, "use it"))
    assert failed.value.code == 400


# -- tools and images --------------------------------------------------------------------------


def test_url_context_metadata(client: genai.Client) -> None:
    config = types.GenerateContentConfig(tools=[types.Tool(url_context=types.UrlContext())])
    prompt = "Read https://shop.example/about and http://unreachable.example/x, then answer."
    response = client.models.generate_content(model=MODEL, contents=prompt, config=config)
    metadata = first_candidate(response).url_context_metadata
    assert metadata is not None and metadata.url_metadata is not None
    statuses = {m.retrieved_url: m.url_retrieval_status for m in metadata.url_metadata}
    assert statuses == {
        "https://shop.example/about": types.UrlRetrievalStatus.URL_RETRIEVAL_STATUS_SUCCESS,
        "http://unreachable.example/x": types.UrlRetrievalStatus.URL_RETRIEVAL_STATUS_ERROR,
    }


def test_google_search_grounding(client: genai.Client, control: httpx.Client) -> None:
    marker = unique("grounded")
    config = types.GenerateContentConfig(tools=[types.Tool(google_search=types.GoogleSearch())])
    response = client.models.generate_content(model=MODEL, contents=marker, config=config)
    grounding = first_candidate(response).grounding_metadata
    assert grounding is not None and grounding.grounding_chunks
    assert grounding.web_search_queries and marker in grounding.web_search_queries[0]
    for chunk in grounding.grounding_chunks:
        assert chunk.web is not None
        # Redirect links, not the pages' own URLs; the title is the site's domain.
        assert (chunk.web.uri or "").startswith(REDIRECT_PREFIX)
        assert len((chunk.web.uri or "").removeprefix(REDIRECT_PREFIX)) >= 40
        assert (chunk.web.title or "").endswith("standin-sample.example")
    entry_point = grounding.search_entry_point
    assert entry_point is not None and entry_point.rendered_content
    assert "<style>" in entry_point.rendered_content and MARKER in entry_point.rendered_content
    assert grounding.grounding_supports and grounding.grounding_supports[0].segment
    assert logged(control, marker)[0]["tools"] == ["google_search"]


def test_image_output_is_a_real_jpeg_after_thought_parts(
    client: genai.Client, control: httpx.Client
) -> None:
    marker = unique("image")
    config = types.GenerateContentConfig(response_modalities=["TEXT", "IMAGE"])
    response = client.models.generate_content(model=IMAGE_MODEL, contents=marker, config=config)
    parts = parts_of(response)
    thoughts = [p for p in parts if p.thought]
    answers = [p for p in parts if not p.thought]
    assert parts[: len(thoughts)] == thoughts  # the thinking comes first
    assert any(p.text for p in thoughts) and any(p.inline_data for p in thoughts)
    images = [p.inline_data for p in answers if p.inline_data is not None]
    assert len(images) == 1 and images[0].mime_type == "image/jpeg"
    jpeg = images[0].data or b""
    assert jpeg.startswith(b"\xff\xd8") and jpeg.endswith(b"\xff\xd9")
    with Image.open(io.BytesIO(jpeg)) as decoded:
        decoded.load()
        assert (decoded.format, decoded.size, decoded.mode) == ("JPEG", (64, 64), "RGB")
    assert any(MARKER in (p.text or "") for p in answers)
    assert response.text is not None and "Sketching" not in response.text  # thoughts skipped
    usage = response.usage_metadata
    assert usage is not None and usage.thoughts_token_count  # image models think too
    assert logged(control, marker)[0]["endpoint"] == "image"


def test_png_images_on_request(client: genai.Client, control: httpx.Client) -> None:
    control.post("/_standin/config", json={"image_format": "png"}).raise_for_status()
    config = types.GenerateContentConfig(response_modalities=["TEXT", "IMAGE"])
    response = client.models.generate_content(model=IMAGE_MODEL, contents="png", config=config)
    [image] = [p.inline_data for p in parts_of(response) if p.inline_data and not p.thought]
    assert image.mime_type == "image/png" and (image.data or b"").startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(image.data or b"")) as decoded:
        assert (decoded.format, decoded.size) == ("PNG", (64, 64))


# -- fault injection ---------------------------------------------------------------------------


def test_429_twice_then_success_with_sdk_retries(
    retrying_client: genai.Client, control: httpx.Client
) -> None:
    marker = unique("retry")
    add_fault(control, match=marker, endpoint="generateContent", status=429, times=2)
    response = retrying_client.models.generate_content(model=MODEL, contents=marker)
    assert (response.text or "").startswith(MARKER)
    assert [e["status"] for e in logged(control, marker)] == [429, 429, 200]


def test_400_is_not_retried(retrying_client: genai.Client, control: httpx.Client) -> None:
    marker = unique("bad")
    add_fault(control, match=marker, status=400, message="stand-in says no")
    with pytest.raises(errors.ClientError) as raised:
        retrying_client.models.generate_content(model=MODEL, contents=marker)
    assert raised.value.code == 400
    assert raised.value.status == "INVALID_ARGUMENT"
    assert len(logged(control, marker)) == 1
    faults = control.get("/_standin/faults").json()["faults"]
    assert faults[0]["applied"] == 1 and faults[0]["times"] is None


def test_fault_endpoint_kinds_are_distinct(client: genai.Client, control: httpx.Client) -> None:
    marker = unique("kind")
    add_fault(control, match=marker, endpoint="image", status=503)
    assert client.models.generate_content(model=MODEL, contents=marker).text
    config = types.GenerateContentConfig(response_modalities=["TEXT", "IMAGE"])
    with pytest.raises(errors.ServerError) as raised:
        client.models.generate_content(model=IMAGE_MODEL, contents=marker, config=config)
    assert raised.value.code == 503


def test_answer_shaping(client: genai.Client, control: httpx.Client) -> None:
    marker = unique("blocked")
    add_fault(control, match=marker, finish_reason="SAFETY", times=1)
    response = client.models.generate_content(model=MODEL, contents=marker)
    assert first_candidate(response).finish_reason == types.FinishReason.SAFETY
    assert response.text is None

    add_fault(control, match=marker, bad_json=True, times=1)
    broken = client.models.generate_content(model=MODEL, contents=marker, config=JSON_CONFIG)
    assert broken.text and broken.parsed is None  # what a schema-breaking model looks like


def test_hang_drops_the_connection(standin: StandinServer, control: httpx.Client) -> None:
    add_fault(control, match="hang-me", hang_s=0.05, times=1)
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(
            f"{standin.url}/v1beta/models/{MODEL}:generateContent",
            headers={"x-goog-api-key": "k"},
            json={"contents": [{"parts": [{"text": "hang-me"}]}]},
        )


def test_parallel_requests_overlap(client: genai.Client, control: httpx.Client) -> None:
    marker = unique("parallel")
    # Each request waits (up to 10 s) until all 8 are in: overlap however late one
    # arrives on a busy machine (a fixed 0.3 s latency let one miss the others in CI).
    add_fault(control, match=marker, gather=8, latency_s=10)
    barrier = threading.Barrier(8)

    def call(index: int) -> str:
        barrier.wait()
        response = client.models.generate_content(model=MODEL, contents=f"{marker} #{index}")
        return response.text or ""

    with ThreadPoolExecutor(max_workers=8) as pool:
        texts = list(pool.map(call, range(8)))
    assert all(text.startswith(MARKER) for text in texts)
    overlap = control.get("/_standin/requests/max_concurrency", params={"contains": marker})
    assert overlap.json() == {"max_concurrency": 8, "count": 8}


def test_global_latency_config(control: httpx.Client) -> None:
    config = control.post("/_standin/config", json={"latency_s": 0.01}).json()
    assert config["latency_s"] == 0.01 and config["file_processing_s"] == 0.2
    assert control.post("/_standin/config", json={"latency_s": -1}).status_code == 400
    control.post("/_standin/reset").raise_for_status()
    assert control.get("/_standin/config").json()["latency_s"] == 0.0


def test_latency_jitter_is_drawn_for_each_call_within_its_band(control: httpx.Client) -> None:
    config = control.post(
        "/_standin/config", json={"latency_s": 0.02, "latency_jitter_s": 0.01}
    ).json()
    assert (config["latency_s"], config["latency_jitter_s"]) == (0.02, 0.01)
    # A jitter wider than the latency would draw negative latencies.
    wide = control.post("/_standin/config", json={"latency_s": 1, "latency_jitter_s": 2})
    assert wide.status_code == 400 and "latency_jitter_s" in wide.text
    model = Config(latency_s=15.0, latency_jitter_s=5.0)
    draws = [model.call_latency() for _ in range(2000)]
    assert 10.0 <= min(draws) < 11.0 and 19.0 < max(draws) <= 20.0
    assert Config(latency_s=3.0).call_latency() == 3.0


# -- plumbing ----------------------------------------------------------------------------------


def test_missing_api_key_is_403(standin: StandinServer, control: httpx.Client) -> None:
    response = httpx.post(
        f"{standin.url}/v1beta/models/{MODEL}:generateContent",
        json={"contents": [{"parts": [{"text": "no key"}]}]},
    )
    assert response.status_code == 403
    assert response.json()["error"]["status"] == "PERMISSION_DENIED"
    [entry] = logged(control, "generateContent")
    assert (entry["status"], entry["endpoint"]) == (403, "generateContent")


def test_health_and_control_validation(control: httpx.Client) -> None:
    health = control.get("/_standin/health").json()
    assert health["ok"] is True
    assert health["pid"] > 0 and health["started_at"] > 0
    assert control.post("/_standin/faults", json={"endpoint": "nope", "status": 500}).is_error
    assert control.post("/_standin/faults", json={"match": "x"}).status_code == 400
    assert control.post("/_standin/faults", json={"latency": 1}).status_code == 400
    assert control.delete("/_standin/faults").json() == {"cleared": 0}


def test_v1_prefix_and_unknown_route(standin: StandinServer) -> None:
    headers = {"x-goog-api-key": "k"}
    body = {"contents": [{"role": "user", "parts": [{"text": "v1 works"}]}]}
    url = f"{standin.url}/v1/models/{MODEL}:generateContent"
    answer = httpx.post(url, headers=headers, json=body).json()
    assert answer["modelVersion"] == f"{MODEL}-standin"
    assert answer["candidates"][0]["content"]["parts"][0]["text"].startswith(MARKER)
    missing = httpx.get(f"{standin.url}/v1beta/nothing/here", headers=headers)
    assert missing.status_code == 404
    assert json.loads(missing.text)["error"]["status"] == "NOT_FOUND"
    # A known path with a method it does not take (and a model id with a method suffix
    # asked for as a Model resource) is the API's 404, not werkzeug's 405 page.
    for method, path in (
        ("GET", f"/v1beta/models/{MODEL}:generateContent"),
        ("POST", "/v1beta/models"),
        ("DELETE", f"/v1beta/models/{MODEL}"),
    ):
        wrong = httpx.request(method, f"{standin.url}{path}", headers=headers)
        assert wrong.status_code == 404, (method, path, wrong.text)
        assert wrong.json()["error"]["message"] == f"Method not found: {method} {path}"
