"""A value that satisfies a response schema (the OpenAPI subset the SDK sends for
``response_schema``, and JSON Schema), made deterministically from the request."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .common import JSON, MARKER, MAX_SCHEMA_DEPTH, as_float, get_any, rfc3339


@dataclass(frozen=True)
class Bounds:
    """Numeric bounds of a schema; ``*_open`` means exclusive."""

    low: float | None
    low_open: bool
    high: float | None
    high_open: bool

    def admits(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return not (
            self.high is not None and (value > self.high or (self.high_open and value == self.high))
        )


def bounds_of(schema: Mapping[str, Any]) -> Bounds:
    """Read minimum/maximum and both spellings of exclusive bounds (draft 4 bool, 2020 number)."""
    low, high = as_float(get_any(schema, "minimum")), as_float(get_any(schema, "maximum"))
    low_open = high_open = False
    ex_min, ex_max = get_any(schema, "exclusiveMinimum"), get_any(schema, "exclusiveMaximum")
    if isinstance(ex_min, bool):
        low_open = ex_min
    elif (value := as_float(ex_min)) is not None and (low is None or value >= low):
        low, low_open = value, True
    if isinstance(ex_max, bool):
        high_open = ex_max
    elif (value := as_float(ex_max)) is not None and (high is None or value <= high):
        high, high_open = value, True
    return Bounds(low, low_open, high, high_open)


def schema_type(schema: Mapping[str, Any]) -> str | None:
    """Lower-case type name; handles upper-case OpenAPI types and JSON Schema type lists."""
    kind = schema.get("type")
    if isinstance(kind, list):
        concrete = [str(k) for k in kind if str(k).lower() != "null"]
        kind = concrete[0] if concrete else "null"
    if isinstance(kind, str) and kind and kind.upper() != "TYPE_UNSPECIFIED":
        return kind.lower()
    if "properties" in schema or "additionalProperties" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return None


class SampleMaker:
    """Builds a value that satisfies a response schema, deterministically from a request digest.

    Every property (required or not) is filled so that consumers see a complete document.
    Bounded numbers land in the lower third of their range, so that shares of a whole (e.g.
    three ``budget_share`` values in 0..1) still add up to at most 1.
    """

    def __init__(self, root: JSON, digest: bytes, language: str | None) -> None:
        self._root = root
        # Seeded, reproducible sample values; nothing here is a secret.
        self._rng = random.Random(int.from_bytes(digest[:8], "big"))  # noqa: S311
        self._prefix = f"[stand-in sample, {language}]" if language else MARKER
        self._token = digest.hex()[:6]

    def resolve(self, schema: JSON) -> JSON:
        """``schema`` with its ``$ref`` chain followed (against this maker's root)."""
        return self._resolve(schema)

    def make(self, schema: Any, label: str = "", depth: int = 0) -> Any:
        if not isinstance(schema, dict):  # ``true`` or a missing schema: anything goes
            return self._string({}, label)
        schema = self._resolve(schema)
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            values = [v for v in enum if v is not None] or enum
            return values[self._rng.randrange(len(values))]
        for key in ("anyOf", "oneOf"):
            options = get_any(schema, key)
            if isinstance(options, list) and options:
                return self.make(self._choose(options), label, depth)
        all_of = get_any(schema, "allOf")
        if isinstance(all_of, list) and all_of:
            schema = self._merge(schema, all_of)
        kind = schema_type(schema)
        if kind == "object":
            return self._object(schema, label, depth)
        if kind == "array":
            return self._array(schema, label, depth)
        if kind == "integer":
            return self._integer(schema)
        if kind == "number":
            return self._number(schema)
        if kind == "boolean":
            return self._rng.random() < 0.5
        if kind == "null":
            return None
        return self._string(schema, label)

    # -- references and combinators ----------------------------------------------------------

    def _resolve(self, schema: JSON) -> JSON:
        """Follow ``$ref`` chains (JSON Schema); sibling keywords override the target's."""
        for _ in range(32):
            ref = schema.get("$ref")
            if not isinstance(ref, str):
                return schema
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**self._lookup(ref), **siblings}
        return schema

    def _lookup(self, ref: str) -> JSON:
        if not ref.startswith("#"):
            return {}
        node: Any = self._root
        for part in ref[1:].split("/"):
            if not part:
                continue
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                return {}
            node = node[part]
        return node if isinstance(node, dict) else {}

    def _choose(self, options: list[Any]) -> Any:
        """Prefer the first non-null branch: a filled value is more useful than ``null``."""
        for option in options:
            if isinstance(option, dict) and schema_type(self._resolve(option)) != "null":
                return option
        return options[0]

    def _merge(self, schema: JSON, parts: list[Any]) -> JSON:
        merged = {k: v for k, v in schema.items() if k not in ("allOf", "all_of")}
        for part in parts:
            if not isinstance(part, dict):
                continue
            for key, value in self._resolve(part).items():
                if key == "properties" and isinstance(value, dict):
                    merged["properties"] = {**merged.get("properties", {}), **value}
                elif key == "required" and isinstance(value, list):
                    merged["required"] = [*merged.get("required", []), *value]
                else:
                    merged.setdefault(key, value)
        return merged

    # -- per type ------------------------------------------------------------------------------

    def _object(self, schema: JSON, label: str, depth: int) -> JSON:
        properties = schema.get("properties")
        properties = properties if isinstance(properties, dict) else {}
        ordering = get_any(schema, "propertyOrdering") or []
        names = [n for n in ordering if n in properties]
        names += [n for n in properties if n not in names]
        required = set(schema.get("required") or [])
        too_deep = depth >= MAX_SCHEMA_DEPTH  # recursive schemas: stop at required fields
        result: JSON = {}
        for name in names:
            if too_deep and name not in required:
                continue
            child = f"{label}.{name}" if label else name
            result[name] = self.make(properties[name], child, depth + 1)
        extra = get_any(schema, "additionalProperties")
        if not properties and isinstance(extra, dict) and not too_deep:
            result["sample_key"] = self.make(extra, f"{label}.sample_key", depth + 1)
        return result

    def _array(self, schema: JSON, label: str, depth: int) -> list[Any]:
        min_items = int(as_float(get_any(schema, "minItems")) or 0)
        max_items = as_float(get_any(schema, "maxItems"))
        count = max(min_items, self._rng.randint(2, 3))
        if max_items is not None:
            count = min(count, int(max_items))
        if depth >= MAX_SCHEMA_DEPTH:
            count = min_items
        prefix = get_any(schema, "prefixItems")
        prefix = prefix if isinstance(prefix, list) else []
        items = schema.get("items")
        values = [self.make(s, f"{label}[{i}]", depth + 1) for i, s in enumerate(prefix)]
        if items is not False:
            for index in range(len(values), count):
                values.append(self.make(items or {}, f"{label}[{index}]", depth + 1))
        return values

    def _integer(self, schema: JSON) -> int:
        bounds = bounds_of(schema)
        low = high = None
        if bounds.low is not None:
            low = math.floor(bounds.low) + 1 if bounds.low_open else math.ceil(bounds.low)
        if bounds.high is not None:
            high = math.ceil(bounds.high) - 1 if bounds.high_open else math.floor(bounds.high)
        if low is not None and high is not None:
            return low + self._rng.randint(0, max(0, min(high - low, 23)))
        if low is not None:
            return low + self._rng.randint(0, 11)
        if high is not None:
            return high - self._rng.randint(0, 11)
        return self._rng.randint(1, 24)

    def _number(self, schema: JSON) -> float:
        bounds, rng = bounds_of(schema), self._rng
        if bounds.low is not None and bounds.high is not None:
            span = bounds.high - bounds.low
            candidate = round(bounds.low + span * rng.uniform(0.05, 0.33), 2)
            fallback = bounds.low + span / 2
        elif bounds.low is not None:
            candidate = round(bounds.low + rng.uniform(100, 10_000), 2)
            fallback = bounds.low + 1
        elif bounds.high is not None:
            candidate = round(bounds.high - rng.uniform(1, 100), 2)
            fallback = bounds.high - 1
        else:
            candidate = fallback = round(rng.uniform(1, 1000), 2)
        return candidate if bounds.admits(candidate) else fallback

    def _string(self, schema: JSON, label: str) -> str:
        text = self._formatted(schema.get("format"), label)
        if text is None:
            text = f"{self._prefix} {label or 'text'} {self._token}"
        min_length = int(as_float(get_any(schema, "minLength")) or 0)
        max_length = as_float(get_any(schema, "maxLength"))
        while len(text) < min_length:
            text += " sample"
        return text[: int(max_length)] if max_length is not None else text

    def _formatted(self, fmt: Any, label: str) -> str | None:
        """Values for string formats that a marked sentence would not satisfy."""
        day = 1_767_225_600 + self._rng.randrange(365) * 86_400  # a day in 2026
        slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") or "item"
        samples = {
            "date-time": rfc3339(day),
            "date": rfc3339(day)[:10],
            "time": "12:00:00Z",
            "uri": f"https://standin.example/sample/{slug}",
            "url": f"https://standin.example/sample/{slug}",
            "email": f"{slug}@standin.example",
            "uuid": f"{self._rng.getrandbits(128):032x}",
        }
        if fmt == "uuid":
            raw = samples["uuid"]
            return f"{raw[:8]}-{raw[8:12]}-4{raw[13:16]}-8{raw[17:20]}-{raw[20:]}"
        return samples.get(fmt) if isinstance(fmt, str) else None
