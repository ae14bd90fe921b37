"""The strategy as Gemini writes it: a draft parsed from the incomplete JSON.

The worker streams the strategy call; every second or so it shows the user what
has arrived, so that the first steps can be read seconds after work starts. A
draft holds every field that is complete and valid so far (a string may still
be growing); list items are kept up to the first one that is not yet valid.
"""

from __future__ import annotations

from functools import cache
from typing import Any, get_args, get_origin

from pydantic import TypeAdapter, ValidationError, create_model
from pydantic_core import from_json

from shared.models import MarketingStrategy, StrategyDraft


def draft_from_json(text: str) -> StrategyDraft | None:
    """The valid prefix of a partial strategy JSON; None when nothing is usable yet."""
    try:
        data = from_json(text, allow_partial="trailing-strings")
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    fields: dict[str, Any] = {}
    for name, info in MarketingStrategy.model_fields.items():
        if name not in data:
            continue
        value = _valid_prefix(name, info.annotation, data[name])
        if value is not None:
            fields[name] = value
    return StrategyDraft(**fields) if fields else None


def _valid_prefix(name: str, annotation: Any, value: Any) -> Any:
    if get_origin(annotation) is list and isinstance(value, list):
        (item_type,) = get_args(annotation)
        kept = []
        for item in value:
            try:
                kept.append(_adapter(item_type).validate_python(item))
            except ValidationError:
                break  # the item still being written, and everything after it
        return kept or None
    try:
        return _field_adapter(name).validate_python({name: value}).__dict__[name]
    except ValidationError:
        return None


@cache
def _adapter(item_type: Any) -> TypeAdapter[Any]:
    return TypeAdapter(item_type)


@cache
def _field_adapter(name: str) -> TypeAdapter[Any]:
    """Validates one field with its own constraints (ge, le...) and nothing else."""
    info = MarketingStrategy.model_fields[name]
    model = create_model(f"Draft_{name}", **{name: (info.annotation, info)})  # type: ignore[call-overload]
    return TypeAdapter(model)
