"""Request validation of SPEC §2.2: from what the client sent to a ``TaskRequest``.

Limits come from the settings; every refusal names the offending field.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from shared.errors import InvalidArgument
from shared.models import RevisionRequest, StrategyRequest, TaskRequest
from shared.settings import Settings, get_settings
from shared.urls import UrlRejected, check_url, check_webhook_url

# BCP 47 in practice: a 2–3 letter language, then subtags of 1–8 alphanumerics.
_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*\Z")
MAX_LANGUAGE_CHARS = 35
# The raw urls list may hold repeats (dropped before the MAX_URLS check): this many
# entries per allowed URL at most, refused before validation.
MAX_URL_ENTRIES_PER_URL = 5
_UPLOAD_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")


def parse_strategy_request(data: Any) -> StrategyRequest:
    """Validate the raw body against the wire model, mapping errors to the SPEC shape."""
    if not isinstance(data, dict):
        raise InvalidArgument("the body must be a JSON object")
    unknown = [key for key in data if key not in StrategyRequest.model_fields]
    if unknown:
        raise InvalidArgument(f"{unknown[0]}: unknown field", field=str(unknown[0]))
    urls = data.get("urls")
    max_urls = get_settings().max_urls
    if isinstance(urls, list) and len(urls) > MAX_URL_ENTRIES_PER_URL * max(max_urls, 1):
        # Bounded before validation: a list of many short strings costs far more to
        # validate than to refuse (repeats are dropped later, so a few are allowed).
        raise InvalidArgument(f"urls: at most {max_urls} URLs", field="urls")
    try:
        return StrategyRequest.model_validate(data)
    except ValidationError as exc:
        raise _as_invalid_argument(exc) from None


def _as_invalid_argument(exc: ValidationError) -> InvalidArgument:
    first = exc.errors(include_url=False)[0]
    location = [str(part) for part in first["loc"]]
    field = location[0] if location else None
    if first["type"] == "extra_forbidden":
        return InvalidArgument(f"{field}: unknown field", field=field)
    if first["type"] == "missing":
        return InvalidArgument(f"{field}: is required", field=field)
    where = "[".join(location) + ("]" if len(location) > 1 else "")
    return InvalidArgument(f"{where}: {_describe(first['type'], first['msg'])}", field=field)


def _describe(kind: str, message: str) -> str:
    expected = {
        "string_type": "must be a string",
        "bool_type": "must be true or false",
        "list_type": "must be a list of strings",
    }
    return expected.get(kind, message[:1].lower() + message[1:])


def to_task_request(request: StrategyRequest, settings: Settings) -> TaskRequest:
    """Apply the SPEC's field rules and return the request as it will be stored."""
    brief = request.brief.strip()
    if not brief:
        raise InvalidArgument("brief: must not be empty", field="brief")
    if len(brief) > settings.max_brief_chars:
        raise InvalidArgument(
            f"brief: must be at most {settings.max_brief_chars} characters", field="brief"
        )
    urls = list(dict.fromkeys(request.urls))  # keep order, drop repeats
    if len(urls) > settings.max_urls:
        raise InvalidArgument(f"urls: at most {settings.max_urls} URLs", field="urls")
    for index, url in enumerate(urls):
        try:
            check_url(url, max_chars=settings.max_url_chars)
        except UrlRejected as exc:
            raise InvalidArgument(f"urls[{index}]: {exc}", field="urls") from None
    language = request.language.strip()
    if len(language) > MAX_LANGUAGE_CHARS or not _LANGUAGE_TAG.match(language):
        raise InvalidArgument(
            "language: must be a BCP 47 language tag such as 'en', 'ro' or 'de-AT'",
            field="language",
        )
    if request.upload_id is not None and not _UPLOAD_ID.match(request.upload_id):
        raise InvalidArgument("upload_id: is not a valid upload id", field="upload_id")
    return TaskRequest(
        brief=brief,
        urls=urls,
        language=language,
        image=request.image,
        grounding=request.grounding,
        webhook_url=checked_webhook_url(request.webhook_url, settings),
    )


def checked_webhook_url(url: str | None, settings: Settings) -> str | None:
    """A submit's or revision's webhook_url: https to a public host (SPEC §2.1)."""
    if url is None:
        return None
    try:
        return check_webhook_url(
            url, max_chars=settings.max_url_chars, allow_loopback=settings.webhook_allow_loopback
        )
    except UrlRejected as exc:
        raise InvalidArgument(f"webhook_url: {exc}", field="webhook_url") from None


def parse_revision_request(data: Any, settings: Settings) -> RevisionRequest:
    """A revision's body: the wire model, then the instruction and language rules."""
    if not isinstance(data, dict):
        raise InvalidArgument("the body must be a JSON object")
    try:
        request = RevisionRequest.model_validate(data)
    except ValidationError as exc:
        raise _as_invalid_argument(exc) from None
    instruction = request.instruction.strip()
    if not instruction:
        raise InvalidArgument("instruction: must not be empty", field="instruction")
    if len(instruction) > settings.max_instruction_chars:
        raise InvalidArgument(
            f"instruction: must be at most {settings.max_instruction_chars} characters",
            field="instruction",
        )
    language = request.language.strip() if request.language is not None else None
    if language is not None and (
        len(language) > MAX_LANGUAGE_CHARS or not _LANGUAGE_TAG.match(language)
    ):
        raise InvalidArgument(
            "language: must be a BCP 47 language tag such as 'en', 'ro' or 'de-AT'",
            field="language",
        )
    webhook_url = checked_webhook_url(request.webhook_url, settings)
    return request.model_copy(
        update={"instruction": instruction, "language": language, "webhook_url": webhook_url}
    )
