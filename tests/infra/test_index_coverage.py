"""Index coverage (issue 15, part 2): every Firestore query our code ran during the
integration suite is one production Firestore serves with firestore.indexes.json.

``make test`` starts the stack and pytest with tests/query_log on PYTHONPATH and
TINKERBELL_QUERY_LOG set, so every process records the queries our code sends
(tests/query_log/sitecustomize.py); tests/integration runs before tests/infra. The
web app's queries run in the browser, where nothing records them: they are listed
here, and a test keeps that list as long as web/src's queries.
"""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.infra.conftest import REPO
from tests.infra.firestore_indexes import check

CONFIG: dict[str, Any] = json.loads((REPO / "firestore.indexes.json").read_text())

# web/src/task.js, the history list: where('uid', '==', uid), orderBy('created_at', 'desc').
WEB_QUERIES = [
    {
        "collection": "tasks",
        "filters": [{"field": "uid", "op": "EQUAL"}],
        "orders": [{"field": "created_at", "direction": "DESCENDING"}],
        "site": "web/src/task.js",
    }
]


def query(
    collection: str,
    *filters: tuple[str, str],
    orders: tuple[tuple[str, str], ...] = (),
    aggregations: tuple[tuple[str, str], ...] = (),
) -> dict[str, Any]:
    return {
        "collection": collection,
        "filters": [{"field": f, "op": op} for f, op in filters],
        "orders": [{"field": f, "direction": d} for f, d in orders],
        "aggregations": [{"op": op, "field": f} for op, f in aggregations],
    }


# ---------------------------------------------------------------- the rules themselves

TTL_ONLY = {
    "indexes": [],
    "fieldOverrides": [
        {"collectionGroup": "sessions", "fieldPath": "expires_at", "ttl": True, "indexes": []}
    ],
}


EXEMPT_MAP = {
    "indexes": [],
    "fieldOverrides": [{"collectionGroup": "tasks", "fieldPath": "request", "indexes": []}],
}
# A counter's shards (shared/quotas.py sums their `count`), with `count` exempted.
COUNT_EXEMPT = {
    "indexes": [],
    "fieldOverrides": [{"collectionGroup": "quota_shards", "fieldPath": "count", "indexes": []}],
}
SUBFIELD_KEPT = {
    "indexes": [],
    "fieldOverrides": [
        *EXEMPT_MAP["fieldOverrides"],
        {
            "collectionGroup": "tasks",
            "fieldPath": "request.pdf.gcs_uri",
            "indexes": [{"order": "ASCENDING", "queryScope": "COLLECTION"}],
        },
    ],
}


@pytest.mark.parametrize(
    ("config", "q", "served"),
    [
        # Equality alone: merged single-field indexes.
        ({}, query("tasks", ("uid", "EQUAL"), ("status", "EQUAL")), True),
        # A range on one field: its single-field index...
        ({}, query("sessions", ("expires_at", "LESS_THAN")), True),
        # ...unless a TTL override switched it off (issue 15, defect 1).
        (TTL_ONLY, query("sessions", ("expires_at", "LESS_THAN")), False),
        (TTL_ONLY, query("sessions", ("owner", "EQUAL")), True),
        # Equality on one field and a range or order on another: a composite index.
        ({}, query("tasks", ("status", "EQUAL"), ("lease_expires_at", "LESS_THAN")), False),
        ({}, query("tasks", ("uid", "EQUAL"), orders=(("created_at", "DESCENDING"),)), False),
        # An order alone, in either direction.
        ({}, query("tasks", orders=(("created_at", "DESCENDING"),)), True),
        # A map's exemption holds for its subfields, unless one has its own override.
        (EXEMPT_MAP, query("tasks", ("request.pdf.gcs_uri", "EQUAL")), False),
        (EXEMPT_MAP, query("tasks", ("request", "EQUAL")), False),
        (SUBFIELD_KEPT, query("tasks", ("request.pdf.gcs_uri", "EQUAL")), True),
        (SUBFIELD_KEPT, query("tasks", ("request.brief", "EQUAL")), False),
        # sum() and avg() read the field from the index they scan: its single-field index...
        ({}, query("quota_shards", aggregations=(("SUM", "count"),)), True),
        ({}, query("quota_shards", aggregations=(("AVG", "count"),)), True),
        # ...which an exemption switches off (count() needs no field's index)...
        (COUNT_EXEMPT, query("quota_shards", aggregations=(("SUM", "count"),)), False),
        (COUNT_EXEMPT, query("quota_shards", aggregations=(("AVG", "count"),)), False),
        (COUNT_EXEMPT, query("quota_shards", aggregations=(("COUNT", ""),)), True),
        # ...and with an equality filter on another field, a composite index.
        ({}, query("quota_shards", ("day", "EQUAL"), aggregations=(("SUM", "count"),)), False),
    ],
)
def test_the_rules(config: dict[str, Any], q: dict[str, Any], served: bool) -> None:
    assert check(q, config).served is served, check(q, config).why


def test_a_composite_serves_only_its_own_shape() -> None:
    config = {
        "indexes": [
            {
                "collectionGroup": "tasks",
                "queryScope": "COLLECTION",
                "fields": [
                    {"fieldPath": "uid", "order": "ASCENDING"},
                    {"fieldPath": "created_at", "order": "DESCENDING"},
                ],
            }
        ]
    }
    desc = query("tasks", ("uid", "EQUAL"), orders=(("created_at", "DESCENDING"),))
    asc = query("tasks", ("uid", "EQUAL"), orders=(("created_at", "ASCENDING"),))
    since = query("tasks", ("uid", "EQUAL"), ("created_at", "GREATER_THAN_OR_EQUAL"))
    group = {**desc, "all_descendants": True}
    assert check(desc, config).served
    assert not check(asc, config).served
    assert not check(since, config).served  # an inequality sorts ascending
    assert not check(group, config).served  # another scope
    assert "requires an index" in check(asc, config).why


# ------------------------------------------------------------- what the suite recorded


def recorded() -> list[dict[str, Any]]:
    path = os.environ.get("TINKERBELL_QUERY_LOG")
    if not path:
        pytest.skip("run through `make test`: it records the queries (TINKERBELL_QUERY_LOG)")
    log = Path(path)
    assert log.exists(), f"{log} is missing: did tests/integration run with the recorder?"
    return [json.loads(line) for line in log.read_text().splitlines()]


def query_defs() -> set[str]:
    """Every def of ours that builds a Firestore query (file:innermost def)."""
    found = set()
    for package in ("shared", "functions", "cli"):
        for path in sorted((REPO / package).glob("*.py")):
            tree = ast.parse(path.read_text())
            for call in ast.walk(tree):
                if (
                    isinstance(call, ast.Call)
                    and isinstance(call.func, ast.Attribute)
                    and call.func.attr in ("where", "order_by", "collection_group", "sum", "avg")
                ):
                    found.add(def_of(f"{path.relative_to(REPO)}:{call.lineno}"))
    return found


def def_of(site: str) -> str:
    """`shared/x.py:123` -> `shared/x.py:the_def_around_line_123`."""
    file, line = site.rsplit(":", 1)
    tree = ast.parse((REPO / file).read_text())
    around = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        and node.lineno <= int(line) <= (node.end_lineno or node.lineno)
    ]
    innermost = max(around, key=lambda node: node.lineno)
    return f"{file}:{innermost.name}"


# Query builders the integration suite does not run, and why.
NOT_RUN_BY_THE_SUITE: dict[str, str] = {}


def test_every_query_the_suite_ran_is_served_in_production() -> None:
    queries = recorded()
    refused = {}
    for q in queries + WEB_QUERIES:
        verdict = check(q, CONFIG)
        if not verdict.served:
            refused[q["site"]] = verdict.why
    assert refused == {}


def test_the_suite_ran_every_query_our_code_builds() -> None:
    ran = {def_of(q["site"]) for q in recorded()}
    missing = query_defs() - ran - set(NOT_RUN_BY_THE_SUITE)
    assert missing == set(), "query builders the integration suite never ran"


def test_the_web_apps_queries_are_all_listed() -> None:
    sources = "\n".join(p.read_text() for p in sorted((REPO / "web" / "src").glob("*.js")))
    calls = re.findall(r"\b(where|orderBy)\(", sources)
    listed = sum(len(q["filters"]) + len(q["orders"]) for q in WEB_QUERIES)
    assert len(calls) == listed


# ------------------------------------------------------------------- the recorder


def test_the_recorder_keeps_a_sums_field_and_records_its_query_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The query shared/quotas.py sums a counter's shards with, built by the real client
    (offline: building a request sends nothing) through the recorder's patches."""
    import importlib.util

    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore
    from google.cloud.firestore_v1 import base_aggregation, base_query

    spec = importlib.util.spec_from_file_location(
        "query_recorder", REPO / "tests" / "query_log" / "sitecustomize.py"
    )
    assert spec is not None and spec.loader is not None
    recorder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recorder)
    log = tmp_path / "queries.jsonl"
    monkeypatch.setattr(recorder, "LOG", str(log))
    monkeypatch.setattr(recorder, "call_site", lambda: "shared/quotas.py:121")
    # Patched for this test only (monkeypatch puts the originals back).
    for cls in (base_query.BaseQuery, base_aggregation.BaseAggregationQuery):
        monkeypatch.setattr(cls, "_to_protobuf", cls._to_protobuf)
    recorder.patch_query(base_query)
    recorder.patch_aggregation(base_aggregation)

    client = firestore.Client(project="p", credentials=AnonymousCredentials())
    shards = client.collection("quota_counters").document("k").collection("quota_shards")
    shards.sum("count", alias="total")._to_protobuf()
    shards.where(filter=firestore.FieldFilter("count", ">", 0))._to_protobuf()

    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(q["collection"], q["aggregations"], q["filters"]) for q in lines] == [
        ("quota_shards", [{"op": "SUM", "field": "count"}], []),
        ("quota_shards", [], [{"field": "count", "op": "GREATER_THAN"}]),
    ]
    assert check(lines[0], CONFIG).served
    exempt = {"fieldOverrides": [{"collectionGroup": "quota_shards", "fieldPath": "count"}]}
    assert not check(lines[0], exempt).served
