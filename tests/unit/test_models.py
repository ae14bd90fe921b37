"""SPEC §3 models: MarketingStrategy (Gemini's response_schema), the task
document and its public view."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from shared.models import (
    Channel,
    MarketingStrategy,
    Progress,
    StrategyStep,
    TaskError,
    TaskPublic,
    TaskRecord,
    TaskRequest,
    TaskResult,
    TaskStatus,
    Usage,
)

MINIMAL: dict[str, Any] = {
    "strategy_name": "Bake the Town",
    "target_audience": "Young professionals in Cluj",
    "required_budget": 12_000,
    "steps": [{"step_number": 1, "description": "Open with a tasting day."}],
}
REQUIRED = ("strategy_name", "target_audience", "required_budget", "steps")


def strategy(**changes: Any) -> MarketingStrategy:
    return MarketingStrategy.model_validate({**MINIMAL, **changes})


# ------------------------------------------------------------------ MarketingStrategy


def test_minimal_strategy_and_defaults() -> None:
    s = strategy()
    assert s.required_budget == 12_000
    assert s.steps == [StrategyStep(step_number=1, description="Open with a tasting day.")]
    assert s.summary is None
    assert s.key_messages == []
    assert s.channels == []
    assert s.kpis == []
    assert s.timeline_weeks is None
    assert s.visual_brief is None


def test_full_strategy() -> None:
    s = strategy(
        summary="A short plan.",
        key_messages=["Fresh", "Local"],
        channels=[
            {"name": "Instagram", "rationale": "Young audience", "budget_share": 0.6},
            {"name": "Radio", "rationale": "Commuters", "budget_share": 0.4},
        ],
        kpis=["1,000 visits"],
        timeline_weeks=8,
        visual_brief="A warm bakery window at dawn.",
    )
    assert [c.name for c in s.channels] == ["Instagram", "Radio"]
    assert MarketingStrategy.model_validate_json(s.model_dump_json()) == s


@pytest.mark.parametrize("field", REQUIRED)
def test_required_fields(field: str) -> None:
    data = {k: v for k, v in MINIMAL.items() if k != field}
    with pytest.raises(ValidationError) as info:
        MarketingStrategy.model_validate(data)
    assert info.value.errors()[0]["loc"] == (field,)
    assert info.value.errors()[0]["type"] == "missing"


def test_required_fields_are_exactly_the_spec_ones() -> None:
    required = {name for name, f in MarketingStrategy.model_fields.items() if f.is_required()}
    assert required == set(REQUIRED)


@pytest.mark.parametrize(
    ("changes", "loc"),
    [
        pytest.param({"required_budget": -0.01}, ("required_budget",), id="negative-budget"),
        pytest.param({"required_budget": "lots"}, ("required_budget",), id="budget-not-number"),
        pytest.param({"steps": []}, ("steps",), id="no-steps"),
        pytest.param(
            {"steps": [{"step_number": 0, "description": "x"}]},
            ("steps", 0, "step_number"),
            id="step-number-zero",
        ),
        pytest.param(
            {"steps": [{"step_number": -1, "description": "x"}]},
            ("steps", 0, "step_number"),
            id="step-number-negative",
        ),
        pytest.param(
            {"steps": [{"step_number": 1}]}, ("steps", 0, "description"), id="step-no-text"
        ),
        pytest.param(
            {"channels": [{"name": "TV", "rationale": "r", "budget_share": 1.01}]},
            ("channels", 0, "budget_share"),
            id="share-above-one",
        ),
        pytest.param(
            {"channels": [{"name": "TV", "rationale": "r", "budget_share": -0.1}]},
            ("channels", 0, "budget_share"),
            id="share-negative",
        ),
        pytest.param({"timeline_weeks": 0}, ("timeline_weeks",), id="zero-weeks"),
    ],
)
def test_strategy_constraints(changes: dict[str, Any], loc: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError) as info:
        strategy(**changes)
    assert info.value.errors()[0]["loc"] == loc


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"required_budget": 0}, id="zero-budget"),
        pytest.param({"required_budget": 0.5}, id="fractional-budget"),
        pytest.param(
            {"channels": [{"name": "TV", "rationale": "r", "budget_share": 0}]}, id="share-zero"
        ),
        pytest.param(
            {"channels": [{"name": "TV", "rationale": "r", "budget_share": 1}]}, id="share-one"
        ),
        pytest.param({"timeline_weeks": 1}, id="one-week"),
    ],
)
def test_strategy_boundaries_accepted(changes: dict[str, Any]) -> None:
    strategy(**changes)


@pytest.mark.parametrize("model", [MarketingStrategy, StrategyStep, Channel])
def test_every_field_has_a_description(model: type[BaseModel]) -> None:
    for name, field in model.model_fields.items():
        assert field.description, f"{model.__name__}.{name} has no description"
        assert field.description.strip(), f"{model.__name__}.{name} has a blank description"


def test_json_schema_carries_descriptions_and_required() -> None:
    schema = MarketingStrategy.model_json_schema()
    assert set(schema["required"]) == set(REQUIRED)
    for name, prop in schema["properties"].items():
        assert prop.get("description"), name


# ------------------------------------------------------------------ Gemini response_schema


def _walk(schema: Any, path: str = "$") -> list[tuple[str, dict[str, Any]]]:
    """Every property schema under ``schema``: (path, property schema)."""
    found: list[tuple[str, dict[str, Any]]] = []
    if not isinstance(schema, dict):
        return found
    for name, prop in (schema.get("properties") or {}).items():
        found.append((f"{path}.{name}", prop))
        found.extend(_walk(prop, f"{path}.{name}"))
    if isinstance(schema.get("items"), dict):
        found.extend(_walk(schema["items"], f"{path}[]"))
    for index, option in enumerate(schema.get("anyOf") or schema.get("any_of") or []):
        found.extend(_walk(option, f"{path}|{index}"))
    return found


@pytest.fixture
def genai_client(monkeypatch: pytest.MonkeyPatch) -> Any:
    from google import genai

    for name in ("GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION"):
        monkeypatch.delenv(name, raising=False)
    # Constructing a client does not touch the network.
    return genai.Client(api_key="unit-test-key", vertexai=False)


def test_sdk_accepts_marketing_strategy_as_response_schema(genai_client: Any) -> None:
    from google.genai import _common, _transformers, models, types

    config = types.GenerateContentConfig(
        response_schema=MarketingStrategy, response_mime_type="application/json"
    )
    # The SDK's own conversion to the Gemini Developer API request body.
    wire = _common.convert_to_dict(
        models._GenerateContentConfig_to_mldev(genai_client._api_client, config, {})
    )
    assert wire["responseMimeType"] == "application/json"
    schema = wire["responseSchema"]
    direct = _transformers.t_schema(genai_client._api_client, MarketingStrategy)
    assert direct is not None
    assert schema == _common.convert_to_dict(direct)

    assert schema["type"] == "OBJECT"
    assert set(schema["required"]) == set(REQUIRED)
    props = schema["properties"]
    assert set(props) == set(MarketingStrategy.model_fields)
    assert props["required_budget"]["type"] == "NUMBER"
    assert props["required_budget"]["minimum"] == 0
    assert props["steps"]["type"] == "ARRAY"
    step = props["steps"]["items"]
    assert set(step["required"]) == {"step_number", "description"}
    assert step["properties"]["step_number"]["type"] == "INTEGER"
    assert step["properties"]["step_number"]["minimum"] == 1
    channel = props["channels"]["items"]
    assert channel["properties"]["budget_share"]["minimum"] == 0
    assert channel["properties"]["budget_share"]["maximum"] == 1

    described = _walk(schema)
    expected = {f"$.{name}" for name in MarketingStrategy.model_fields}
    expected |= {f"$.steps[].{name}" for name in StrategyStep.model_fields}
    expected |= {f"$.channels[].{name}" for name in Channel.model_fields}
    by_path = dict(described)
    assert expected <= set(by_path)
    for path in expected:
        assert by_path[path].get("description"), f"{path} reaches Gemini without a description"
    # Nothing the Developer API refuses: no $ref/$defs left, no additionalProperties.
    text = str(schema)
    assert "$ref" not in text
    assert "$defs" not in text
    assert "additionalProperties" not in text


# ------------------------------------------------------------------ task models


def _record(**changes: Any) -> TaskRecord:
    now = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    data: dict[str, Any] = {
        "task_id": "t-1",
        "uid": "user-1",
        "status": TaskStatus.COMPLETED,
        "created_at": now,
        "updated_at": now,
        "started_at": now,
        "completed_at": now,
        "request": TaskRequest(brief="Launch", urls=["https://example.com/"]),
        "attempts": 1,
        "progress": Progress(stage="done", message="Done", percent=100),
        "result": TaskResult(
            strategy=strategy(),
            model="gemini-test",
            usage=Usage(prompt_tokens=1, output_tokens=2, total_tokens=3),
        ),
        "lease_expires_at": now,
        "lease_owner": "attempt-abc",
    }
    data.update(changes)
    return TaskRecord.model_validate(data)


def test_public_drops_the_worker_bookkeeping() -> None:
    record = _record()
    public = record.public()
    assert type(public) is TaskPublic
    dumped = public.model_dump(mode="json")
    assert "lease_expires_at" not in dumped
    assert "lease_owner" not in dumped
    assert "attempt_errors" not in dumped and "checkpoint" not in dumped
    assert "counter_shard" not in dumped
    assert set(dumped) == set(TaskPublic.model_fields)
    assert "attempt-abc" not in public.model_dump_json()


def test_public_keeps_everything_else() -> None:
    record = _record()
    public = record.public()
    full = record.model_dump()
    for internal in (
        "lease_expires_at",
        "lease_owner",
        "attempt_errors",
        "checkpoint",
        "counter_shard",
        "budget_day",
        "budget_reserved_micros",
        "spent_micros",
        "expires_at",
        "anonymous_user",
    ):
        del full[internal]
    assert public.model_dump() == full


def test_public_of_a_failed_task() -> None:
    record = _record(
        status=TaskStatus.FAILED,
        result=None,
        error=TaskError(code="unavailable", message="Gemini is busy", retryable=True),
    )
    public = record.public()
    assert public.error == TaskError(code="unavailable", message="Gemini is busy", retryable=True)
    assert public.result is None


def test_progress_percent_range() -> None:
    Progress(stage="s", percent=0)
    Progress(stage="s", percent=100)
    with pytest.raises(ValidationError):
        Progress(stage="s", percent=101)
    with pytest.raises(ValidationError):
        Progress(stage="s", percent=-1)


@pytest.mark.parametrize(
    ("status", "terminal"),
    [
        pytest.param(TaskStatus.PENDING, False, id="pending"),
        pytest.param(TaskStatus.PROCESSING, False, id="processing"),
        pytest.param(TaskStatus.COMPLETED, True, id="completed"),
        pytest.param(TaskStatus.FAILED, True, id="failed"),
        pytest.param(TaskStatus.CANCELLED, True, id="cancelled"),
    ],
)
def test_task_status_is_terminal(status: TaskStatus, terminal: bool) -> None:
    assert status.is_terminal is terminal


def test_task_status_values_are_the_spec_strings() -> None:
    assert [s.value for s in TaskStatus] == [
        "PENDING",
        "PROCESSING",
        "COMPLETED",
        "FAILED",
        "CANCELLED",
    ]
    assert TaskStatus("PENDING") == "PENDING"


def test_usage_addition() -> None:
    total = Usage(prompt_tokens=1, output_tokens=2, total_tokens=3) + Usage(
        prompt_tokens=10, output_tokens=20, total_tokens=30
    )
    assert total == Usage(prompt_tokens=11, output_tokens=22, total_tokens=33)


def test_usage_zero_is_neutral_and_operands_unchanged() -> None:
    a = Usage(prompt_tokens=5, output_tokens=6, total_tokens=11)
    assert a + Usage() == a
    assert Usage() + a == a
    assert sum([a, a, a], Usage()) == Usage(prompt_tokens=15, output_tokens=18, total_tokens=33)
    assert a == Usage(prompt_tokens=5, output_tokens=6, total_tokens=11)
