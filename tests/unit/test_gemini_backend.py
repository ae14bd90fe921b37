"""GEMINI_BACKEND (issue 12): the settings' rules, the client shared/clients.py builds for
each backend, the port's PDF by backend, and the worker's Gemini calls through the real
SDK against the in-process stand-in's Vertex AI routes.

Every test starts from settings read from a clean environment, and from no client.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.auth import exceptions as auth_exceptions
from google.genai import types
from google.oauth2.credentials import Credentials
from pydantic import ValidationError

from dev.gemini_standin import MARKER, Config, StandinServer
from shared import clients, gemini, gemini_files, gemini_gcs, gemini_port
from shared.models import PdfRef, TaskRequest
from shared.settings import EMULATOR_VARIABLES, Settings, get_settings
from tests.standin_helpers import FakeStorage, run_check_gemini, running_standin, running_storage

REPO = Path(__file__).resolve().parents[2]
SETTING_NAMES = {name.upper() for name in Settings.model_fields}
BUCKET = "demo-tinkerbell-uploads"


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No setting from the caller's environment (make test exports the stack's), no
    cached settings, no cached Gemini client; all restored afterwards."""
    for name in (*EMULATOR_VARIABLES, "K_SERVICE", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    for field in Settings.model_fields:
        monkeypatch.delenv(field.upper(), raising=False)
        monkeypatch.delenv(field, raising=False)
    saved = clients._instances.pop("gemini", None)
    get_settings.cache_clear()
    yield
    clients._instances.pop("gemini", None)
    if saved is not None:
        clients._instances["gemini"] = saved
    get_settings.cache_clear()


def use(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    clients._instances.pop("gemini", None)
    return get_settings()


def refusal(**env: str) -> str:
    with pytest.raises(ValidationError) as caught:
        Settings(**{k.lower(): v for k, v in env.items()})  # type: ignore[arg-type]
    return str(caught.value)


# -- the settings ------------------------------------------------------------------------------


def test_the_developer_api_is_the_default() -> None:
    settings = Settings()
    assert settings.gemini_backend == "developer"
    assert not settings.uses_vertex
    assert settings.gemini_version == "v1beta"


def test_vertex_defaults_to_the_project_at_global_on_v1(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = use(
        monkeypatch,
        GEMINI_BACKEND="vertex",
        GOOGLE_CLOUD_PROJECT="demo-x",
        GEMINI_BASE_URL="http://127.0.0.1:1",
    )
    assert settings.uses_vertex
    assert settings.vertex_project == "demo-x"
    assert settings.gemini_vertex_location == "global"
    assert settings.gemini_version == "v1"


def test_vertex_project_location_and_version_can_be_set(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = use(
        monkeypatch,
        GEMINI_BACKEND="vertex",
        GEMINI_VERTEX_PROJECT="models-project",
        GEMINI_VERTEX_LOCATION="us",
        GEMINI_API_VERSION="v1beta1",
    )
    assert (settings.vertex_project, settings.gemini_vertex_location) == ("models-project", "us")
    assert settings.gemini_version == "v1beta1"


def test_vertex_without_a_project_is_refused() -> None:
    message = refusal(GEMINI_BACKEND="vertex", GOOGLE_CLOUD_PROJECT="")
    assert "GEMINI_BACKEND=vertex needs a project" in message


def test_the_local_stack_may_use_vertex_in_its_emulator_project() -> None:
    """dev/stack/ checks the caller's environment before it adds the stand-in's URL."""
    settings = Settings(gemini_backend="vertex")
    assert settings.vertex_project == "demo-tinkerbell"


def test_on_vertex_pdfs_are_limited_to_what_vertex_reads() -> None:
    # Vertex AI reads at most 50 MB of a PDF from Cloud Storage (document understanding).
    assert Settings().max_upload_pdf_bytes == 50 * 1024 * 1024  # the Developer API's
    settings = Settings(gemini_backend="vertex")
    assert settings.max_upload_pdf_bytes == 50_000_000
    assert settings.max_pdf_bytes == 30 * 1024 * 1024  # below it already
    message = refusal(GEMINI_BACKEND="vertex", MAX_UPLOAD_PDF_BYTES=str(50 * 1024 * 1024))
    assert "MAX_UPLOAD_PDF_BYTES=52428800 exceeds the 50000000 bytes" in message


def test_a_developer_api_version_is_refused_on_vertex() -> None:
    message = refusal(
        GEMINI_BACKEND="vertex", GEMINI_VERTEX_PROJECT="p", GEMINI_API_VERSION="v1beta"
    )
    assert "GEMINI_API_VERSION=v1beta is a Gemini Developer API version" in message


@pytest.mark.parametrize(
    "env",
    [
        {"GEMINI_BACKEND": "vertexai"},
        {"GEMINI_BACKEND": "vertex", "GEMINI_VERTEX_PROJECT": "p", "GEMINI_VERTEX_LOCATION": ""},
        {"GEMINI_BACKEND": "vertex", "GEMINI_VERTEX_PROJECT": "p", "GEMINI_VERTEX_LOCATION": "EU"},
    ],
)
def test_nonsense_is_refused(env: dict[str, str]) -> None:
    refusal(**env)


def test_a_key_given_with_vertex_is_accepted_and_never_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = use(
        monkeypatch,
        GEMINI_BACKEND="vertex",
        GEMINI_BASE_URL="http://127.0.0.1:1",
        GEMINI_API_KEY="AIza-must-not-be-sent",
        GOOGLE_API_KEY="AIza-nor-this-one",
    )
    assert settings.gemini_api_key is not None
    api = clients.gemini()._api_client
    assert api.api_key is None
    assert "x-goog-api-key" not in (api._http_options.headers or {})


def test_a_deployed_worker_on_vertex_needs_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = use(
        monkeypatch,
        K_SERVICE="process-task",
        GEMINI_BACKEND="vertex",
        GOOGLE_CLOUD_PROJECT="tinkerbell-prod",
        STATUS_BASE_URL="https://status.example.com",
    )
    assert settings.vertex_project == "tinkerbell-prod" and settings.gemini_api_key is None


# -- the client --------------------------------------------------------------------------------


def test_the_developer_client_is_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, GEMINI_BASE_URL="http://127.0.0.1:8090")
    api = clients.gemini()._api_client
    assert not api.vertexai
    assert api.api_key == clients.PLACEHOLDER_GEMINI_KEY
    assert api._http_options.base_url == "http://127.0.0.1:8090"
    assert api._http_options.api_version == "v1beta"


@pytest.mark.parametrize(("concurrency", "pool"), [("8", 100), ("300", 600)])
def test_the_connection_pool_holds_every_task_of_an_instance(
    monkeypatch: pytest.MonkeyPatch, concurrency: str, pool: int
) -> None:
    """httpx keeps 100 connections by default: more tasks at once would queue for one."""
    use(monkeypatch, GEMINI_BASE_URL="http://127.0.0.1:8090", WORKER_CONCURRENCY=concurrency)
    api = clients.gemini()._api_client
    transport = api._httpx_client._transport
    assert transport._pool._max_connections == pool
    assert transport._pool._max_keepalive_connections == pool


def test_a_vertex_client_for_a_stand_in_has_a_placeholder_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use(monkeypatch, GEMINI_BACKEND="vertex", GEMINI_BASE_URL="http://127.0.0.1:8090")
    api = clients.gemini()._api_client
    assert api.vertexai
    assert (api.project, api.location) == ("demo-tinkerbell", "global")
    assert isinstance(api._credentials, Credentials)
    assert api._credentials.token == clients.PLACEHOLDER_VERTEX_TOKEN
    request = api._build_request("post", "publishers/google/models/m:generateContent", {})
    assert request.url == (
        "http://127.0.0.1:8090/v1/projects/demo-tinkerbell/locations/global/"
        "publishers/google/models/m:generateContent"
    )
    assert request.headers["X-Server-Timeout"] == str(int(get_settings().gemini_upload_timeout_s))


@pytest.mark.parametrize(
    ("location", "base_url", "expected"),
    [
        ("global", None, "https://aiplatform.googleapis.com/"),
        ("us", None, "https://aiplatform.us.rep.googleapis.com/"),
        ("us-central1", None, "https://us-central1-aiplatform.googleapis.com/"),
        (
            "europe-west4",
            "https://europe-west4-aiplatform.googleapis.com/",
            "https://europe-west4-aiplatform.googleapis.com/",
        ),
    ],
)
def test_google_s_endpoints_use_application_default_credentials(
    monkeypatch: pytest.MonkeyPatch, location: str, base_url: str | None, expected: str
) -> None:
    env = {"GEMINI_BACKEND": "vertex", "GOOGLE_CLOUD_PROJECT": "tinkerbell-prod"}
    env["GEMINI_VERTEX_LOCATION"] = location
    if base_url:
        env["GEMINI_BASE_URL"] = base_url
    use(monkeypatch, **env)
    api = clients.gemini()._api_client  # builds without touching ADC or the network
    assert api._credentials is None  # ADC, fetched by the SDK at the first call
    assert api._http_options.base_url == expected
    assert api.project == "tinkerbell-prod" and api.location == location


def test_no_real_token_goes_to_another_host() -> None:
    assert clients.vertex_credentials(None) is None
    assert clients.vertex_credentials("https://us-aiplatform.googleapis.com") is None
    for url in ("http://127.0.0.1:8090", "https://googleapis.com.evil.example/"):
        credentials = clients.vertex_credentials(url)
        assert isinstance(credentials, Credentials)
        assert credentials.token == clients.PLACEHOLDER_VERTEX_TOKEN


# -- the port: the PDF by backend --------------------------------------------------------------


PDF = PdfRef(gcs_uri=f"gs://{BUCKET}/uploads/t1/source.pdf", size_bytes=10, sha256="ab" * 32)


def test_on_vertex_the_pdf_is_its_gs_uri_and_nothing_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use(monkeypatch, GEMINI_BACKEND="vertex", GEMINI_BASE_URL="http://127.0.0.1:1")

    def no_file_api(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the File API path ran on Vertex AI")

    monkeypatch.setattr(gemini_files, "pdf_for_gemini", no_file_api)
    with gemini_port.pdf_for_gemini(PDF, task_id="t1", deadline=time.monotonic() + 5) as pdf:
        part = pdf.part()
    assert isinstance(part, types.Part) and part.file_data is not None
    assert part.file_data.file_uri == PDF.gcs_uri
    assert part.file_data.mime_type == "application/pdf"


def test_on_the_developer_api_the_file_api_path_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, GEMINI_BASE_URL="http://127.0.0.1:1")
    used = []

    def file_api(pdf: PdfRef, *, task_id: str, deadline: float) -> str:
        used.append(task_id)
        return "file-api"

    monkeypatch.setattr(gemini_files, "pdf_for_gemini", file_api)
    assert gemini_port.pdf_for_gemini(PDF, task_id="t2", deadline=0) == "file-api"  # type: ignore[comparison-overlap]
    assert used == ["t2"]


def test_a_pdf_that_is_not_in_cloud_storage_is_refused() -> None:
    bad = PdfRef(gcs_uri="https://example.com/a.pdf", size_bytes=1, sha256="cd" * 32)
    with (
        pytest.raises(gemini.GeminiError) as caught,
        gemini_gcs.pdf_for_gemini(bad, task_id="t", deadline=0),
    ):
        pass
    assert caught.value.code == "pdf_unreadable" and not caught.value.retryable


# -- errors that exist on Vertex AI only -------------------------------------------------------


def test_no_credentials_is_a_retryable_gemini_error() -> None:
    def send() -> None:
        raise auth_exceptions.DefaultCredentialsError("no ADC")

    with pytest.raises(gemini.GeminiError) as caught:
        gemini.call_gemini(send)
    assert caught.value.code == "gemini_credentials"
    assert caught.value.retryable


# -- the worker's calls, through the real SDK, on the stand-in's Vertex AI routes ------------


@pytest.fixture(scope="module")
def storage() -> Iterator[FakeStorage]:
    with running_storage() as server:
        yield server


@pytest.fixture(scope="module")
def standin(storage: FakeStorage) -> Iterator[StandinServer]:
    with running_standin(Config(storage_emulator_host=storage.url)) as server:
        yield server


def requests_of(standin: StandinServer, marker: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{standin.url}/_standin/requests", params={"contains": marker})
    return list(answer.json()["requests"])


def vertex_settings(monkeypatch: pytest.MonkeyPatch, standin: StandinServer, **env: str) -> None:
    standin_settings(monkeypatch, standin, GEMINI_BACKEND="vertex", **env)


def standin_settings(
    monkeypatch: pytest.MonkeyPatch, standin: StandinServer, **env: str
) -> Settings:
    """A reset stand-in, and settings for it with short deadlines and retry delays."""
    httpx.post(f"{standin.url}/_standin/reset").raise_for_status()
    return use(
        monkeypatch,
        GEMINI_BASE_URL=standin.url,
        GEMINI_STRATEGY_TIMEOUT_S="6",
        GEMINI_IMAGE_TIMEOUT_S="6",
        GEMINI_RETRY_INITIAL_DELAY_S="0.01",
        GEMINI_RETRY_MAX_DELAY_S="0.02",
        GEMINI_RETRY_JITTER_S="0",
        **env,
    )


def test_strategy_with_pdf_url_and_search_then_image_on_vertex(
    monkeypatch: pytest.MonkeyPatch, standin: StandinServer, storage: FakeStorage
) -> None:
    vertex_settings(monkeypatch, standin)
    marker = uuid.uuid4().hex
    storage.objects.add((BUCKET, f"uploads/{marker}/source.pdf"))
    pdf = PdfRef(
        gcs_uri=f"gs://{BUCKET}/uploads/{marker}/source.pdf", size_bytes=10, sha256="ef" * 32
    )
    request = TaskRequest(
        brief=f"A bakery in Lyon {marker}",
        urls=["https://bakery.example/menu"],
        grounding=True,
        pdf=pdf,
    )
    with gemini_port.pdf_for_gemini(pdf, task_id=marker, deadline=time.monotonic() + 30) as file:
        answer = gemini_port.generate_strategy(request, file_parts=[file.part()])
    assert answer.strategy.strategy_name.startswith("[stand-in sample")
    kinds = {source.kind for source in answer.sources}
    assert {source.url for source in answer.sources if source.kind == "url_context"} == {
        "https://bakery.example/menu"
    }
    assert "search" in kinds
    search = [s for s in answer.sources if s.kind == "search"]
    assert all(s.domain for s in search)
    assert answer.search_entry_point and MARKER in answer.search_entry_point
    assert answer.usage.thoughts_tokens > 0
    assert answer.usage.prompt_tokens + answer.usage.output_tokens == answer.usage.total_tokens
    image = gemini_port.generate_image(answer.strategy)
    assert image.mime_type == "image/jpeg" and image.width and image.height
    [strategy_call] = requests_of(standin, marker)
    assert strategy_call["backend"] == "vertex"
    assert strategy_call["file_uris"] == [pdf.gcs_uri]
    everything = httpx.get(f"{standin.url}/_standin/requests").json()["requests"]
    assert {e["backend"] for e in everything} == {"vertex"}
    assert not [e for e in everything if e["endpoint"] in ("upload", "files")]


def test_a_missing_object_fails_the_strategy_for_good(
    monkeypatch: pytest.MonkeyPatch, standin: StandinServer
) -> None:
    vertex_settings(monkeypatch, standin)
    pdf = PdfRef(gcs_uri=f"gs://{BUCKET}/uploads/gone/source.pdf", size_bytes=1, sha256="0" * 64)
    request = TaskRequest(brief="A bakery", pdf=pdf)
    deadline = time.monotonic() + 30
    with (
        gemini_port.pdf_for_gemini(pdf, task_id="gone", deadline=deadline) as file,
        pytest.raises(gemini.GeminiError) as caught,
    ):
        gemini_port.generate_strategy(request, file_parts=[file.part()])
    assert caught.value.code == "gemini_invalid_argument"
    assert not caught.value.retryable


def test_a_location_that_does_not_serve_the_model_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, standin: StandinServer
) -> None:
    vertex_settings(monkeypatch, standin, GEMINI_VERTEX_LOCATION="europe-west1")
    with pytest.raises(gemini.GeminiError) as caught:
        gemini_port.generate_strategy(TaskRequest(brief="A bakery"))
    assert caught.value.code == "gemini_model_not_found"
    assert "GEMINI_VERTEX_LOCATION" in caught.value.message


# -- make check-gemini on Vertex AI ------------------------------------------------------------


def check(**env: str) -> tuple[int, dict[str, Any]]:
    return run_check_gemini(**env)


def test_check_gemini_checks_vertex_ai(standin: StandinServer) -> None:
    httpx.post(f"{standin.url}/_standin/reset").raise_for_status()
    code, report = check(GEMINI_BACKEND="vertex", GEMINI_BASE_URL=standin.url)
    assert code == 0, report
    assert report["backend"].startswith("Vertex AI, project demo-tinkerbell, location global")
    assert report["served_models"] == sorted(["gemini-3.8-flash", "gemini-nano-banana-2.1"])
    assert report["json_call"]["url_context_entries"] == 1
    assert report["image_call"]["mime_type"] == "image/jpeg"
    calls = httpx.get(f"{standin.url}/_standin/requests").json()["requests"]
    assert {c["backend"] for c in calls} == {"vertex"}
    assert [c["path"] for c in calls if c["endpoint"] == "models"] == [
        "/v1/publishers/google/models/gemini-3.8-flash",
        "/v1/publishers/google/models/gemini-nano-banana-2.1",
    ]


def test_check_gemini_on_vertex_names_a_model_it_does_not_serve(standin: StandinServer) -> None:
    code, report = check(
        GEMINI_BACKEND="vertex", GEMINI_BASE_URL=standin.url, GEMINI_TEXT_MODEL="gemini-3.1-flash"
    )
    assert code == 4
    assert "not served for this project: GEMINI_TEXT_MODEL=gemini-3.1-flash" in report["reason"]


def test_check_gemini_on_vertex_names_a_location_that_does_not_serve_it(
    standin: StandinServer,
) -> None:
    code, report = check(
        GEMINI_BACKEND="vertex",
        GEMINI_BASE_URL=standin.url,
        GEMINI_VERTEX_LOCATION="europe-west1",
    )
    assert code == 5
    assert report["step"] == "json_call"
    assert "GEMINI_VERTEX_LOCATION" in report["reason"]


def test_check_gemini_refuses_the_real_vertex_ai_in_an_emulator_project() -> None:
    code, report = check(GEMINI_BACKEND="vertex")
    assert code == 2
    assert "emulator-only project 'demo-tinkerbell'" in report["reason"]


def test_check_gemini_without_credentials_says_so(tmp_path: Path) -> None:
    """Google's endpoint and no Application Default Credentials on this machine: the
    token is missing before any request leaves (NO_GCE_CHECK: no metadata server)."""
    code, report = check(
        GEMINI_BACKEND="vertex",
        GOOGLE_CLOUD_PROJECT="tinkerbell-nowhere",
        HOME=str(tmp_path),
        CLOUDSDK_CONFIG=str(tmp_path / "gcloud"),
        NO_GCE_CHECK="True",
    )
    assert code == 3
    assert report["step"] == "list_models"
    assert "gemini_credentials" in report["reason"]
