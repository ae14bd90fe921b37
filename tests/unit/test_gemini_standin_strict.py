"""The stand-in is as strict as the real Gemini Developer API, driven by the real google-genai SDK.

Model ids, JSON mode on image models, aspect ratios, thinking tokens, JPEG images with thought
parts, grounding redirect links, request deadlines and blocked answers: whatever would fail
against the real service must fail here too. The stand-in runs in-process on a free port.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import errors, types
from PIL import Image
from pydantic import BaseModel, Field, ValidationError

from dev.gemini_standin import (
    BLOCK_REASONS,
    FINISH_REASONS,
    MARKER,
    SERVED_MODELS,
    StandinServer,
    make_jpeg,
)
from tests.standin_helpers import running_standin

MODEL = "gemini-3.8-flash"
IMAGE_MODEL = "gemini-nano-banana-2.1"
TEXT_IDS = [
    "gemini-3.8-flash",
    "gemini-3.7-flash",
    "gemini-3.6-flash",
    "gemini-3.5-flash",
    "gemini-3.5-flash-lite",
    "gemini-3.1-flash-lite",
    "gemini-3.1-pro-preview",
]
IMAGE_IDS = [
    "gemini-nano-banana-2.1",
    "gemini-3-pro-image",
    "gemini-3.1-flash-lite-image",
]
# Retired, never served, or simply made up: all answer 404 as on the real API.
UNSERVED_IDS = [
    "gemini-3-flash",
    "gemini-3.1-flash",
    "gemini-2.0-flash",
    "gemini-2.0-flash-lite",
    "gemini-2.5-flash-image",
    "gemini-2.5-flash-image-preview",
    "gemini-2.5-flash",
    "gemini-2.5-pro",
    "gemini-3.1-flash-image",  # shut down 2026-10-29
    "gemini-3-pro-image-preview",
]
NOT_FOUND_BODY = (
    "models/{id} is not found for API version {ver}, or is not supported for generateContent. "
    "Call ListModels to see the list of available models and their supported methods."
)
DEADLINE_BODY = {
    "error": {
        "code": 504,
        "message": "Deadline expired before operation could complete.",
        "status": "DEADLINE_EXCEEDED",
    }
}
IMAGE_CONFIG = types.GenerateContentConfig(response_modalities=["TEXT", "IMAGE"])
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Step(BaseModel):
    step_number: int = Field(ge=1)
    description: str


class Plan(BaseModel):
    strategy_name: str
    steps: list[Step] = Field(min_length=1)
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


def make_client(url: str, timeout_ms: int = 10_000) -> genai.Client:
    options = types.HttpOptions(base_url=url, api_version="v1beta", timeout=timeout_ms)
    return genai.Client(api_key="test-key", http_options=options)


@pytest.fixture(scope="module")
def client(standin: StandinServer) -> genai.Client:
    return make_client(standin.url)  # the module keeps the reference: the SDK needs it alive


def unique(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}"


def add_fault(control: httpx.Client, **rule: Any) -> str:
    response = control.post("/_standin/faults", json=rule)
    response.raise_for_status()
    return str(response.json()["id"])


def logged(control: httpx.Client, contains: str, **params: str) -> list[dict[str, Any]]:
    response = control.get("/_standin/requests", params={"contains": contains, **params})
    response.raise_for_status()
    return list(response.json()["requests"])


def first_candidate(response: types.GenerateContentResponse) -> types.Candidate:
    assert response.candidates, "expected one candidate"
    return response.candidates[0]


def answer_parts(response: types.GenerateContentResponse) -> list[types.Part]:
    """The parts a client should use: thoughts (``thought: true``) are not the answer."""
    content = first_candidate(response).content
    assert content is not None and content.parts is not None
    return [part for part in content.parts if not part.thought]


def final_image(response: types.GenerateContentResponse) -> types.Blob:
    [image] = [p.inline_data for p in answer_parts(response) if p.inline_data is not None]
    return image


def decoded_size(data: bytes) -> tuple[str | None, tuple[int, int]]:
    with Image.open(io.BytesIO(data)) as image:
        image.load()  # decodes every block: a broken entropy stream fails here
        return image.format, image.size


def api_post(standin: StandinServer, path: str, body: Any, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{standin.url}{path}",
        headers={"x-goog-api-key": "k", **headers},
        json=body,
        timeout=5,
    )


def text_body(text: str) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": text}]}]}


# -- model ids ---------------------------------------------------------------------------------


def test_served_table_is_the_wire_docs_list() -> None:
    assert list(SERVED_MODELS) == TEXT_IDS + IMAGE_IDS
    assert [m for m in SERVED_MODELS if SERVED_MODELS[m].image_output] == IMAGE_IDS
    assert not set(UNSERVED_IDS) & set(SERVED_MODELS)


@pytest.mark.parametrize("model", TEXT_IDS)
def test_every_served_text_id_answers(client: genai.Client, model: str) -> None:
    response = client.models.generate_content(model=model, contents="hi", config=JSON_CONFIG)
    assert isinstance(response.parsed, Plan)


@pytest.mark.parametrize("model", IMAGE_IDS)
def test_every_served_image_id_answers_an_image(client: genai.Client, model: str) -> None:
    response = client.models.generate_content(model=model, contents="draw", config=IMAGE_CONFIG)
    assert final_image(response).mime_type == "image/jpeg"


@pytest.mark.parametrize("model", UNSERVED_IDS)
def test_unserved_ids_answer_the_real_404(
    client: genai.Client, standin: StandinServer, model: str
) -> None:
    expected = NOT_FOUND_BODY.format(id=model, ver="v1beta")
    with pytest.raises(errors.ClientError) as generate:
        client.models.generate_content(model=model, contents="hello")
    with pytest.raises(errors.ClientError) as stream:
        list(client.models.generate_content_stream(model=model, contents="hello"))
    with pytest.raises(errors.ClientError) as get:
        client.models.get(model=f"models/{model}")
    for raised in (generate, stream, get):
        assert (raised.value.code, raised.value.status) == (404, "NOT_FOUND")
        assert raised.value.message == expected
    raw = api_post(standin, f"/v1/models/{model}:generateContent", text_body("hello"))
    assert raw.status_code == 404
    message = NOT_FOUND_BODY.format(id=model, ver="v1")
    assert raw.json() == {"error": {"code": 404, "message": message, "status": "NOT_FOUND"}}


def test_models_list_pages_through_the_sdk(client: genai.Client, control: httpx.Client) -> None:
    listed = list(client.models.list())
    assert [m.name for m in listed] == [f"models/{m}" for m in SERVED_MODELS]
    paged = client.models.list(config={"page_size": 3})
    assert len(paged.page) == 3
    assert [m.name for m in paged] == [m.name for m in listed]
    calls = [e for e in logged(control, "/v1beta/models") if e["endpoint"] == "models"]
    assert len(calls) == 1 + 4  # one unpaged call, then ceil(11 / 3) pages
    assert all(e["status"] == 200 for e in calls)


def test_models_get_answers_the_model_resource(client: genai.Client) -> None:
    text = client.models.get(model=MODEL)
    assert text.name == f"models/{MODEL}" and text.display_name == "Gemini 3.8 Flash"
    assert text.version and text.input_token_limit and text.output_token_limit
    assert text.supported_actions and "generateContent" in text.supported_actions
    assert "countTokens" in text.supported_actions and text.thinking is True
    image = client.models.get(model=f"models/{IMAGE_MODEL}")  # the prefix is optional
    assert image.name == f"models/{IMAGE_MODEL}" and image.thinking is True


def test_models_raw_resource_and_paging(standin: StandinServer) -> None:
    headers = {"x-goog-api-key": "k"}
    answer = httpx.get(f"{standin.url}/v1beta/models/{MODEL}", headers=headers).json()
    assert answer["baseModelId"] == MODEL
    assert set(answer) >= {
        "name",
        "baseModelId",
        "version",
        "displayName",
        "description",
        "inputTokenLimit",
        "outputTokenLimit",
        "supportedGenerationMethods",
        "thinking",
    }
    served = len(TEXT_IDS) + len(IMAGE_IDS)
    first = httpx.get(f"{standin.url}/v1beta/models?pageSize=6", headers=headers).json()
    assert len(first["models"]) == 6 and first["nextPageToken"]
    token = first["nextPageToken"]
    rest = httpx.get(
        f"{standin.url}/v1beta/models", params={"pageSize": 6, "pageToken": token}, headers=headers
    ).json()
    assert len(rest["models"]) == served - 6 and "nextPageToken" not in rest
    bad = httpx.get(f"{standin.url}/v1beta/models?pageToken=nope", headers=headers)
    assert bad.status_code == 400


def test_models_routes_need_the_key(standin: StandinServer) -> None:
    for path in ("/v1beta/models", f"/v1beta/models/{MODEL}"):
        response = httpx.get(f"{standin.url}{path}")
        assert response.status_code == 403
        assert response.json()["error"]["status"] == "PERMISSION_DENIED"


def test_count_tokens(client: genai.Client) -> None:
    counted = client.models.count_tokens(model=MODEL, contents="twelve characters long")
    assert counted.total_tokens and counted.total_tokens > 0
    with pytest.raises(errors.ClientError) as missing:
        client.models.count_tokens(model="gemini-3.1-flash", contents="x")
    assert missing.value.code == 404


def test_extra_models_are_served_until_reset(client: genai.Client, control: httpx.Client) -> None:
    extra = {"extra_models": ["gemini-9-test", "gemini-9-test-image"]}
    config = control.post("/_standin/config", json=extra).json()
    assert config["extra_models"] == ["gemini-9-test", "gemini-9-test-image"]
    assert client.models.generate_content(model="gemini-9-test", contents="x").text
    image = client.models.generate_content(model="gemini-9-test-image", contents="x")
    assert final_image(image).data
    assert "models/gemini-9-test" in {m.name for m in client.models.list()}
    control.post("/_standin/reset").raise_for_status()
    assert control.get("/_standin/config").json()["extra_models"] == []
    with pytest.raises(errors.ClientError) as gone:
        client.models.generate_content(model="gemini-9-test", contents="x")
    assert gone.value.code == 404
    bad = control.post("/_standin/config", json={"extra_models": ["models/x"]})
    assert bad.status_code == 400


def test_image_models_refuse_json_mode(client: genai.Client, control: httpx.Client) -> None:
    marker = unique("json-image")
    with pytest.raises(errors.ClientError) as schema:
        client.models.generate_content(model=IMAGE_MODEL, contents=marker, config=JSON_CONFIG)
    mime_only = types.GenerateContentConfig(response_mime_type="application/json")
    with pytest.raises(errors.ClientError) as mime:
        client.models.generate_content(model=IMAGE_MODEL, contents=marker, config=mime_only)
    for raised in (schema, mime):
        assert (raised.value.code, raised.value.status) == (400, "INVALID_ARGUMENT")
        assert IMAGE_MODEL in (raised.value.message or "")
    assert [e["status"] for e in logged(control, marker)] == [400, 400]


def test_text_models_refuse_image_output(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as raised:
        client.models.generate_content(model=MODEL, contents="draw", config=IMAGE_CONFIG)
    assert (raised.value.code, raised.value.status) == (400, "INVALID_ARGUMENT")
    assert "response modalities" in (raised.value.message or "")


# -- thinking ----------------------------------------------------------------------------------


def test_streamed_usage_counts_thoughts(client: genai.Client) -> None:
    chunks = list(
        client.models.generate_content_stream(model=MODEL, contents="x", config=JSON_CONFIG)
    )
    usage = chunks[-1].usage_metadata
    assert usage is not None and usage.thoughts_token_count and usage.thoughts_token_count > 0
    parts = [usage.prompt_token_count, usage.candidates_token_count, usage.thoughts_token_count]
    assert usage.total_token_count == sum(n or 0 for n in parts)
    again = client.models.generate_content(model=MODEL, contents="x", config=JSON_CONFIG)
    assert again.usage_metadata is not None  # deterministic: same request, same count
    assert again.usage_metadata.thoughts_token_count == usage.thoughts_token_count


def test_thought_summaries_are_not_the_answer(client: genai.Client) -> None:
    config = JSON_CONFIG.model_copy(
        update={"thinking_config": types.ThinkingConfig(include_thoughts=True)}
    )
    response = client.models.generate_content(model=MODEL, contents="x", config=config)
    content = first_candidate(response).content
    assert content is not None and content.parts and content.parts[0].thought is True
    assert isinstance(response.parsed, Plan)  # the SDK skips the thought part
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="x", config=config))
    first = first_candidate(chunks[0]).content
    assert first is not None and first.parts and all(p.thought for p in first.parts)
    Plan.model_validate_json("".join(chunk.text or "" for chunk in chunks[1:]))


# -- images ------------------------------------------------------------------------------------


def test_image_answer_parts_thought_text_and_sketch_then_answer(client: genai.Client) -> None:
    response = client.models.generate_content(
        model=IMAGE_MODEL, contents="draw", config=IMAGE_CONFIG
    )
    content = first_candidate(response).content
    assert content is not None and content.parts is not None
    thought_text, sketch, text, image = content.parts
    assert thought_text.thought is True and thought_text.text
    assert sketch.thought is True and sketch.inline_data is not None
    assert sketch.inline_data.mime_type == "image/png"
    assert (sketch.inline_data.data or b"").startswith(PNG_SIGNATURE)
    assert decoded_size(sketch.inline_data.data or b"") == ("PNG", (16, 16))
    assert not text.thought and MARKER in (text.text or "")
    assert not image.thought and image.inline_data is not None
    assert image.inline_data.mime_type == "image/jpeg"
    assert decoded_size(image.inline_data.data or b"") == ("JPEG", (64, 64))


def test_streamed_image_sends_thoughts_first(client: genai.Client) -> None:
    chunks = list(
        client.models.generate_content_stream(
            model=IMAGE_MODEL, contents="draw", config=IMAGE_CONFIG
        )
    )
    first = first_candidate(chunks[0]).content
    assert first is not None and first.parts and all(p.thought for p in first.parts)
    image = final_image(chunks[-1])
    assert image.mime_type == "image/jpeg"
    assert first_candidate(chunks[-1]).finish_reason == types.FinishReason.STOP


@pytest.mark.parametrize(
    ("ratio", "size"),
    [
        (None, (64, 64)),
        ("1:1", (64, 64)),
        ("2:3", (43, 64)),
        ("3:2", (64, 43)),
        ("3:4", (48, 64)),
        ("4:3", (64, 48)),
        ("4:5", (51, 64)),
        ("5:4", (64, 51)),
        ("9:16", (36, 64)),
        ("16:9", (64, 36)),
        ("21:9", (64, 27)),
    ],
)
def test_image_size_follows_the_aspect_ratio(
    client: genai.Client, ratio: str | None, size: tuple[int, int]
) -> None:
    config = IMAGE_CONFIG.model_copy(
        update={"image_config": types.ImageConfig(aspect_ratio=ratio) if ratio else None}
    )
    response = client.models.generate_content(model=IMAGE_MODEL, contents="x", config=config)
    assert decoded_size(final_image(response).data or b"") == ("JPEG", size)


def test_image_size_scales_the_longer_side(client: genai.Client, control: httpx.Client) -> None:
    control.post("/_standin/config", json={"image_size": 200}).raise_for_status()
    config = IMAGE_CONFIG.model_copy(
        update={"image_config": types.ImageConfig(aspect_ratio="9:16")}
    )
    response = client.models.generate_content(model=IMAGE_MODEL, contents="x", config=config)
    assert decoded_size(final_image(response).data or b"") == ("JPEG", (112, 200))


def test_unsupported_aspect_ratio_is_400(client: genai.Client) -> None:
    config = IMAGE_CONFIG.model_copy(update={"image_config": types.ImageConfig(aspect_ratio="7:3")})
    with pytest.raises(errors.ClientError) as raised:
        client.models.generate_content(model=IMAGE_MODEL, contents="x", config=config)
    assert (raised.value.code, raised.value.status) == (400, "INVALID_ARGUMENT")


def test_fault_asks_for_png_once(client: genai.Client, control: httpx.Client) -> None:
    marker = unique("png-once")
    add_fault(control, match=marker, image_format="png", times=1)
    first = client.models.generate_content(model=IMAGE_MODEL, contents=marker, config=IMAGE_CONFIG)
    second = client.models.generate_content(model=IMAGE_MODEL, contents=marker, config=IMAGE_CONFIG)
    assert final_image(first).mime_type == "image/png"
    assert decoded_size(final_image(first).data or b"") == ("PNG", (64, 64))
    assert final_image(second).mime_type == "image/jpeg"


def test_previews_are_baseline_jpegs_drawn_from_the_request() -> None:
    first, again = make_jpeg(40, 24, bytes(range(32))), make_jpeg(40, 24, bytes(range(32)))
    other = make_jpeg(40, 24, bytes(range(100, 132)))
    assert first == again and first != other  # deterministic, and the digest shows
    with Image.open(io.BytesIO(first)) as decoded:
        assert decoded.format == "JPEG" and not decoded.info.get("progressive")
        assert "jfif" in decoded.info
        rgb = decoded.convert("RGB")
        assert rgb.size == (40, 24)
        # A visible placeholder: checkerboard and diagonal, not one flat colour.
        assert len({rgb.getpixel((x, y)) for x in range(0, 40, 4) for y in range(0, 24, 4)}) >= 2


# -- deadlines ---------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["fault", "config"])
def test_latency_past_the_deadline_answers_504_at_the_deadline(
    standin: StandinServer, control: httpx.Client, where: str
) -> None:
    marker = unique("deadline")
    if where == "fault":
        add_fault(control, match=marker, latency_s=3.0)
    else:
        control.post("/_standin/config", json={"latency_s": 3.0}).raise_for_status()
    started = time.monotonic()
    response = api_post(
        standin,
        f"/v1beta/models/{MODEL}:generateContent",
        text_body(marker),
        **{"X-Server-Timeout": "1"},
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 504
    assert response.json() == DEADLINE_BODY
    assert 0.9 <= elapsed < 2.5  # waited for the deadline, not for the whole latency
    [entry] = logged(control, marker)
    assert (entry["status"], entry["deadline_s"]) == (504, 1.0)


def test_sdk_call_within_its_deadline_succeeds(
    standin: StandinServer, control: httpx.Client
) -> None:
    marker = unique("in-time")
    add_fault(control, match=marker, latency_s=0.2)
    timely = make_client(standin.url, timeout_ms=4_000)
    response = timely.models.generate_content(model=MODEL, contents=marker)
    assert (response.text or "").startswith(MARKER)
    [entry] = logged(control, marker)
    assert (entry["status"], entry["deadline_s"]) == (200, 4.0)  # the SDK sent X-Server-Timeout


def test_upload_chunk_honours_the_deadline(standin: StandinServer, control: httpx.Client) -> None:
    name = unique("slow-upload")
    start = httpx.post(
        f"{standin.url}/upload/v1beta/files",
        headers={
            "x-goog-api-key": "k",
            "X-Goog-Upload-Protocol": "resumable",
            "X-Goog-Upload-Command": "start",
            "X-Goog-Upload-Header-Content-Length": "4",
            "X-Goog-Upload-Header-Content-Type": "text/plain",
        },
        json={"file": {"display_name": name, "mime_type": "text/plain"}},
    )
    start.raise_for_status()
    add_fault(control, match=name, endpoint="upload", latency_s=3.0, times=1)
    started = time.monotonic()
    chunk = httpx.post(
        start.headers["X-Goog-Upload-URL"],
        headers={
            "X-Goog-Upload-Command": "upload, finalize",
            "X-Goog-Upload-Offset": "0",
            "X-Server-Timeout": "1",
        },
        content=b"data",
        timeout=5,
    )
    assert chunk.status_code == 504 and chunk.json() == DEADLINE_BODY
    assert chunk.headers["X-Goog-Upload-Status"] == "final"
    assert time.monotonic() - started < 2.5


def test_sdk_upload_chunks_carry_the_deadline(
    standin: StandinServer, control: httpx.Client
) -> None:
    name = unique("sdk-upload")
    timely = make_client(standin.url, timeout_ms=4_000)
    config = types.UploadFileConfig(mime_type="text/plain", display_name=name)
    timely.files.upload(file=io.BytesIO(b"some text"), config=config)
    entries = logged(control, name, endpoint="upload")
    assert len(entries) == 2  # the start, then one final chunk
    assert all((e["status"], e["deadline_s"]) == (200, 4.0) for e in entries)


# -- finish reasons and blocks ----------------------------------------------------------------


def test_shaping_names_are_the_sdks() -> None:
    assert set(FINISH_REASONS) <= {r.value for r in types.FinishReason}
    assert set(BLOCK_REASONS) <= {r.value for r in types.BlockedReason}


@pytest.mark.parametrize(
    "body",
    [
        {"finish_reason": "SAFE"},
        {"finish_reason": "safety"},
        {"block_reason": "SPII"},
        {"image_format": "gif"},
    ],
)
def test_unknown_shaping_names_are_refused(control: httpx.Client, body: dict[str, Any]) -> None:
    response = control.post("/_standin/faults", json={"match": "x", **body})
    assert response.status_code == 400
    assert control.get("/_standin/faults").json()["faults"] == []


def generate(
    client: genai.Client, contents: str, stream: bool
) -> list[types.GenerateContentResponse]:
    """One call, as the list of responses a client sees (one, or the stream's chunks)."""
    if stream:
        return list(
            client.models.generate_content_stream(
                model=MODEL, contents=contents, config=JSON_CONFIG
            )
        )
    return [client.models.generate_content(model=MODEL, contents=contents, config=JSON_CONFIG)]


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize(
    "reason", ["SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION"]
)
def test_blocked_output_has_no_content(
    client: genai.Client, control: httpx.Client, reason: str, stream: bool
) -> None:
    marker = unique("finish")
    add_fault(control, match=marker, finish_reason=reason)
    responses = generate(client, marker, stream)
    last = first_candidate(responses[-1])
    assert last.finish_reason == types.FinishReason(reason)
    assert last.content is None  # no usable answer, whatever came before
    assert all(first_candidate(r).finish_reason is None for r in responses[:-1])
    if reason == "SAFETY":
        assert last.safety_ratings and any(r.blocked for r in last.safety_ratings)
    else:
        assert not last.safety_ratings
    text = "".join(r.text or "" for r in responses)
    with pytest.raises(ValidationError):
        Plan.model_validate_json(text)  # a client that ignores the finish reason fails too
    usage = responses[-1].usage_metadata
    assert usage is not None and usage.thoughts_token_count and not usage.candidates_token_count


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
def test_max_tokens_truncates_the_text(
    client: genai.Client, control: httpx.Client, stream: bool
) -> None:
    marker = unique("max-tokens")
    add_fault(control, match=marker, finish_reason="MAX_TOKENS")
    responses = generate(client, marker, stream)
    assert first_candidate(responses[-1]).finish_reason == types.FinishReason.MAX_TOKENS
    text = "".join(r.text or "" for r in responses)
    assert text.startswith("{")
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    if not stream:
        assert responses[0].parsed is None


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize("reason", ["SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "OTHER"])
def test_blocked_prompt_has_feedback_and_no_candidates(
    client: genai.Client, control: httpx.Client, reason: str, stream: bool
) -> None:
    marker = unique("block")
    add_fault(control, match=marker, block_reason=reason)
    [response] = generate(client, marker, stream)
    assert not response.candidates and response.text is None
    feedback = response.prompt_feedback
    assert feedback is not None and feedback.block_reason == types.BlockedReason(reason)
    assert bool(feedback.safety_ratings) == (reason == "SAFETY")
    usage = response.usage_metadata
    assert usage is not None and usage.total_token_count == usage.prompt_token_count


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
def test_schema_invalid_is_valid_json_without_required_fields(
    client: genai.Client, control: httpx.Client, stream: bool
) -> None:
    marker = unique("schema-invalid")
    add_fault(control, match=marker, schema_invalid=True, times=1)
    responses = generate(client, marker, stream)
    document = json.loads("".join(r.text or "" for r in responses))
    assert isinstance(document, dict)
    assert "steps" not in document and "strategy_name" not in document
    with pytest.raises(ValidationError):
        Plan.model_validate(document)
    if not stream:
        assert responses[0].parsed is None  # what the SDK makes of it: check parsed
    assert first_candidate(responses[-1]).finish_reason == types.FinishReason.STOP
    fault = control.get("/_standin/faults").json()["faults"][0]
    assert fault["schema_invalid"] is True and fault["applied"] == 1
