"""The model routes of both APIs: generateContent (plain and streamed), countTokens, and the
Models API (list and get), each answering as the real API does."""

from __future__ import annotations

import time
from dataclasses import replace
from urllib.parse import urlsplit

from werkzeug.wrappers import Response

from .answers import blocked_stream_prefix, build_answer, split_stream, tokens
from .calls import FILE_ID_PATTERN, GenerateCall, check_call, request_parts
from .common import (
    COUNT,
    GENERATE,
    JSON,
    MATCH_TEXT_CHARS,
    MODELS,
    ApiError,
    as_float,
    make_page_token,
    page_token_offset,
)
from .exchange import Exchange, event_stream, json_answer
from .models import ROUTED_MODELS, ServedModel, model_not_found
from .vertex import (
    VertexTarget,
    as_vertex_answer,
    check_gcs_files,
    vertex_model_not_found,
    vertex_resource,
    vertex_serves,
)

__all__ = ["count_tokens", "generate", "get_model", "get_vertex_model", "list_models"]


def served_model(
    exchange: Exchange,
    ver: str,
    model_id: str,
    method: str = GENERATE,
    vertex: VertexTarget | None = None,
) -> ServedModel:
    """The model behind the path's id, or the 404 the API answers for it."""
    config = exchange.state.config
    model = config.served_model(model_id)
    if vertex is not None:
        extra = model_id in config.extra_models
        if model is None or not vertex_serves(model_id, vertex.location, extra):
            raise ApiError(404, vertex_model_not_found(vertex.project, vertex.location, model_id))
        return model
    if model is None:
        raise ApiError(404, model_not_found(model_id, ver, method))
    return model


def check_files(exchange: Exchange, file_uris: list[str]) -> None:
    """A prompt may only use files that exist here and are ACTIVE, as on the real API."""
    now = time.time()
    for uri in file_uris:
        found = FILE_ID_PATTERN.search(urlsplit(uri).path or uri)
        record = exchange.state.file(found.group(1)) if found else None
        if record is None:
            raise ApiError(400, f"The file {uri} does not exist or was deleted.")
        state = record.state(now)
        if state != "ACTIVE":
            raise ApiError(
                400,
                f"The File {record.file_id} is not in an ACTIVE state (it is {state}) "
                "and usage is not allowed.",
            )


def generate(
    exchange: Exchange,
    ver: str,
    model_id: str,
    stream: bool,
    vertex: VertexTarget | None = None,
) -> Response:
    exchange.note(model=model_id)
    raw, body = exchange.read_raw_json()
    config = exchange.state.config
    model = config.served_model(model_id)
    image_model = model is not None and model.image_output
    call = GenerateCall.parse(model_id, stream, body, image_model)
    if vertex is None and model_id in ROUTED_MODELS:
        call = replace(call, routed_to=ROUTED_MODELS[model_id])
    exchange.note(
        endpoint=call.kind,
        match_text=call.text[:MATCH_TEXT_CHARS],
        has_file_part=call.has_file_part,
        file_uris=call.file_uris,
        tools=call.tools,
        response_modalities=call.modalities,
        response_schema=call.schema is not None,
    )
    model = served_model(exchange, ver, model_id, vertex=vertex)
    check_call(call, model)
    # The model id in the path is matchable too, e.g. to fail only the image model.
    haystack = f"{raw.decode('utf-8', errors='replace')}\n{exchange.request.path}"
    shaping = exchange.apply_fault(call.kind, haystack, config.call_latency())
    if vertex is None:
        check_files(exchange, call.file_uris)
    else:
        check_gcs_files(config.storage_emulator_host, call.file_uris)
    image_format = shaping.image_format or config.image_format
    answer = build_answer(call, model, config.image_size, image_format, shaping)
    if vertex is not None:
        answer = as_vertex_answer(answer)
    if not stream:
        return json_answer(200, answer)
    prefix = blocked_stream_prefix(call, shaping)
    pieces = shaping.stream_pieces or config.stream_pieces
    pause_s = config.stream_pause_s if shaping.stream_pause_s is None else shaping.stream_pause_s
    events = split_stream(answer, call.digest, prefix, pieces)
    return event_stream(
        events,
        pause_s,
        lambda: exchange.note(first_event_at=time.time()),
        exchange.request.environ.get("werkzeug.socket"),
    )


def count_tokens(
    exchange: Exchange, ver: str, model_id: str, vertex: VertexTarget | None = None
) -> Response:
    exchange.note(model=model_id)
    raw, body = exchange.read_raw_json()
    text = "\n".join(p["text"] for p in request_parts(body) if isinstance(p.get("text"), str))
    exchange.note(match_text=text[:MATCH_TEXT_CHARS])
    served_model(exchange, ver, model_id, COUNT, vertex)
    exchange.apply_fault(COUNT, f"{raw.decode('utf-8', errors='replace')}\n{exchange.target}")
    return json_answer(200, {"totalTokens": tokens(text)})


def list_models(exchange: Exchange, vertex: bool = False) -> Response:
    """``GET /{ver}/models``: paged (pageSize default 50, at most 1000; opaque pageToken).

    On Vertex AI (``GET /v1beta1/publishers/google/models``) the page is
    ``publisherModels``, PublisherModel resources."""
    exchange.read_body()
    exchange.apply_fault(MODELS, exchange.target)
    page_size = as_float(exchange.arg("pageSize", "50"))
    if page_size is None or page_size < 0:
        raise ApiError(400, "page_size must be a non-negative integer")
    size = min(1000, int(page_size) or 50)
    start = page_token_offset(exchange.arg("pageToken"))
    models = exchange.state.config.served_models()
    page = models[start : start + size]
    payload: JSON = (
        {"publisherModels": [vertex_resource(m) for m in page]}
        if vertex
        else {"models": [m.resource() for m in page]}
    )
    if start + len(page) < len(models):
        payload["nextPageToken"] = make_page_token(start + len(page))
    return json_answer(200, payload)


def get_model(exchange: Exchange, ver: str, model_id: str) -> Response:
    exchange.read_body()
    exchange.note(model=model_id)
    model = served_model(exchange, ver, model_id)
    exchange.apply_fault(MODELS, exchange.target)
    return json_answer(200, model.resource())


def get_vertex_model(exchange: Exchange, model_id: str) -> Response:
    """``GET /{ver}/publishers/google/models/{id}``: not location-scoped."""
    exchange.read_body()
    exchange.note(model=model_id)
    model = exchange.state.config.served_model(model_id)
    if model is None:
        raise ApiError(404, f"Publisher Model `publishers/google/models/{model_id}` not found.")
    exchange.apply_fault(MODELS, exchange.target)
    return json_answer(200, vertex_resource(model))
