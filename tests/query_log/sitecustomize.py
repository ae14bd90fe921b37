"""Records every Firestore query our code runs, for tests/infra/test_index_coverage.py.

Loaded by every Python process of ``make test`` (tests/query_log is on PYTHONPATH
there) and active only when TINKERBELL_QUERY_LOG names a file: the emulator stack's
functions, the CLI run by the tests, and pytest itself. It wraps the Firestore
client's ``BaseQuery._to_protobuf``, which every query (stream, get, listen,
transaction reads) goes through to become the StructuredQuery sent to the server, and
``BaseAggregationQuery._to_protobuf`` (count, sum, avg: a StructuredAggregationQuery
around the query), and appends one JSON line per query our code (``shared/``,
``functions/``, ``cli/``, not the tests) runs: collection, scope, filters, orders,
limit, the aggregations (op and field) if any, call site. An aggregation's own query
is recorded once, with its aggregations. The real client runs unchanged; nothing is
mocked.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import json
import os
import re
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

LOG = os.environ.get("TINKERBELL_QUERY_LOG")
REPO = Path(__file__).resolve().parents[2]
OUR_CODE = tuple(str(REPO / part) + os.sep for part in ("shared", "functions", "cli"))
QUERY = "google.cloud.firestore_v1.base_query"
AGGREGATION = "google.cloud.firestore_v1.base_aggregation"
# Set while an aggregation builds its query: that query is recorded with the aggregation.
building = threading.local()


# Our packages as installed (tests/integration/test_cli.py runs `pip install .` of the CLI).
INSTALLED = re.compile(r"[/\\]site-packages[/\\]((?:shared|functions|cli)[/\\][^/\\]+\.py)$")


def call_site() -> str | None:
    for frame in reversed(traceback.extract_stack()):
        if frame.filename.startswith(OUR_CODE):
            return f"{Path(frame.filename).relative_to(REPO)}:{frame.lineno}"
        installed = INSTALLED.search(frame.filename)
        if installed:
            return f"{installed.group(1).replace(os.sep, '/')}:{frame.lineno}"
    return None


def filters_of(where: Any) -> list[dict[str, str]]:
    kind = where._pb.WhichOneof("filter_type") if where is not None else None
    if kind == "composite_filter":
        found: list[dict[str, str]] = []
        for inner in where.composite_filter.filters:
            found += filters_of(inner)
        return found
    if kind == "field_filter":
        f = where.field_filter
        return [{"field": f.field.field_path, "op": type(f).Operator(f.op).name}]
    if kind == "unary_filter":
        u = where.unary_filter
        return [{"field": u.field.field_path, "op": type(u).Operator(u.op).name}]
    return []


def direction(value: Any) -> str:
    from google.cloud.firestore_v1.types import StructuredQuery

    return str(StructuredQuery.Direction(value).name)


def aggregations_of(aggregation_query: Any) -> list[dict[str, str]]:
    """[{"op": "SUM", "field": "count"}, {"op": "COUNT", "field": ""}...]."""
    found = []
    for aggregation in aggregation_query.aggregations:
        op = str(aggregation._pb.WhichOneof("operator"))
        field = getattr(aggregation, op).field.field_path if op in ("sum", "avg") else ""
        found.append({"op": op.upper(), "field": field})
    return found


def record(query: Any, aggregations: list[dict[str, str]] | None = None) -> None:
    site = call_site()
    if site is None:
        return
    source = query.from_[0]
    line = {
        "collection": source.collection_id,
        "all_descendants": bool(source.all_descendants),
        "filters": filters_of(query.where if query._pb.HasField("where") else None),
        "orders": [
            {"field": o.field.field_path, "direction": direction(o.direction)}
            for o in query.order_by
        ],
        "limit": int(query.limit) if query._pb.HasField("limit") else None,
        "aggregations": aggregations or [],
        "site": site,
        "pid": os.getpid(),
    }
    data = (json.dumps(line) + "\n").encode()
    fd = os.open(str(LOG), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)  # one write with O_APPEND: lines from many processes never mix
    finally:
        os.close(fd)


def safely(write: Any, *args: Any) -> None:
    try:
        write(*args)
    except Exception as exc:  # the recorder must never break a query
        print(f"query log: {exc!r}", file=sys.stderr)


def patch_query(module: Any) -> None:
    original = module.BaseQuery._to_protobuf

    def _to_protobuf(self: Any) -> Any:
        query = original(self)
        if not getattr(building, "aggregation", False):
            safely(record, query)
        return query

    module.BaseQuery._to_protobuf = _to_protobuf


def patch_aggregation(module: Any) -> None:
    original = module.BaseAggregationQuery._to_protobuf

    def _to_protobuf(self: Any) -> Any:
        building.aggregation = True
        try:
            aggregation_query = original(self)
        finally:
            building.aggregation = False
        safely(
            lambda: record(aggregation_query.structured_query, aggregations_of(aggregation_query))
        )
        return aggregation_query

    module.BaseAggregationQuery._to_protobuf = _to_protobuf


PATCHES = {QUERY: patch_query, AGGREGATION: patch_aggregation}


class PatchOnImport(importlib.abc.MetaPathFinder):
    """Patches base_query and base_aggregation when first imported (nothing imported
    eagerly here)."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        patch = PATCHES.get(name)
        if patch is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_and_patch(module: Any) -> None:
            exec_module(module)
            patch(module)

        loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        return spec


if LOG:
    sys.meta_path.insert(0, PatchOnImport())
