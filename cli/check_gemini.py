"""``make check-gemini``: can this key do what the worker does, with these models?

Against the configured Gemini (GEMINI_BACKEND: the Developer API with GEMINI_API_KEY, or
Vertex AI with Application Default Credentials; GEMINI_BASE_URL for a stand-in) it

1. lists the models the key can use (on Vertex AI: looks up the two configured ids, as
   the publisher models Vertex AI serves),
2. says whether GEMINI_TEXT_MODEL and GEMINI_IMAGE_MODEL are among them,
3. makes one tiny call of each kind the worker makes: schema-bound JSON with the
   ``url_context`` tool on the text model, and an image on the image model (on Vertex
   AI at GEMINI_VERTEX_LOCATION, which decides what is served),

and exits non-zero with the reason when any of it fails. The two calls cost a few
thousand tokens and one image. Nothing here prints the key.

    GEMINI_API_KEY=... make check-gemini
    GEMINI_BACKEND=vertex GEMINI_VERTEX_PROJECT=my-project make check-gemini
    python -m cli.check_gemini --json      # one JSON object, for scripts
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from shared.settings import DEMO_PROJECT_PREFIX, Settings, get_settings

# shared.gemini and shared.clients are imported once the settings are known to be
# valid (their loggers read the settings): a refused configuration is then a clear
# exit 2, not a traceback.

# Exit codes (README): 0 all good; the others say which step failed.
EXIT_OK = 0
EXIT_CONFIG = 2  # no key, or settings the worker would refuse
EXIT_LIST = 3  # the key (or on Vertex AI the credentials) cannot list models
EXIT_MODEL_MISSING = 4  # a configured id is not among the served models
EXIT_CALL_FAILED = 5  # one of the two test calls failed

CHECK_URL = "https://example.com/"


class KeyCheckAnswer(BaseModel):
    """The tiny schema of the JSON check (the worker's is MarketingStrategy)."""

    page_title: str = Field(description="The title of the web page given in the prompt.")
    ok: bool = Field(description="Always true.")


@dataclass
class Report:
    ok: bool = False
    step: str = ""
    reason: str = ""
    backend: str = ""
    text_model: str = ""
    image_model: str = ""
    served_models: list[str] = field(default_factory=list)
    text_model_served: bool = False
    image_model_served: bool = False
    json_call: dict[str, Any] = field(default_factory=dict)
    image_call: dict[str, Any] = field(default_factory=dict)


class CheckFailed(Exception):
    def __init__(self, exit_code: int, step: str, reason: str) -> None:
        super().__init__(reason)
        self.exit_code, self.step, self.reason = exit_code, step, reason


def served_models(settings: Settings) -> list[str]:
    """Ids of the models this key may call generateContent on (on Vertex AI: which of the
    configured ids it serves)."""
    from shared import clients
    from shared.gemini import call_gemini

    if settings.uses_vertex:
        return vertex_models(settings)
    ids = []
    for model in call_gemini(lambda: list(clients.gemini().models.list(config={"page_size": 100}))):
        actions = model.supported_actions or []
        if model.name and (not actions or "generateContent" in actions):
            ids.append(model.name.removeprefix("models/"))
    return sorted(ids)


def vertex_models(settings: Settings) -> list[str]:
    """The configured ids Vertex AI serves (``GET /{ver}/publishers/google/models/{id}``):
    its full listing is v1beta1-only and holds all of Model Garden, so ask for ours."""
    from google.genai.types import Model

    from shared import clients
    from shared.gemini import GeminiError, call_gemini

    def get(model_id: str) -> Model:
        return clients.gemini().models.get(model=model_id)

    found = []
    for model_id in dict.fromkeys([settings.gemini_text_model, settings.gemini_image_model]):
        try:
            model = call_gemini(functools.partial(get, model_id))
        except GeminiError as exc:
            if exc.code == "gemini_not_found":
                continue  # not served: the next step names it
            raise
        found.append((model.name or model_id).rsplit("/", 1)[-1])
    return sorted(found)


def describe_backend(settings: Settings) -> str:
    target = settings.gemini_base_url or "Google"
    if settings.uses_vertex:
        return (
            f"Vertex AI, project {settings.vertex_project}, location "
            f"{settings.gemini_vertex_location}, {settings.gemini_version} ({target})"
        )
    return f"Gemini Developer API, {settings.gemini_version} ({target})"


def check_json_call(settings: Settings) -> dict[str, Any]:
    from google.genai import types

    from shared import clients
    from shared.gemini import GeminiError, call_gemini, call_options, check_answer

    config = types.GenerateContentConfig(
        response_mime_type="application/json",
        response_schema=KeyCheckAnswer,
        tools=[types.Tool(url_context=types.UrlContext())],
        http_options=call_options(settings.gemini_strategy_timeout_s, 1),
    )
    response = call_gemini(
        lambda: clients.gemini().models.generate_content(
            model=settings.gemini_text_model,
            contents=f"Read {CHECK_URL} and answer with its title.",
            config=config,
        ),
        model=settings.gemini_text_model,
        setting="GEMINI_TEXT_MODEL",
    )
    check_answer([response])
    try:
        KeyCheckAnswer.model_validate_json(response.text or "")
    except ValidationError:
        raise GeminiError(
            "gemini_schema_mismatch", "the answer did not match the schema", retryable=False
        ) from None
    usage = response.usage_metadata
    candidate = response.candidates[0] if response.candidates else None
    url_meta = candidate.url_context_metadata if candidate else None
    return {
        "model_version": response.model_version,
        "url_context_entries": len((url_meta.url_metadata if url_meta else None) or []),
        "thoughts_tokens": (usage.thoughts_token_count or 0) if usage else 0,
        "total_tokens": (usage.total_token_count or 0) if usage else 0,
    }


def check_image_call(settings: Settings) -> dict[str, Any]:
    from google.genai import types

    from shared import clients
    from shared.gemini import GeminiError, call_gemini, call_options, check_answer, image_size

    config = types.GenerateContentConfig(
        response_modalities=["TEXT", "IMAGE"],
        image_config=types.ImageConfig(aspect_ratio=settings.gemini_image_aspect_ratio),
        http_options=call_options(settings.gemini_image_timeout_s, 1),
    )
    response = call_gemini(
        lambda: clients.gemini().models.generate_content(
            model=settings.gemini_image_model,
            contents="A small blue paper boat on a calm lake, flat illustration, no text.",
            config=config,
        ),
        model=settings.gemini_image_model,
        setting="GEMINI_IMAGE_MODEL",
    )
    check_answer([response])
    candidate = response.candidates[0] if response.candidates else None
    parts = (candidate.content.parts if candidate and candidate.content else None) or []
    images = [
        p.inline_data
        for p in parts
        if not p.thought and p.inline_data is not None and p.inline_data.data
    ]
    if not images:
        raise GeminiError("gemini_no_image", "the answer had no image", retryable=False)
    blob = images[-1]
    assert blob.data is not None
    width, height = image_size(blob.data)
    return {"mime_type": blob.mime_type, "width": width, "height": height, "bytes": len(blob.data)}


def run_checks(report: Report) -> None:
    try:
        settings = get_settings()
    except ValidationError as exc:
        raise CheckFailed(EXIT_CONFIG, "settings", _first_error(exc)) from None
    report.text_model, report.image_model = settings.gemini_text_model, settings.gemini_image_model
    report.backend = describe_backend(settings)
    needs_key = not settings.uses_vertex  # Vertex AI: the credentials are ADC's
    if (
        settings.uses_vertex
        and settings.gemini_base_url is None
        and settings.vertex_project.startswith(DEMO_PROJECT_PREFIX)
    ):
        raise CheckFailed(
            EXIT_CONFIG,
            "settings",
            f"GEMINI_BACKEND=vertex with the emulator-only project {settings.vertex_project!r}: "
            "set GEMINI_VERTEX_PROJECT (or GOOGLE_CLOUD_PROJECT) to a real project, or "
            "GEMINI_BASE_URL to a stand-in",
        )
    if needs_key and settings.gemini_api_key is None and settings.gemini_base_url is None:
        raise CheckFailed(
            EXIT_CONFIG,
            "settings",
            "GEMINI_API_KEY is not set (or GEMINI_BASE_URL, to check a stand-in)",
        )
    from shared.gemini import GeminiError

    try:
        report.served_models = served_models(settings)
    except GeminiError as exc:
        raise CheckFailed(EXIT_LIST, "list_models", f"{exc.code}: {exc.message}") from None
    report.text_model_served = settings.gemini_text_model in report.served_models
    report.image_model_served = settings.gemini_image_model in report.served_models
    missing = [
        f"{name}={model_id}"
        for name, model_id, served in (
            ("GEMINI_TEXT_MODEL", settings.gemini_text_model, report.text_model_served),
            ("GEMINI_IMAGE_MODEL", settings.gemini_image_model, report.image_model_served),
        )
        if not served
    ]
    if missing:
        raise CheckFailed(
            EXIT_MODEL_MISSING,
            "configured_models",
            f"not served for this {'project' if settings.uses_vertex else 'key'}: "
            f"{', '.join(missing)}; set a served id",
        )
    for step, check, target in (
        ("json_call", check_json_call, report.json_call),
        ("image_call", check_image_call, report.image_call),
    ):
        try:
            target.update(check(settings))
        except GeminiError as exc:
            raise CheckFailed(EXIT_CALL_FAILED, step, f"{exc.code}: {exc.message}") from None


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    return str(errors[0].get("msg", exc)) if errors else str(exc)


def print_human(report: Report) -> None:
    if report.backend:
        print(f"backend: {report.backend}")
    whose = "project (configured ids)" if report.backend.startswith("Vertex") else "key"
    print(f"models served for this {whose}: {len(report.served_models)}")
    for model_id in report.served_models:
        mark = " <- GEMINI_TEXT_MODEL" if model_id == report.text_model else ""
        mark = " <- GEMINI_IMAGE_MODEL" if model_id == report.image_model else mark
        print(f"  {model_id}{mark}")
    if report.text_model:
        print(f"GEMINI_TEXT_MODEL={report.text_model}: {_yes(report.text_model_served)}")
        print(f"GEMINI_IMAGE_MODEL={report.image_model}: {_yes(report.image_model_served)}")
    if report.json_call:
        call = report.json_call
        print(
            f"schema JSON + url_context on {report.text_model}: ok "
            f"({call['total_tokens']} tokens, {call['thoughts_tokens']} of them thinking)"
        )
    if report.image_call:
        call = report.image_call
        print(
            f"image on {report.image_model}: ok ({call['mime_type']}, "
            f"{call['width']}x{call['height']}, {call['bytes']} bytes)"
        )
    print(
        "check-gemini: ok"
        if report.ok
        else f"check-gemini FAILED at {report.step}: {report.reason}"
    )


def _yes(served: bool) -> str:
    return "served" if served else "NOT SERVED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="check-gemini", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    report = Report()
    code = EXIT_OK
    try:
        run_checks(report)
        report.ok = True
    except CheckFailed as failed:
        report.step, report.reason, code = failed.step, failed.reason, failed.exit_code
    if args.json:
        print(json.dumps(asdict(report), ensure_ascii=False))
    else:
        print_human(report)
    return code


if __name__ == "__main__":
    sys.exit(main())
