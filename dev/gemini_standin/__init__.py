"""Local stand-in for the Gemini REST API, for the local stack and the tests.

Why it exists: the functions talk to Gemini through the unmodified ``google-genai`` SDK. Pointing
the SDK's ``base_url`` here lets the whole pipeline run offline and without an API key, and lets
tests inject latency and errors. The wire facts it follows are in ``GEMINI_WIRE.md``. It is as
strict as the real Developer API where our worker could trip: unknown model ids answer 404,
image models refuse JSON mode, text models refuse image output, unsupported aspect ratios
answer 400, and a request deadline (``X-Server-Timeout``) ends in 504 DEADLINE_EXCEEDED.

Everything it makes up is marked ``[stand-in sample]`` so that nobody can mistake it for a real
model's answer. Answers are deterministic: the same request gives the same content.

API routes (under ``/v1beta/`` and ``/v1/``; header ``x-goog-api-key`` required, any value):

- ``POST /{ver}/models/{model}:generateContent`` and ``:streamGenerateContent?alt=sse``;
  ``{model}`` must be in ``SERVED_MODELS`` (or config ``extra_models``), else 404 NOT_FOUND.
  Text answers report ``thoughtsTokenCount``; image models answer a thought text part and a
  thought PNG (``"thought": true``), then a text part and a JPEG (config ``image_format``);
  ``googleSearch`` answers carry redirect-link ``groundingChunks`` and ``searchEntryPoint``.
- ``POST /{ver}/models/{model}:countTokens`` -> ``{"totalTokens": N}``
- ``GET /{ver}/models?pageSize=&pageToken=`` and ``GET /{ver}/models/{model}`` (Model resource)
- ``POST /upload/{ver}/files`` (resumable start), then ``POST`` chunks to the upload URL
- ``GET /{ver}/files``, ``GET /{ver}/files/{id}``, ``DELETE /{ver}/files/{id}``

Vertex AI routes (under ``/v1/`` and ``/v1beta1/``; header ``Authorization: Bearer <token>``
required, any token; without one 401 UNAUTHENTICATED, an API key instead is refused too):

- ``POST /{ver}/projects/{project}/locations/{location}/publishers/google/models/{model}:``
  ``generateContent`` and ``:streamGenerateContent?alt=sse``, ``:countTokens``: the same
  served-model table, but a model Vertex AI does not serve at that location (every Gemini 3
  model at "global", the GA Flash ones at "us"/"eu" too) answers Vertex AI's 404. Prompts
  name PDFs as ``gs://bucket/object``: an object that does not exist in the Cloud Storage
  emulator (``--storage-emulator-host``, default ``$STORAGE_EMULATOR_HOST``) answers 400
  INVALID_ARGUMENT; File API URIs answer 400. Answers carry Vertex AI's ``createTime``,
  ``usageMetadata.trafficType`` and ``groundingChunks[].web.domain``.
- ``GET /v1beta1/publishers/google/models`` (``publisherModels``; v1 has no listing) and
  ``GET /{ver}/publishers/google/models/{model}`` (PublisherModel resource)

Each logged request says which API it spoke (``"backend": "developer"|"vertex"``).

Every API route honours the ``X-Server-Timeout`` header (seconds, as the SDK sends it): injected
latency longer than the deadline waits until the deadline, then answers 504.

Control routes (no key), for tests and the local stack:

- ``GET /_standin/health`` -> ``{"ok": true, "pid": ..., "started_at": ...}``
- ``GET|POST|DELETE /_standin/faults`` -> list the rules / add one (``{"id": ...}``) / clear them;
  the fields are documented on ``FaultRule`` (shapings: ``finish_reason``, ``block_reason``,
  ``bad_json``, ``schema_invalid``, ``image_format``)
- ``GET|POST /_standin/config`` -> ``{"latency_s", "latency_jitter_s", "file_processing_s",
  "image_size", "image_format" ("jpeg"|"png"), "extra_models" (ids served besides SERVED_MODELS),
  "storage_emulator_host", ...}`` (all fields: ``Config``)
- ``POST /_standin/reset`` -> faults, config, request log and files back to the start
- ``GET /_standin/requests?contains=&endpoint=`` -> ``{"requests": [...]}``
- ``GET /_standin/requests/max_concurrency?contains=&endpoint=`` -> peak number of overlapping
  requests, so that a test can prove concurrency without asserting timings

Run: ``python -m dev.gemini_standin --host 127.0.0.1 --port 8090 [--storage-emulator-host URL]``.

Where things are: ``models`` (the served model ids), ``calls`` (reading a request),
``answers`` (building the answer and its stream events), ``schema_sample`` and
``strategy_sample`` (the answer's JSON), ``images`` (previews, drawn by Pillow),
``file_store`` and ``file_api`` (the File API), ``vertex`` (Vertex AI's differences),
``config``, ``faults`` and ``state`` (what the control API changes), ``exchange`` (one
request: body, deadline, faults, answers), ``generate_api`` (the model routes), ``app``
(routing and credentials, on werkzeug) and ``server`` (the threaded server and the command
line). docs/decisions/0008-stand-in-on-werkzeug.md says why werkzeug.
"""

from .answers import SEARCH_TOKENS, URL_CONTEXT_TOKENS_PER_URL, answer_text
from .calls import BLOCK_REASONS, FINISH_REASONS, GenerateCall, Shaping
from .common import MARKER
from .config import Config
from .images import make_jpeg, make_png
from .models import SERVED_MODELS
from .server import StandinServer, main, serve
from .strategy_sample import is_strategy_schema
from .vertex import VERTEX_MULTI_REGION_MODELS

__all__ = [
    "BLOCK_REASONS",
    "FINISH_REASONS",
    "MARKER",
    "SEARCH_TOKENS",
    "SERVED_MODELS",
    "URL_CONTEXT_TOKENS_PER_URL",
    "VERTEX_MULTI_REGION_MODELS",
    "Config",
    "GenerateCall",
    "Shaping",
    "StandinServer",
    "answer_text",
    "is_strategy_schema",
    "main",
    "make_jpeg",
    "make_png",
    "serve",
]
