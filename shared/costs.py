"""What a task costs (SPEC §3 ``result.cost``, ADR 0010).

Its real cost comes from the usage Gemini reports for each paid answer, at the list
prices of the price table (``GEMINI_PRICES``). Its worst case, reserved against the day
budgets at submit, is what the task could bill at most: every input token the request
can carry (for a task without PDF, URLs or search, its prompt, at most one token per
UTF-8 byte; with them, the model's input limit, which Gemini enforces unbilled), every
output token MAX_OUTPUT_TOKENS lets each call write (it bounds thinking and answer
together), and the preview. Amounts are kept in micro-EUR: integers, so that counters
add them exactly.
"""

from __future__ import annotations

import json
import math
from functools import cache

from shared.errors import Unavailable
from shared.log import get_logger
from shared.models import Cost, MarketingStrategy, ModelPrice, TaskRequest, Usage
from shared.prompts import SYSTEM_INSTRUCTION, build_prompt, image_prompt
from shared.settings import get_settings

MICROS_PER_EUR = 1_000_000
CURRENCY = "EUR"
log = get_logger("costs")


def price_of(model: str) -> ModelPrice:
    """The configured model's prices; a model the table lacks cannot be budgeted."""
    price = get_settings().gemini_prices.get(model)
    if price is None:
        log.error(
            f"no price for the model {model!r} in GEMINI_PRICES: tasks are refused while a "
            "day budget is on",
            extra={"model": model, "outcome": "unpriced_model"},
        )
        raise Unavailable("the service cannot price its model now; an operator must fix it")
    return price


def _micros(eur: float) -> int:
    # Up, so that a sum of costs never falls below what was billed.
    return math.ceil(round(eur * MICROS_PER_EUR, 6))


def tokens_micros(usage: Usage, price: ModelPrice) -> int:
    """The tokens of one answer: plain input, what tools read, and text output
    (thinking included); an image's tokens are priced per image instead."""
    plain_input = max(0, usage.prompt_tokens - usage.tool_use_prompt_tokens)
    text_output = max(0, usage.output_tokens - usage.image_tokens)
    return _micros(
        (
            plain_input * price.input_per_million
            + usage.tool_use_prompt_tokens * price.tool_use_per_million
            + text_output * price.output_per_million
        )
        / 1e6
    )


def strategy_micros(usage: Usage, *, grounded: bool) -> int:
    """The strategy answer: its tokens, and the search fee when it was grounded."""
    price = price_of(get_settings().gemini_text_model)
    fee = _micros(price.per_grounded_request) if grounded else 0
    return tokens_micros(usage, price) + fee


def image_micros(usage: Usage, *, images: int) -> int:
    """The preview answer: its prompt and thinking by the token, the image by the piece."""
    price = price_of(get_settings().gemini_image_model)
    return tokens_micros(usage, price) + images * _micros(price.per_image)


def as_cost(micros: int) -> Cost:
    return Cost(amount=round(micros / MICROS_PER_EUR, 6), currency=CURRENCY)


def micros_of(cost: Cost | None) -> int:
    return 0 if cost is None else _micros(cost.amount)


@cache
def _schema_bytes() -> int:
    # The response schema goes with the prompt.
    return len(json.dumps(MarketingStrategy.model_json_schema()).encode())


@cache
def _image_prompt_bytes() -> int:
    # The template alone: model_construct skips validation (no steps needed here).
    empty = MarketingStrategy.model_construct(strategy_name="", target_audience="", visual_brief="")
    return len(image_prompt(empty).encode())


def worst_case_micros(request: TaskRequest, *, with_pdf: bool = False) -> int:
    """The most this request can cost: what is reserved against the budgets at submit
    (``with_pdf``: a PDF comes with it that ``request`` does not name yet)."""
    settings = get_settings()
    text = price_of(settings.gemini_text_model)
    output = settings.gemini_max_output_tokens
    if with_pdf or request.pdf is not None or request.urls or request.grounding:
        prompt = settings.gemini_max_input_tokens
    else:
        prompt = (
            len(SYSTEM_INSTRUCTION.encode()) + len(build_prompt(request).encode()) + _schema_bytes()
        )
    input_price = max(text.input_per_million, text.tool_use_per_million)
    eur = (prompt * input_price + output * text.output_per_million) / 1e6
    if request.grounding:
        eur += text.per_grounded_request
    if request.image:
        image = price_of(settings.gemini_image_model)
        # Its prompt is the template and strategy fields: at most what the strategy wrote.
        image_prompt_tokens = _image_prompt_bytes() + output
        eur += (
            image_prompt_tokens * image.input_per_million + output * image.output_per_million
        ) / 1e6 + image.per_image
    return _micros(eur)
