"""The Gemini stand-in's Vertex AI routes (issue 12), driven by the real google-genai SDK
with ``vertexai=True``, a project and a location, ``base_url`` at the in-process stand-in
and static bearer credentials (what shared/clients.py gives a stand-in).

The stand-in checks ``gs://`` URIs against a Cloud Storage emulator; here a tiny one in
this process answers the object-metadata GET for the objects a test puts in it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import errors, types
from google.oauth2.credentials import Credentials
from pydantic import BaseModel, Field

from dev.gemini_standin import (
    MARKER,
    SERVED_MODELS,
    VERTEX_MULTI_REGION_MODELS,
    Config,
    StandinServer,
    serve,
)
from tests.standin_helpers import FakeStorage, running_standin, running_storage

MODEL = "gemini-3.8-flash"
IMAGE_MODEL = "gemini-nano-banana-2.1"
PROJECT = "tinkerbell-vertex"
BUCKET = "tinkerbell-vertex-uploads"
REDIRECT_PREFIX = "https://vertexaisearch.cloud.google.com/grounding-api-redirect/"


class Plan(BaseModel):
    strategy_name: str
    required_budget: float = Field(ge=0)
    steps: list[str] = Field(min_length=1)


JSON_CONFIG = types.GenerateContentConfig(
    response_schema=Plan, response_mime_type="application/json"
)


# -- a Cloud Storage emulator of one route -----------------------------------------------------


@pytest.fixture(scope="module")
def storage() -> Iterator[FakeStorage]:
    with running_storage() as server:
        yield server


@pytest.fixture(scope="module")
def standin(storage: FakeStorage) -> Iterator[StandinServer]:
    with running_standin(Config(storage_emulator_host=storage.url)) as server:
        yield server


@pytest.fixture(autouse=True)
def _reset(fresh_standin: None) -> None:
    """Every test starts from the stand-in's initial state (tests/unit/conftest.py)."""


def make_client(
    url: str,
    location: str = "global",
    api_version: str = "v1",
    retry: types.HttpRetryOptions | None = None,
) -> genai.Client:
    options = types.HttpOptions(
        base_url=url, api_version=api_version, timeout=10_000, retry_options=retry
    )
    return genai.Client(
        vertexai=True,
        project=PROJECT,
        location=location,
        credentials=Credentials(token="test-token"),
        http_options=options,
    )


@pytest.fixture(scope="module")
def client(standin: StandinServer) -> genai.Client:
    return make_client(standin.url)  # the module keeps the reference: the SDK needs it alive


def unique(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:10]}"


def logged(control: httpx.Client, contains: str = "", **params: str) -> list[dict[str, Any]]:
    response = control.get("/_standin/requests", params={"contains": contains, **params})
    response.raise_for_status()
    return list(response.json()["requests"])


def add_fault(control: httpx.Client, **rule: Any) -> str:
    response = control.post("/_standin/faults", json=rule)
    response.raise_for_status()
    return str(response.json()["id"])


def put_object(storage: FakeStorage, name: str) -> str:
    storage.objects.add((BUCKET, name))
    return f"gs://{BUCKET}/{name}"


def pdf_part(uri: str) -> types.Part:
    return types.Part.from_uri(file_uri=uri, mime_type="application/pdf")


# -- paths and credentials ---------------------------------------------------------------------


def test_the_sdk_calls_the_project_scoped_path_with_a_bearer_token(
    client: genai.Client, control: httpx.Client
) -> None:
    marker = unique("path")
    response = client.models.generate_content(model=MODEL, contents=f"hello {marker}")
    assert (response.text or "").startswith(MARKER)
    [entry] = logged(control, marker)
    assert entry["path"] == (
        f"/v1/projects/{PROJECT}/locations/global/publishers/google/models/{MODEL}:generateContent"
    )
    assert entry["backend"] == "vertex"
    assert entry["endpoint"] == "generateContent"
    assert entry["status"] == 200


def test_v1beta1_is_served_too(standin: StandinServer, control: httpx.Client) -> None:
    beta = make_client(standin.url, api_version="v1beta1")
    marker = unique("beta")
    beta.models.generate_content(model=MODEL, contents=marker)
    [entry] = logged(control, marker)
    assert entry["path"].startswith(f"/v1beta1/projects/{PROJECT}/locations/global/")


def test_without_a_bearer_token_vertex_answers_401(standin: StandinServer) -> None:
    path = f"/v1/projects/{PROJECT}/locations/global/publishers/google/models/{MODEL}"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    bare = httpx.post(f"{standin.url}{path}:generateContent", json=body)
    assert bare.status_code == 401
    assert bare.json()["error"]["status"] == "UNAUTHENTICATED"
    assert "OAuth 2 access token" in bare.json()["error"]["message"]
    keyed = httpx.post(
        f"{standin.url}{path}:generateContent", json=body, headers={"x-goog-api-key": "AIza-x"}
    )
    assert keyed.status_code == 401
    assert "API keys are not supported" in keyed.json()["error"]["message"]
    listing = httpx.get(f"{standin.url}/v1beta1/publishers/google/models")
    assert listing.status_code == 401


def test_a_bearer_token_does_not_open_the_developer_routes(standin: StandinServer) -> None:
    answer = httpx.get(
        f"{standin.url}/v1beta/models", headers={"Authorization": "Bearer test-token"}
    )
    assert answer.status_code == 403  # the Developer API wants its key


# -- the served-model table, per location ----------------------------------------------------


@pytest.mark.parametrize("model", [m for m in SERVED_MODELS if not SERVED_MODELS[m].image_output])
def test_every_served_text_id_answers_at_global(client: genai.Client, model: str) -> None:
    response = client.models.generate_content(model=model, contents="hi", config=JSON_CONFIG)
    assert isinstance(response.parsed, Plan)


def test_an_unserved_id_answers_vertex_s_404(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="gemini-3.1-flash", contents="hi")
    assert caught.value.code == 404
    assert caught.value.status == "NOT_FOUND"
    assert caught.value.message == (
        f"Publisher Model `projects/{PROJECT}/locations/global/publishers/google/models/"
        "gemini-3.1-flash` was not found or your project does not have access to it. Please "
        "ensure you are using a valid model version. For more information, see: "
        "https://cloud.google.com/vertex-ai/generative-ai/docs/learn/model-versions"
    )


def test_withdrawn_models_answer_404_on_vertex_too(
    client: genai.Client, control: httpx.Client
) -> None:
    control.post("/_standin/config", json={"withdrawn_models": [MODEL]}).raise_for_status()
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=MODEL, contents="hi")
    assert caught.value.code == 404


def test_locations_decide_what_is_served(standin: StandinServer) -> None:
    us = make_client(standin.url, location="us")
    region = make_client(standin.url, location="europe-west1")
    assert MODEL in VERTEX_MULTI_REGION_MODELS
    assert us.models.generate_content(model=MODEL, contents="hi").text
    for client, model in (
        (us, "gemini-3.1-pro-preview"),  # global only
        (us, IMAGE_MODEL),
        (region, MODEL),  # no single region serves the Gemini 3 models
    ):
        with pytest.raises(errors.ClientError) as caught:
            client.models.generate_content(model=model, contents="hi")
        assert caught.value.code == 404, (client, model)
        assert "was not found or your project does not have access" in (caught.value.message or "")


# -- what the worker sends ---------------------------------------------------------------------


def test_pdf_from_cloud_storage_schema_json_url_context_and_search(
    client: genai.Client, storage: FakeStorage, control: httpx.Client
) -> None:
    uri = put_object(storage, f"uploads/{unique('task')}/source.pdf")
    marker = unique("full")
    config = types.GenerateContentConfig(
        response_schema=Plan,
        response_mime_type="application/json",
        tools=[
            types.Tool(url_context=types.UrlContext()),
            types.Tool(google_search=types.GoogleSearch()),
        ],
    )
    chunks = list(
        client.models.generate_content_stream(
            model=MODEL,
            contents=[pdf_part(uri), f"{marker} read https://bakery.example/menu"],
            config=config,
        )
    )
    text = "".join(c.text or "" for c in chunks)
    Plan.model_validate_json(text)
    last = chunks[-1]
    candidate = last.candidates[0] if last.candidates else None
    assert candidate is not None and candidate.finish_reason == types.FinishReason.STOP
    urls = candidate.url_context_metadata
    assert urls is not None and urls.url_metadata
    assert urls.url_metadata[0].retrieved_url == "https://bakery.example/menu"
    grounding = candidate.grounding_metadata
    assert grounding is not None and grounding.search_entry_point is not None
    assert (grounding.search_entry_point.rendered_content or "").strip()
    web = [chunk.web for chunk in grounding.grounding_chunks or [] if chunk.web]
    assert web and all((w.uri or "").startswith(REDIRECT_PREFIX) for w in web)
    assert all(w.domain == w.title for w in web)  # Vertex AI names the domain
    usage = last.usage_metadata
    assert usage is not None and usage.thoughts_token_count
    assert usage.traffic_type == types.TrafficType.ON_DEMAND
    # url_context and search read pages: billed as input (toolUsePromptTokenCount).
    assert usage.tool_use_prompt_token_count
    assert usage.total_token_count == (
        (usage.prompt_token_count or 0)
        + (usage.candidates_token_count or 0)
        + usage.thoughts_token_count
        + usage.tool_use_prompt_token_count
    )
    assert last.create_time is not None
    [entry] = logged(control, marker)
    assert entry["file_uris"] == [uri]
    assert entry["endpoint"] == "streamGenerateContent"
    assert sorted(entry["tools"]) == ["google_search", "url_context"]
    # The object was looked up in Cloud Storage, by its url-encoded name.
    assert any(uri.split("/", 3)[3].replace("/", "%2F") in path for path in storage.requests)


def test_image_model_answers_an_image(client: genai.Client) -> None:
    config = types.GenerateContentConfig(
        response_modalities=["TEXT", "IMAGE"],
        image_config=types.ImageConfig(aspect_ratio="16:9"),
    )
    response = client.models.generate_content(model=IMAGE_MODEL, contents="a boat", config=config)
    candidate = response.candidates[0] if response.candidates else None
    assert candidate is not None and candidate.content is not None
    images = [
        p.inline_data for p in candidate.content.parts or [] if p.inline_data and not p.thought
    ]
    assert images and images[-1].mime_type == "image/jpeg"
    assert (images[-1].data or b"").startswith(b"\xff\xd8")


def test_image_models_refuse_json_mode_on_vertex_too(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=IMAGE_MODEL, contents="x", config=JSON_CONFIG)
    assert caught.value.code == 400


# -- gs:// URIs --------------------------------------------------------------------------------


def test_a_missing_object_is_refused_like_vertex_cannot_read_it(
    client: genai.Client, storage: FakeStorage
) -> None:
    uri = f"gs://{BUCKET}/uploads/{unique('gone')}/source.pdf"
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=MODEL, contents=[pdf_part(uri), "read it"])
    assert caught.value.code == 400
    assert caught.value.status == "INVALID_ARGUMENT"
    assert uri in (caught.value.message or "")


def test_an_object_vertex_may_not_read_answers_403(
    client: genai.Client, storage: FakeStorage
) -> None:
    storage.forbidden.add("someone-elses-bucket")
    uri = "gs://someone-elses-bucket/uploads/x/source.pdf"
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=MODEL, contents=[pdf_part(uri), "read it"])
    assert caught.value.code == 403
    assert "Permission denied while accessing input file" in (caught.value.message or "")


def test_file_api_uris_mean_nothing_on_vertex(client: genai.Client, standin: StandinServer) -> None:
    # A File API file's URI (the stand-in's own form of it): Vertex AI reads gs:// only.
    uri = f"{standin.url}/v1beta/files/abc123"
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=MODEL, contents=[pdf_part(uri), "read it"])
    assert caught.value.code == 400


def test_without_a_storage_emulator_every_gs_uri_is_refused() -> None:
    server, thread = serve("127.0.0.1", 0, log_requests=False)
    try:
        lonely = make_client(server.url)
        with pytest.raises(errors.ClientError) as caught:
            lonely.models.generate_content(
                model=MODEL, contents=[pdf_part(f"gs://{BUCKET}/a.pdf"), "read it"]
            )
        assert caught.value.code == 400
        assert "storage-emulator-host" in (caught.value.message or "")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_the_storage_emulator_is_a_config_field(control: httpx.Client) -> None:
    current = control.get("/_standin/config").json()["storage_emulator_host"]
    assert current.startswith("http://127.0.0.1:")
    bad = control.post("/_standin/config", json={"storage_emulator_host": "ftp://x/y"})
    assert bad.status_code == 400
    bare = control.post("/_standin/config", json={"storage_emulator_host": "127.0.0.1:9"})
    assert bare.json()["storage_emulator_host"] == "http://127.0.0.1:9"


# -- faults, deadlines, retries ----------------------------------------------------------------


def test_a_503_is_retried_by_the_sdk_like_on_the_developer_api(
    standin: StandinServer, control: httpx.Client
) -> None:
    retrying = make_client(
        standin.url, retry=types.HttpRetryOptions(attempts=3, initial_delay=0.01, max_delay=0.02)
    )
    marker = unique("retry")
    add_fault(control, match=marker, endpoint="generateContent", status=503, times=2)
    response = retrying.models.generate_content(model=MODEL, contents=marker)
    assert (response.text or "").startswith(MARKER)
    statuses = [e["status"] for e in logged(control, marker)]
    assert statuses == [503, 503, 200]


def test_a_fault_matches_the_vertex_path(client: genai.Client, control: httpx.Client) -> None:
    add_fault(control, match=f"models/{IMAGE_MODEL}", endpoint="image", status=429)
    config = types.GenerateContentConfig(response_modalities=["TEXT", "IMAGE"])
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=IMAGE_MODEL, contents="boat", config=config)
    assert caught.value.code == 429


def test_finish_reasons_shape_vertex_answers(client: genai.Client, control: httpx.Client) -> None:
    marker = unique("safety")
    add_fault(control, match=marker, endpoint="generateContent", finish_reason="SAFETY")
    response = client.models.generate_content(model=MODEL, contents=marker)
    candidate = response.candidates[0] if response.candidates else None
    assert candidate is not None and candidate.finish_reason == types.FinishReason.SAFETY
    assert candidate.content is None


def test_the_deadline_answers_504(standin: StandinServer, control: httpx.Client) -> None:
    marker = unique("slow")
    add_fault(control, match=marker, endpoint="generateContent", latency_s=3)
    quick = genai.Client(
        vertexai=True,
        project=PROJECT,
        location="global",
        credentials=Credentials(token="test-token"),
        http_options=types.HttpOptions(base_url=standin.url, api_version="v1", timeout=1_000),
    )
    with pytest.raises(Exception):  # noqa: B017 (the SDK's own read timeout, or 504)
        quick.models.generate_content(model=MODEL, contents=marker)
    [entry] = logged(control, marker)
    assert entry["deadline_s"] == 1


# -- models ------------------------------------------------------------------------------------


def test_get_a_publisher_model(client: genai.Client, control: httpx.Client) -> None:
    model = client.models.get(model=MODEL)
    assert model.name == f"publishers/google/models/{MODEL}"
    assert model.version == "001"
    [entry] = logged(control, f"/publishers/google/models/{MODEL}")
    assert entry["path"] == f"/v1/publishers/google/models/{MODEL}"  # not project-scoped
    assert entry["endpoint"] == "models" and entry["backend"] == "vertex"
    with pytest.raises(errors.ClientError) as caught:
        client.models.get(model="gemini-3.1-flash")
    assert caught.value.code == 404


def test_the_listing_is_v1beta1_only(standin: StandinServer, client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as caught:
        list(client.models.list())
    assert caught.value.code == 404
    beta = make_client(standin.url, api_version="v1beta1")
    names = [m.name for m in beta.models.list(config={"page_size": 4})]
    assert names == [f"publishers/google/models/{m}" for m in SERVED_MODELS]


def test_count_tokens_on_vertex(client: genai.Client) -> None:
    counted = client.models.count_tokens(model=MODEL, contents="count these words please")
    assert counted.total_tokens and counted.total_tokens > 0
