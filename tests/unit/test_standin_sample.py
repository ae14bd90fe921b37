"""The stand-in's hand-written sample strategy (issue 11, item 6).

With no key, the offline stack answers the worker's strategy call with a realistic
example in the requested language, shaped by the brief, still marked as a sample.
Requests are built as the worker builds them (``shared.gemini``); one test goes
through the real google-genai SDK to an in-process stand-in.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
from google import genai
from google.genai import _transformers, types

from dev.gemini_standin import (
    MARKER,
    GenerateCall,
    Shaping,
    StandinServer,
    answer_text,
    is_strategy_schema,
)
from shared.models import MarketingStrategy, TaskRequest
from shared.prompts import SYSTEM_INSTRUCTION, build_prompt
from tests.standin_helpers import running_standin

MODEL = "gemini-3.8-flash"


@pytest.fixture(scope="module")
def strategy_schema() -> dict[str, Any]:
    """MarketingStrategy as the SDK sends it (``responseSchema``)."""
    client = genai.Client(
        api_key="x", http_options=types.HttpOptions(base_url="http://127.0.0.1:9")
    )
    schema = _transformers.t_schema(client._api_client, MarketingStrategy)
    assert schema is not None
    dumped: dict[str, Any] = schema.model_dump(exclude_none=True, by_alias=True)
    return dumped


def strategy_call(schema: dict[str, Any], brief: str, language: str = "en") -> GenerateCall:
    body = {
        "contents": [
            {
                "role": "user",
                "parts": [{"text": build_prompt(TaskRequest(brief=brief, language=language))}],
            }
        ],
        "systemInstruction": {"parts": [{"text": SYSTEM_INSTRUCTION}]},
        "generationConfig": {"responseMimeType": "application/json", "responseSchema": schema},
    }
    return GenerateCall.parse(MODEL, True, body, False)


def sample(schema: dict[str, Any], brief: str, language: str = "en") -> MarketingStrategy:
    text = answer_text(strategy_call(schema, brief, language), Shaping())
    return MarketingStrategy.model_validate_json(text)


def assert_well_formed(strategy: MarketingStrategy) -> None:
    assert [s.step_number for s in strategy.steps] == list(range(1, len(strategy.steps) + 1))
    assert len(strategy.steps) >= 4
    assert len(strategy.channels) >= 3
    assert math.isclose(sum(c.budget_share for c in strategy.channels), 1.0, abs_tol=1e-9)
    assert 1_000 <= strategy.required_budget <= 100_000
    assert strategy.timeline_weeks is not None and 2 <= strategy.timeline_weeks <= 52
    assert strategy.kpis and strategy.key_messages and strategy.visual_brief
    assert "stand-in" not in (strategy.visual_brief or "")  # the image prompt stays clean


def test_english_sample_is_realistic_and_shaped_by_the_brief(strategy_schema: dict) -> None:
    strategy = sample(
        strategy_schema, "Specialty coffee shop near the campus in Cluj, mk-0a1b2c3d4e5f"
    )
    assert strategy.strategy_name.startswith("[stand-in sample, en] ")
    assert strategy.summary is not None and strategy.summary.startswith("[stand-in sample, en] ")
    assert "Coffee Shop" in strategy.strategy_name and "Cluj" in strategy.strategy_name
    assert "Cluj" in strategy.target_audience
    assert "students" in strategy.target_audience.lower()
    assert "mk-0a1b2c3d4e5f" not in strategy.model_dump_json()  # test markers are not subjects
    assert_well_formed(strategy)
    # No generic filler left in the fields the sample knows.
    assert "steps[0]" not in strategy.model_dump_json()


def test_romanian_sample_reads_romanian_and_takes_budget_and_length(strategy_schema: dict) -> None:
    brief = (
        "Lansăm o cafenea de specialitate în Cluj-Napoca, lângă campusul universitar. "
        "Avem 6.000 EUR pentru primele trei luni."
    )
    strategy = sample(strategy_schema, brief, "ro")
    assert strategy.strategy_name.startswith("[stand-in sample, ro] Cafeneaua din Cluj-Napoca")
    assert "săptămâni" in strategy.strategy_name
    assert strategy.summary and "[stand-in sample, ro]" in strategy.summary
    assert strategy.required_budget == 6_000
    assert strategy.timeline_weeks == 13  # three months
    assert any(c.name == "Instagram și TikTok" for c in strategy.channels)
    assert "Studenți" in strategy.target_audience
    assert_well_formed(strategy)


@pytest.mark.parametrize(
    ("brief", "language", "expected"),
    [
        ("A bakery in Iasi wants more online orders", "en", "Iasi Bakery"),
        ("O florărie din Brașov pregătește campania de 8 Martie", "ro", "Florăria din Brașov"),
        ("Launch a honey brand in Cluj", "en", "Cluj Local Food Brand"),
        ("Renovation services for old flats", "en", "“Renovation services for old flats”"),
        ("Servicii de renovare pentru apartamente vechi", "ro", "„Servicii de renovare"),
    ],
)
def test_the_name_follows_the_subject(
    strategy_schema: dict, brief: str, language: str, expected: str
) -> None:
    strategy = sample(strategy_schema, brief, language)
    assert expected in strategy.strategy_name
    assert_well_formed(strategy)


def test_other_languages_get_the_english_sample_marked_with_their_tag(
    strategy_schema: dict,
) -> None:
    strategy = sample(strategy_schema, "Ein Buchladen in Wien", "de-AT")
    assert strategy.strategy_name.startswith("[stand-in sample, de-AT] ")
    assert "Weeks" in strategy.strategy_name
    assert_well_formed(strategy)


def test_deterministic_and_unique_per_request(strategy_schema: dict) -> None:
    call = strategy_call(strategy_schema, "Bakery in Iasi mk-111111111111")
    again = strategy_call(strategy_schema, "Bakery in Iasi mk-111111111111")
    other = strategy_call(strategy_schema, "Bakery in Iasi mk-222222222222")
    first = answer_text(call, Shaping())
    assert answer_text(again, Shaping()) == first
    # The name carries the request digest: a test can find its own image call by it.
    other_name = json.loads(answer_text(other, Shaping()))["strategy_name"]
    assert other_name != json.loads(first)["strategy_name"]


def test_only_the_strategy_schema_gets_the_sample() -> None:
    plan = {
        "type": "OBJECT",
        "properties": {
            "strategy_name": {"type": "STRING"},
            "required_budget": {"type": "NUMBER", "minimum": 0},
            "steps": {"type": "ARRAY", "items": {"type": "STRING"}},
        },
        "required": ["strategy_name", "required_budget", "steps"],
    }
    assert not is_strategy_schema(plan)
    body = {
        "contents": [{"parts": [{"text": "A coffee shop in Cluj\nlanguage: ro"}]}],
        "generationConfig": {"responseMimeType": "application/json", "responseSchema": plan},
    }
    value = json.loads(answer_text(GenerateCall.parse(MODEL, False, body, False), Shaping()))
    assert value["strategy_name"].startswith("[stand-in sample, ro] strategy_name")  # generic


def test_fields_outside_the_schema_are_left_out_and_unknown_ones_kept_generic() -> None:
    schema = {
        "type": "object",
        "properties": {
            "strategy_name": {"type": "string"},
            "target_audience": {"type": "string"},
            "required_budget": {"type": "number", "minimum": 0},
            "steps": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "step_number": {"type": "integer", "minimum": 1},
                        "description": {"type": "string"},
                    },
                    "required": ["step_number", "description"],
                },
            },
            "tagline": {"type": "string"},
        },
        "required": ["strategy_name", "target_audience", "required_budget", "steps"],
    }
    assert is_strategy_schema(schema)
    body = {
        "contents": [{"parts": [{"text": "<brief>\nA coffee shop in Cluj\n</brief>"}]}],
        "generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": schema},
    }
    value = json.loads(answer_text(GenerateCall.parse(MODEL, False, body, False), Shaping()))
    assert set(value) == {"strategy_name", "target_audience", "required_budget", "steps", "tagline"}
    assert value["strategy_name"].startswith(f"{MARKER} Cluj Coffee Shop")  # no language tag
    assert value["tagline"].startswith(MARKER)


def test_schema_invalid_fault_still_breaks_the_sample(strategy_schema: dict) -> None:
    call = strategy_call(strategy_schema, "A coffee shop in Cluj")
    value = json.loads(answer_text(call, Shaping(schema_invalid=True)))
    assert "strategy_name" not in value and "steps" not in value


@pytest.fixture(scope="module")
def standin() -> Iterator[StandinServer]:
    with running_standin() as server:
        yield server


def test_through_the_sdk_as_the_worker_asks(standin: StandinServer) -> None:
    client = genai.Client(
        api_key="test-key",
        http_options=types.HttpOptions(base_url=standin.url, api_version="v1beta"),
    )
    config = types.GenerateContentConfig(
        system_instruction=SYSTEM_INSTRUCTION,
        response_mime_type="application/json",
        response_schema=MarketingStrategy,
    )
    prompt = build_prompt(TaskRequest(brief="O librărie în Timișoara", language="ro"))
    chunks = list(
        client.models.generate_content_stream(model=MODEL, contents=prompt, config=config)
    )
    strategy = MarketingStrategy.model_validate_json("".join(c.text or "" for c in chunks))
    assert strategy.strategy_name.startswith("[stand-in sample, ro] Librăria din Timișoara")
    assert_well_formed(strategy)
