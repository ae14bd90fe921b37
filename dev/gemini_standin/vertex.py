"""Vertex AI (docs/gemini.md, "Vertex AI"): the same model ids, project-scoped paths, OAuth
bearer tokens instead of API keys, and Cloud Storage URIs instead of the File API."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from urllib.error import HTTPError, URLError
from urllib.parse import quote
from urllib.request import ProxyHandler, build_opener

from .common import JSON, ApiError, rfc3339
from .models import ServedModel

VERTEX_API_VERSIONS = ("v1", "v1beta1")  # v1: GA features; v1beta1: previews (and the listing)
# Where Vertex AI serves the Gemini 3 models: all at "global"; the GA Flash models also at
# the "us" and "eu" multi-regions; none of them in a single region (such as europe-west1).
VERTEX_GLOBAL = "global"
VERTEX_MULTI_REGIONS = ("us", "eu")
VERTEX_MULTI_REGION_MODELS = frozenset(
    {
        "gemini-3.8-flash",
        "gemini-3.7-flash",
        "gemini-3.6-flash",
        "gemini-3.5-flash",
        "gemini-3.5-flash-lite",
        "gemini-3.1-flash-lite",
    }
)
VERTEX_LOCATION_PATTERN = re.compile(r"[a-z][a-z0-9-]{0,62}")
VERTEX_UNAUTHENTICATED = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, "
    "login cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)
VERTEX_NO_API_KEYS = (
    "API keys are not supported by this API. Expected OAuth2 access token or other "
    "authentication credentials that assert a principal. See "
    "https://cloud.google.com/docs/authentication"
)


def vertex_serves(model_id: str, location: str, extra: bool = False) -> bool:
    """Whether Vertex AI serves a (served) model id at a location; config extras anywhere."""
    if extra or location == VERTEX_GLOBAL:
        return True
    return location in VERTEX_MULTI_REGIONS and model_id in VERTEX_MULTI_REGION_MODELS


def vertex_model_not_found(project: str, location: str, model_id: str) -> str:
    """Vertex AI's 404 for a model it does not serve there (or at all)."""
    return (
        f"Publisher Model `projects/{project}/locations/{location}/publishers/google/models/"
        f"{model_id}` was not found or your project does not have access to it. Please ensure "
        "you are using a valid model version. For more information, see: "
        "https://cloud.google.com/vertex-ai/generative-ai/docs/learn/model-versions"
    )


def vertex_resource(model: ServedModel) -> JSON:
    """The PublisherModel resource, as ``GET /{ver}/publishers/google/models/{id}`` answers it."""
    preview = "preview" in model.model_id
    return {
        "name": f"publishers/google/models/{model.model_id}",
        "versionId": model.version,
        "openSourceCategory": "PROPRIETARY",
        "launchStage": "PUBLIC_PREVIEW" if preview else "GA",
        "versionState": "VERSION_STATE_STABLE",
    }


GCS_URI_PATTERN = re.compile(r"gs://(?P<bucket>[a-z0-9][a-z0-9._-]{1,221}[a-z0-9])/(?P<name>.+)")
# What Vertex AI answers (400) for a gs:// object it cannot read because it does not exist
# (no documented text was found; this follows the wording), and (403) for one its
# service agent may not read (as reported in googleapis/js-genai#666).
GCS_NOT_FOUND = "Cannot fetch content from the provided URL: {uri}"
GCS_FORBIDDEN = (
    "Permission denied while accessing input file. Learn more about providing the appropriate "
    "credentials: https://cloud.google.com/vertex-ai/generative-ai/docs/multimodal/"
    "document-understanding"
)


@dataclass(frozen=True)
class VertexTarget:
    """Where a Vertex AI generate call goes: its project and location (from the path)."""

    project: str
    location: str

    def __post_init__(self) -> None:
        if not VERTEX_LOCATION_PATTERN.fullmatch(self.location):
            raise ApiError(400, f"Invalid location: {self.location}")


def as_vertex_answer(answer: JSON) -> JSON:
    """A Developer API answer as Vertex AI words it: a createTime, the billing traffic type
    in the usage, and the site's domain on each search source."""
    answer = json.loads(json.dumps(answer))
    answer["createTime"] = rfc3339(time.time())
    if "usageMetadata" in answer:
        answer["usageMetadata"]["trafficType"] = "ON_DEMAND"
    for candidate in answer.get("candidates") or []:
        grounding = candidate.get("groundingMetadata") or {}
        for chunk in grounding.get("groundingChunks") or []:
            web = chunk.get("web")
            if isinstance(web, dict) and "title" in web:
                web["domain"] = web["title"]
    return answer


GCS_LOOKUP_TIMEOUT_S = 5.0
# The emulator is local: never through a proxy from the environment.
_DIRECT = build_opener(ProxyHandler({}))


def gcs_object_status(storage: str, bucket: str, name: str) -> int:
    """The Cloud Storage (emulator's) status for one object's metadata: 200, 404, ...
    0 when it cannot be reached."""
    url = f"{storage}/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}"
    try:
        with _DIRECT.open(url, timeout=GCS_LOOKUP_TIMEOUT_S) as answer:
            return int(answer.status)
    except HTTPError as exc:
        return int(exc.code)
    except (URLError, OSError):
        return 0


def check_gcs_files(storage: str, file_uris: list[str]) -> None:
    """Vertex AI reads ``gs://`` objects itself: one that does not exist in the Cloud Storage
    emulator is refused, as Vertex AI fails to read it; File API URIs are the Developer
    API's and mean nothing here."""
    for uri in file_uris:
        found = GCS_URI_PATTERN.fullmatch(uri)
        if found is None:
            raise ApiError(400, f"Unsupported file uri: {uri}")
        if not storage:
            raise ApiError(
                400,
                f"{GCS_NOT_FOUND.format(uri=uri)} [stand-in: no Cloud Storage emulator "
                "configured (--storage-emulator-host or STORAGE_EMULATOR_HOST)]",
            )
        status = gcs_object_status(storage, found["bucket"], found["name"])
        if status == 404:
            raise ApiError(400, GCS_NOT_FOUND.format(uri=uri))
        if status in (401, 403):
            raise ApiError(403, GCS_FORBIDDEN)
        if status != 200:
            raise ApiError(500, f"[stand-in] the Cloud Storage emulator answered {status}")
