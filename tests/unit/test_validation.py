"""SPEC §2.2 request validation: ``parse_strategy_request`` (wire model, strict,
no unknown fields) and ``to_task_request`` (field rules, limits from settings)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from shared.errors import InvalidArgument
from shared.models import StrategyRequest, TaskRequest
from shared.settings import Settings
from shared.validation import parse_strategy_request, to_task_request

MAX_BRIEF = 50
MAX_URLS = 2
# Explicit values win over the environment, so the tests do not depend on it.
SETTINGS = Settings(
    google_cloud_project="demo-unit-tests",
    max_brief_chars=MAX_BRIEF,
    max_urls=MAX_URLS,
    max_url_chars=2_048,
)
WIRE_FIELDS = set(StrategyRequest.model_fields)


def validate(data: Any) -> TaskRequest:
    return to_task_request(parse_strategy_request(data), SETTINGS)


def refusal(data: Any) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as info:
        validate(data)
    error = info.value
    assert error.code == "invalid_argument"
    assert error.http_status == 400
    if error.field is not None:
        assert error.message.startswith(error.field), error.message
    return error


# ------------------------------------------------------------------ happy path


def test_minimal_request_gets_the_spec_defaults() -> None:
    request = validate({"brief": "Launch a vegan bakery in Cluj"})
    assert request == TaskRequest(
        brief="Launch a vegan bakery in Cluj",
        urls=[],
        language="en",
        image=True,
        grounding=False,
        pdf=None,
    )


def test_full_request_is_kept() -> None:
    request = validate(
        {
            "brief": "Launch",
            "urls": ["https://example.com/a", "http://8.8.8.8/"],
            "language": "de-AT",
            "image": False,
            "grounding": True,
            "upload_id": "up_123-ABC",
        }
    )
    assert request.urls == ["https://example.com/a", "http://8.8.8.8/"]
    assert request.language == "de-AT"
    assert request.image is False
    assert request.grounding is True


def test_parse_returns_the_wire_model() -> None:
    parsed = parse_strategy_request({"brief": "x", "upload_id": "abc"})
    assert isinstance(parsed, StrategyRequest)
    assert parsed.upload_id == "abc"


# ------------------------------------------------------------------ body shape


@pytest.mark.parametrize(
    "body",
    [
        pytest.param([], id="list"),
        pytest.param("brief", id="string"),
        pytest.param(None, id="null"),
        pytest.param(42, id="number"),
    ],
)
def test_body_must_be_an_object(body: Any) -> None:
    refusal(body)


# ------------------------------------------------------------------ brief


def test_missing_brief() -> None:
    error = refusal({"urls": []})
    assert error.field == "brief"
    assert "required" in error.message


@pytest.mark.parametrize(
    "brief",
    [
        pytest.param("", id="empty"),
        pytest.param("   ", id="spaces"),
        pytest.param("\n\t \r\n", id="mixed-whitespace"),
        pytest.param("\u00a0\u2003", id="unicode-whitespace"),
    ],
)
def test_empty_brief(brief: str) -> None:
    error = refusal({"brief": brief})
    assert error.field == "brief"
    assert error.message == "brief: must not be empty"


@pytest.mark.parametrize(
    "brief",
    [
        pytest.param(5, id="int"),
        pytest.param(None, id="null"),
        pytest.param(["a"], id="list"),
        pytest.param({"text": "a"}, id="object"),
        pytest.param(True, id="bool"),
        pytest.param(b"bytes", id="bytes"),
    ],
)
def test_non_string_brief(brief: Any) -> None:
    error = refusal({"brief": brief})
    assert error.field == "brief"


def test_brief_at_the_limit_is_accepted() -> None:
    assert validate({"brief": "x" * MAX_BRIEF}).brief == "x" * MAX_BRIEF


def test_brief_too_long() -> None:
    error = refusal({"brief": "x" * (MAX_BRIEF + 1)})
    assert error.field == "brief"
    assert str(MAX_BRIEF) in error.message


def test_brief_length_counts_after_trimming() -> None:
    padded = "   " + "x" * MAX_BRIEF + "\n\n"
    assert validate({"brief": padded}).brief == "x" * MAX_BRIEF


def test_brief_is_stored_trimmed_but_inner_whitespace_kept() -> None:
    assert validate({"brief": "  two\n\nlines  \t"}).brief == "two\n\nlines"


# ------------------------------------------------------------------ unknown fields


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"brief": "x", "foo": 1}, "foo", id="one"),
        pytest.param({"brief": "x", "zzz": 1, "aaa": 2}, "zzz", id="first-of-two"),
        pytest.param({"brief": "x", "pdf": "JVBERi0="}, "pdf", id="pdf-in-json"),
        pytest.param({"brief": "x", "Brief": "y"}, "Brief", id="case-differs"),
        pytest.param({"brief": "x", "uid": "someone-else"}, "uid", id="uid"),
    ],
)
def test_unknown_field_is_named(body: dict[str, Any], field: str) -> None:
    error = refusal(body)
    assert error.field == field
    assert error.message.startswith(f"{field}:")


# ------------------------------------------------------------------ urls


@pytest.mark.parametrize(
    "urls",
    [
        pytest.param("https://example.com", id="string"),
        pytest.param({"0": "https://example.com"}, id="object"),
        pytest.param(None, id="null"),
        pytest.param([1], id="list-of-int"),
        pytest.param(["https://example.com", None], id="list-with-null"),
        pytest.param([["https://example.com"]], id="nested-list"),
    ],
)
def test_urls_must_be_a_list_of_strings(urls: Any) -> None:
    error = refusal({"brief": "x", "urls": urls})
    assert error.field == "urls"


def test_too_many_urls() -> None:
    urls = [f"https://example{i}.com/" for i in range(MAX_URLS + 1)]
    error = refusal({"brief": "x", "urls": urls})
    assert error.field == "urls"
    assert str(MAX_URLS) in error.message


def test_max_urls_accepted() -> None:
    urls = [f"https://example{i}.com/" for i in range(MAX_URLS)]
    assert validate({"brief": "x", "urls": urls}).urls == urls


@pytest.mark.parametrize(
    ("urls", "index"),
    [
        pytest.param(["http://localhost/"], 0, id="localhost-first"),
        pytest.param(["https://example.com/", "http://127.1/"], 1, id="loopback-second"),
        pytest.param(["ftp://example.com/"], 0, id="ftp"),
        pytest.param(["https://example.com/", "http://u:p@example.com/"], 1, id="userinfo"),
        pytest.param(["not a url"], 0, id="garbage"),
    ],
)
def test_bad_url_names_its_index(urls: list[str], index: int) -> None:
    error = refusal({"brief": "x", "urls": urls})
    assert error.field == "urls"
    assert error.message.startswith(f"urls[{index}]:")


def test_url_length_limit_comes_from_settings() -> None:
    settings = Settings(google_cloud_project="demo-unit-tests", max_url_chars=30)
    request = parse_strategy_request({"brief": "x", "urls": ["https://example.com/" + "a" * 20]})
    with pytest.raises(InvalidArgument) as info:
        to_task_request(request, settings)
    assert info.value.field == "urls"
    assert info.value.message.startswith("urls[0]:")


def test_duplicate_urls_are_removed_keeping_order() -> None:
    request = validate({"brief": "x", "urls": ["https://b.example/", "https://b.example/"]})
    assert request.urls == ["https://b.example/"]
    settings = Settings(google_cloud_project="demo-unit-tests", max_urls=5)
    parsed = parse_strategy_request(
        {
            "brief": "x",
            "urls": [
                "https://b.example/",
                "https://a.example/",
                "https://b.example/",
                "https://c.example/",
                "https://a.example/",
            ],
        }
    )
    assert to_task_request(parsed, settings).urls == [
        "https://b.example/",
        "https://a.example/",
        "https://c.example/",
    ]


# ------------------------------------------------------------------ language


@pytest.mark.parametrize(
    "tag",
    [
        pytest.param("en", id="en"),
        pytest.param("ro", id="ro"),
        pytest.param("de-AT", id="de-AT"),
        pytest.param("zh-Hant-TW", id="zh-Hant-TW"),
        pytest.param("es-419", id="es-419"),
        pytest.param("fil", id="three-letter"),
        pytest.param("sr-Latn-RS", id="sr-Latn-RS"),
    ],
)
def test_language_tags_accepted(tag: str) -> None:
    assert validate({"brief": "x", "language": tag}).language == tag


@pytest.mark.parametrize(
    "tag",
    [
        pytest.param("english", id="word"),
        pytest.param("e", id="one-letter"),
        pytest.param("en_US", id="underscore"),
        pytest.param("", id="empty"),
        pytest.param("en-", id="trailing-hyphen"),
        pytest.param("en--US", id="double-hyphen"),
        pytest.param("12", id="digits"),
        pytest.param("en US", id="space"),
        pytest.param("en-abcdefghi", id="subtag-too-long"),
        pytest.param("x" * 40, id="40-char-junk"),
        pytest.param("en-" + "-".join(["abcdefgh"] * 4), id="too-long-overall"),
    ],
)
def test_language_tags_rejected(tag: str) -> None:
    error = refusal({"brief": "x", "language": tag})
    assert error.field == "language"


def test_language_must_be_a_string() -> None:
    assert refusal({"brief": "x", "language": None}).field == "language"
    assert refusal({"brief": "x", "language": 1}).field == "language"


# ------------------------------------------------------------------ booleans


@pytest.mark.parametrize("field", ["image", "grounding"])
@pytest.mark.parametrize(
    "value",
    [
        pytest.param("true", id="string-true"),
        pytest.param("false", id="string-false"),
        pytest.param(1, id="one"),
        pytest.param(0, id="zero"),
        pytest.param(None, id="null"),
        pytest.param("yes", id="yes"),
    ],
)
def test_booleans_must_be_real_booleans(field: str, value: Any) -> None:
    error = refusal({"brief": "x", field: value})
    assert error.field == field


@pytest.mark.parametrize("value", [True, False])
def test_booleans_accepted(value: bool) -> None:
    request = validate({"brief": "x", "image": value, "grounding": value})
    assert request.image is value
    assert request.grounding is value


# ------------------------------------------------------------------ upload_id


@pytest.mark.parametrize(
    "upload_id",
    [
        pytest.param("abc", id="short"),
        pytest.param("up_123-ABC", id="mixed"),
        pytest.param("a" * 64, id="max-length"),
    ],
)
def test_upload_id_accepted(upload_id: str) -> None:
    validate({"brief": "x", "upload_id": upload_id})


@pytest.mark.parametrize(
    "upload_id",
    [
        pytest.param("", id="empty"),
        pytest.param("../etc/passwd", id="path-traversal"),
        pytest.param("a/b", id="slash"),
        pytest.param("a b", id="space"),
        pytest.param("a.pdf", id="dot"),
        pytest.param("a" * 65, id="too-long"),
        pytest.param("abc\n", id="trailing-newline"),
        pytest.param("ü", id="non-ascii"),
    ],
)
def test_upload_id_rejected(upload_id: str) -> None:
    assert refusal({"brief": "x", "upload_id": upload_id}).field == "upload_id"


def test_upload_id_must_be_a_string() -> None:
    assert refusal({"brief": "x", "upload_id": 7}).field == "upload_id"


# ------------------------------------------------------------------ properties

_whitespace = st.text(alphabet=" \t\n\r\u00a0\u2003\u3000", max_size=5)


@given(
    before=_whitespace,
    core=st.text(min_size=1, max_size=MAX_BRIEF),
    after=_whitespace,
)
def test_property_any_brief_that_strips_to_allowed_length_is_accepted_and_stripped(
    before: str, core: str, after: str
) -> None:
    brief = before + core + after
    assume(1 <= len(brief.strip()) <= MAX_BRIEF)
    assert validate({"brief": brief}).brief == brief.strip()


@given(
    st.dictionaries(
        keys=st.text(min_size=1, max_size=20).filter(lambda k: k not in WIRE_FIELDS),
        values=st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10)),
        min_size=1,
        max_size=3,
    )
)
def test_property_any_extra_key_is_rejected_naming_it(extra: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_strategy_request({"brief": "hello", **extra})
    assert info.value.field == next(iter(extra))
    assert info.value.message.startswith(f"{info.value.field}:")
