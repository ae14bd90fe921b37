"""Property tests over the request path of POST /v1/strategies (issue 4 item 5).

``tests/unit/test_validation.py`` has the example-based rules and two
properties (brief trimming, unknown keys). These add the stronger claims:

* nothing a client can send makes the parsers raise anything but
  ``InvalidArgument`` (which the HTTP layer turns into a 400), and every
  refusal is well formed (it names a field of the request, no internals);
* a valid request survives the trip through JSON, validation and storage
  unchanged, and validation is idempotent (a stored request validates to itself);
* the Idempotency-Key rules and the request fingerprint behave as SPEC §2.2 says.
"""

from __future__ import annotations

import json
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from functions.http import read_json_object
from functions.submit import FALSE_WORDS, TRUE_WORDS, _form_bool
from shared import idempotency
from shared.errors import InvalidArgument
from shared.models import StrategyRequest, TaskRequest
from shared.settings import Settings
from shared.validation import parse_strategy_request, to_task_request

MAX_BRIEF = 200
MAX_URLS = 4
SETTINGS = Settings(
    google_cloud_project="demo-unit-tests",
    max_brief_chars=MAX_BRIEF,
    max_urls=MAX_URLS,
    max_url_chars=2_048,
)
WIRE_FIELDS = tuple(StrategyRequest.model_fields)
PROPERTY = settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])

# ------------------------------------------------------------------ strategies

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.text(max_size=10), inner, max_size=5),
    ),
    max_leaves=20,
)
# Objects whose keys are mostly the real field names, with values of any JSON type:
# the shape most likely to reach deep into validation.
field_objects = st.dictionaries(
    st.one_of(st.sampled_from(WIRE_FIELDS), st.text(max_size=8)),
    json_values,
    max_size=len(WIRE_FIELDS) + 1,
)

labels = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=10).filter(
    lambda s: not s.startswith("-")
)
public_hosts = st.one_of(
    st.builds(lambda a, b: f"{a}.{b}", labels, st.sampled_from(["com", "ro", "de", "org"])),
    st.sampled_from(["8.8.8.8", "1.1.1.1", "[2606:4700:4700::1111]"]),
)
url_paths = st.text(string.ascii_letters + string.digits + "-._~/%?=&", max_size=40)
public_urls = st.builds(
    lambda scheme, host, path: f"{scheme}://{host}/{path}",
    st.sampled_from(["http", "https"]),
    public_hosts,
    url_paths,
)
language_tags = st.from_regex(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}", fullmatch=True).filter(
    lambda tag: len(tag) <= 35
)
briefs = st.text(min_size=1, max_size=MAX_BRIEF).filter(lambda b: 1 <= len(b.strip()) <= MAX_BRIEF)


@st.composite
def valid_bodies(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {"brief": draw(briefs)}
    if draw(st.booleans()):
        body["urls"] = draw(st.lists(public_urls, max_size=MAX_URLS))
    if draw(st.booleans()):
        body["language"] = draw(language_tags)
    for name in ("image", "grounding"):
        if draw(st.booleans()):
            body[name] = draw(st.booleans())
    return body


def validate(data: Any) -> TaskRequest:
    return to_task_request(parse_strategy_request(data), SETTINGS)


def _well_formed(error: InvalidArgument, data: Any) -> None:
    assert error.code == "invalid_argument"
    assert error.http_status == 400
    assert error.message
    assert "Traceback" not in error.message
    assert "pydantic" not in error.message.lower()
    if error.field is not None:
        known = set(WIRE_FIELDS) | (set(map(str, data)) if isinstance(data, dict) else set())
        assert error.field in known, error.field
        assert error.message.startswith(error.field), error.message


# ---------------------------------------------- only InvalidArgument, ever


@PROPERTY
@given(json_values)
def test_any_json_value_is_accepted_or_refused_cleanly(data: Any) -> None:
    try:
        validate(data)
    except InvalidArgument as error:
        _well_formed(error, data)


@PROPERTY
@given(field_objects)
def test_any_object_with_the_real_field_names_is_accepted_or_refused_cleanly(
    data: dict[str, Any],
) -> None:
    try:
        request = validate(data)
    except InvalidArgument as error:
        _well_formed(error, data)
        return
    # Accepted: then it obeys every rule of SPEC §2.2.
    assert 1 <= len(request.brief) <= MAX_BRIEF
    assert request.brief == request.brief.strip()
    assert len(request.urls) <= MAX_URLS
    assert len(set(request.urls)) == len(request.urls)
    assert all(url.lower().startswith(("http://", "https://")) for url in request.urls)


@PROPERTY
@given(st.binary(max_size=200))
def test_any_bytes_as_a_json_body_are_parsed_or_refused_cleanly(raw: bytes) -> None:
    try:
        data = read_json_object(raw)
    except InvalidArgument as error:
        _well_formed(error, None)
        return
    try:
        validate(data)
    except InvalidArgument as error:
        _well_formed(error, data)


@PROPERTY
@given(json_values)
def test_strict_json_reads_back_what_json_writes(value: Any) -> None:
    assert read_json_object(json.dumps(value).encode()) == value
    assert read_json_object(json.dumps(value, ensure_ascii=False).encode()) == value


@given(st.text(max_size=12))
def test_form_booleans_are_the_documented_words_only(word: str) -> None:
    normal = word.strip().lower()
    try:
        value = _form_bool("image", word)
    except InvalidArgument as error:
        assert normal not in TRUE_WORDS | FALSE_WORDS
        assert error.field == "image"
        return
    assert value is (normal in TRUE_WORDS)
    assert normal in TRUE_WORDS | FALSE_WORDS


# ------------------------------------------------------- valid round trips


@PROPERTY
@given(valid_bodies())
def test_valid_requests_survive_json_validation_and_storage(body: dict[str, Any]) -> None:
    request = validate(read_json_object(json.dumps(body).encode()))

    assert request.brief == body["brief"].strip()
    assert request.urls == list(dict.fromkeys(body.get("urls", [])))
    assert request.language == body.get("language", "en")
    assert request.image is body.get("image", True)
    assert request.grounding is body.get("grounding", False)
    assert request.pdf is None
    # As stored in Firestore and read back by the worker.
    stored = request.model_dump(mode="python")
    assert TaskRequest.model_validate(stored) == request
    assert TaskRequest.model_validate_json(request.model_dump_json()) == request


@PROPERTY
@given(valid_bodies())
def test_validation_is_idempotent(body: dict[str, Any]) -> None:
    once = validate(body)
    again = validate(once.model_dump(exclude={"pdf", "revision"}))
    assert again == once


@PROPERTY
@given(valid_bodies(), st.sampled_from(WIRE_FIELDS))
def test_dropping_an_optional_field_means_its_default(body: dict[str, Any], name: str) -> None:
    assume(name not in ("brief", "upload_id"))
    without = {k: v for k, v in body.items() if k != name}
    default = StrategyRequest.model_fields[name].get_default(call_default_factory=True)
    assert validate(without) == validate({**without, name: default})


# ------------------------------------------------------- Idempotency-Key


@given(st.text(max_size=140))
def test_keys_are_exactly_1_to_128_printable_ascii(key: str) -> None:
    allowed = 1 <= len(key) <= 128 and all(" " <= c <= "~" for c in key)
    if allowed:
        assert idempotency.check_key(key) == key
    else:
        with pytest.raises(InvalidArgument) as info:
            idempotency.check_key(key)
        assert info.value.message.startswith("Idempotency-Key")


@given(st.text(string.printable[:95], min_size=1, max_size=128))
def test_every_printable_ascii_key_is_accepted(key: str) -> None:
    assume(all(" " <= c <= "~" for c in key))
    assert idempotency.check_key(key) == key


@PROPERTY
@given(valid_bodies(), st.text(" \t\n", max_size=3), st.text(" \t\n", max_size=3))
def test_fingerprint_ignores_what_validation_normalises(
    body: dict[str, Any], before: str, after: str
) -> None:
    padded = {**body, "brief": before + body["brief"] + after}
    if body.get("urls"):
        padded["urls"] = body["urls"] + body["urls"][:1]  # a repeat is dropped
    assume(len(padded.get("urls", [])) <= MAX_URLS or not body.get("urls"))
    assume(len(padded["brief"].strip()) <= MAX_BRIEF)
    assert idempotency.fingerprint(validate(padded)) == idempotency.fingerprint(validate(body))


@PROPERTY
@given(valid_bodies(), valid_bodies())
def test_fingerprint_tells_different_requests_apart(a: dict[str, Any], b: dict[str, Any]) -> None:
    first, second = validate(a), validate(b)
    same = idempotency.fingerprint(first) == idempotency.fingerprint(second)
    assert same == (first == second)
