"""What a task costs and what it may cost at most (shared/costs.py, ADR 0010)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared import costs
from shared.errors import Unavailable
from shared.models import PdfRef, TaskRequest, Usage
from shared.prompts import SYSTEM_INSTRUCTION, build_prompt
from shared.settings import get_settings

PRICES = (
    '{"text-m": {"input_per_million": 1.0, "output_per_million": 10.0,'
    ' "tool_use_per_million": 2.0, "per_grounded_request": 0.03},'
    ' "image-m": {"input_per_million": 0.5, "output_per_million": 3.0,'
    ' "tool_use_per_million": 0.5, "per_image": 0.06}}'
)


@pytest.fixture(autouse=True)
def prices(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("GEMINI_PRICES", PRICES)
    monkeypatch.setenv("GEMINI_TEXT_MODEL", "text-m")
    monkeypatch.setenv("GEMINI_IMAGE_MODEL", "image-m")
    monkeypatch.setenv("GEMINI_MAX_OUTPUT_TOKENS", "10000")
    monkeypatch.setenv("GEMINI_MAX_INPUT_TOKENS", "500000")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()  # the next test reads its own environment


def test_a_strategy_answer_is_priced_by_kind_of_token() -> None:
    # 1,000 plain input + 4,000 read by tools + 3,000 output (thinking included).
    usage = Usage(prompt_tokens=5_000, tool_use_prompt_tokens=4_000, output_tokens=3_000)
    expected = 1_000 * 1.0 + 4_000 * 2.0 + 3_000 * 10.0  # micro-EUR at EUR per million
    assert costs.strategy_micros(usage, grounded=False) == expected
    assert costs.strategy_micros(usage, grounded=True) == expected + 30_000


def test_a_preview_is_priced_per_image_not_by_its_image_tokens() -> None:
    usage = Usage(prompt_tokens=200, output_tokens=1_120 + 300, image_tokens=1_120)
    assert costs.image_micros(usage, images=1) == 200 * 0.5 + 300 * 3.0 + 60_000
    assert costs.image_micros(usage, images=0) == 200 * 0.5 + 300 * 3.0


def test_amounts_round_trip_through_the_public_cost() -> None:
    cost = costs.as_cost(1_234_567)
    assert (cost.amount, cost.currency) == (1.234567, "EUR")
    assert costs.micros_of(cost) == 1_234_567
    assert costs.micros_of(None) == 0


def test_the_worst_case_of_a_plain_brief_covers_every_answer_the_limits_allow() -> None:
    request = TaskRequest(brief="O brutărie din Cluj vrea clienți în timpul săptămânii.")
    worst = costs.worst_case_micros(request)
    # Its prompt can bill no more tokens than its UTF-8 bytes; each call writes at most
    # MAX_OUTPUT_TOKENS; the preview adds its prompt, its thinking and the image.
    prompt = len(SYSTEM_INSTRUCTION.encode()) + len(build_prompt(request).encode())
    strategy = costs.strategy_micros(
        Usage(prompt_tokens=prompt, output_tokens=10_000), grounded=False
    )
    image = costs.image_micros(Usage(prompt_tokens=10_000, output_tokens=10_000), images=1)
    assert worst >= strategy + image
    # ... and not by a wide margin: it is what a user's budget holds while it runs.
    assert worst <= 1.5 * (strategy + image)
    without_image = costs.worst_case_micros(request.model_copy(update={"image": False}))
    assert strategy <= without_image < worst


@pytest.mark.parametrize(
    "sources",
    [
        {"urls": ["https://example.com/"]},
        {"grounding": True},
        {"pdf": PdfRef(gcs_uri="gs://b/o.pdf", size_bytes=10, sha256="ab" * 32)},
    ],
    ids=["urls", "search", "pdf"],
)
def test_a_task_with_sources_holds_the_model_input_limit(sources: dict[str, object]) -> None:
    """What tools read or a PDF holds is not known at submit: only the model's input
    limit bounds it."""
    request = TaskRequest(brief="x", image=False, **sources)  # type: ignore[arg-type]
    worst = costs.worst_case_micros(request)
    full = Usage(prompt_tokens=500_000, tool_use_prompt_tokens=500_000, output_tokens=10_000)
    assert worst >= costs.strategy_micros(full, grounded=bool(request.grounding))


def test_a_model_without_a_price_cannot_be_budgeted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_TEXT_MODEL", "unpriced-model")
    get_settings.cache_clear()
    with pytest.raises(Unavailable):
        costs.worst_case_micros(TaskRequest(brief="x"))
