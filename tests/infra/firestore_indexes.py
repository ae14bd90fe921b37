"""Would production Firestore serve this query with these indexes? (The emulator serves
every query, so only this check sees a missing index before a user does.)

The rules, from Firestore's documentation on index types and on how queries use them
(https://cloud.google.com/firestore/docs/query-data/index-overview,
https://cloud.google.com/firestore/docs/query-data/indexing,
https://cloud.google.com/firestore/docs/query-data/multiple-range-fields):

- Every field gets single-field indexes automatically (ascending, descending,
  array-contains) with collection scope, unless a ``fieldOverrides`` entry for that
  collection group and field says otherwise: its ``indexes`` list is then the whole
  set, and ``"indexes": []`` (a TTL field's usual exemption) leaves none. Collection
  group scope has no automatic single-field index.
- Equality filters alone (``==``, ``in``, ``array-contains``...) are served by merging
  the single-field indexes of their fields.
- A range or inequality filter, or an order, on one field alone (no equality on any
  other field) is served by that field's single-field index in the query's direction.
- Anything else needs a composite index of the same collection group and scope: the
  equality fields first (in any order), then the order fields in the query's order
  and directions. An inequality field the query does not order by is ordered after
  the explicit orders, ascending.
- Aggregations (https://cloud.google.com/firestore/docs/query-data/aggregation-queries:
  "Aggregation queries rely on the existing index configuration that your queries
  already use"): ``count()`` needs what its query needs. ``sum()`` and ``average()``
  read the aggregated field from the index they scan ("Firestore computes the SUM()
  and AVG() results directly through index scans. This makes it efficient, but also
  means that a field must be indexed to calculate an aggregation", Google Cloud blog,
  "Calculate SUM and AVG aggregations using Firestore", 2023-11-07): the query must be
  served with that field as one more (ascending) order, so a sum over a field whose
  single-field index an override switched off fails, and a sum with an equality filter
  on another field needs a composite index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

EQUALITY = {"EQUAL", "IN", "ARRAY_CONTAINS", "ARRAY_CONTAINS_ANY", "IS_NULL", "IS_NAN"}
ARRAY = {"ARRAY_CONTAINS", "ARRAY_CONTAINS_ANY"}
RANGE = {
    "LESS_THAN",
    "LESS_THAN_OR_EQUAL",
    "GREATER_THAN",
    "GREATER_THAN_OR_EQUAL",
    "NOT_EQUAL",
    "NOT_IN",
    "IS_NOT_NULL",
    "IS_NOT_NAN",
}
NAME = "__name__"


@dataclass(frozen=True)
class Verdict:
    served: bool
    why: str


def scope(query: dict[str, Any]) -> str:
    return "COLLECTION_GROUP" if query.get("all_descendants") else "COLLECTION"


def normalized_orders(query: dict[str, Any]) -> list[tuple[str, str]]:
    """The orders the server sorts by: explicit ones, then unordered inequality fields."""
    orders = [(o["field"], o["direction"]) for o in query.get("orders", []) if o["field"] != NAME]
    ordered = {field for field, _ in orders}
    inequalities = sorted(
        {f["field"] for f in query.get("filters", []) if f["op"] in RANGE} - ordered
    )
    return orders + [(field, "ASCENDING") for field in inequalities]


def single_field_index(
    config: dict[str, Any], collection: str, field: str, kind: str, query_scope: str
) -> bool:
    """Whether `field` has a single-field index of `kind` (ASCENDING, DESCENDING,
    CONTAINS) in `query_scope`, as the config's overrides leave it. A subfield of a map
    inherits the settings of its nearest ancestor that has an override (Firestore's
    rule: an exemption on `request` switches off `request.pdf.gcs_uri` too)."""
    overrides = {
        override["fieldPath"]: override
        for override in config.get("fieldOverrides", [])
        if override["collectionGroup"] == collection
    }
    parts = field.split(".")
    for depth in range(len(parts), 0, -1):
        override = overrides.get(".".join(parts[:depth]))
        if override is None:
            continue
        for index in override.get("indexes", []):
            have = index.get("order") or index.get("arrayConfig")
            if have == kind and index.get("queryScope", "COLLECTION") == query_scope:
                return True
        return False
    return query_scope == "COLLECTION"


def composite_serves(
    index: dict[str, Any], equalities: list[tuple[str, str]], orders: list[tuple[str, str]]
) -> bool:
    fields = [f for f in index["fields"] if f["fieldPath"] != NAME]
    if len(fields) != len(equalities) + len(orders):
        return False
    head, tail = fields[: len(equalities)], fields[len(equalities) :]
    wanted = {(field, "CONTAINS" if op in ARRAY else "ANY") for field, op in equalities}
    got = set()
    for f in head:
        kind = "CONTAINS" if f.get("arrayConfig") == "CONTAINS" else "ANY"
        got.add((f["fieldPath"], kind))
    if got != wanted:
        return False
    return [(f["fieldPath"], f.get("order")) for f in tail] == orders


# Aggregations that read a field's values from the index (count reads none).
FIELD_AGGREGATIONS = {"SUM", "AVG"}


def check(query: dict[str, Any], config: dict[str, Any]) -> Verdict:
    """The query, and each sum or average over it (``aggregations``: op and field)."""
    verdict = check_query(query, config)
    if not verdict.served:
        return verdict
    for aggregation in query.get("aggregations", []):
        if aggregation["op"] not in FIELD_AGGREGATIONS:
            continue
        field = aggregation["field"]
        scan = dict(query)
        if field not in {f for f, _ in normalized_orders(query)}:
            scan["orders"] = [*query.get("orders", []), {"field": field, "direction": "ASCENDING"}]
        over = check_query(scan, config)
        if not over.served:
            op = aggregation["op"].lower()
            return Verdict(False, f"{op}({field}) needs {field} in the index it scans: {over.why}")
    return verdict


def check_query(query: dict[str, Any], config: dict[str, Any]) -> Verdict:
    collection, query_scope = query["collection"], scope(query)
    filters = query.get("filters", [])
    equalities = [(f["field"], f["op"]) for f in filters if f["op"] in EQUALITY]
    orders = normalized_orders(query)
    order_fields = {field for field, _ in orders}
    equality_fields = {field for field, _ in equalities}

    if not orders:
        missing = [
            field
            for field, op in equalities
            if not single_field_index(
                config, collection, field, "CONTAINS" if op in ARRAY else "ASCENDING", query_scope
            )
        ]
        if missing:
            return Verdict(False, f"no single-field index on {', '.join(missing)}")
        return Verdict(True, "equality filters: merged single-field indexes")

    if len(orders) == 1 and not (equality_fields - order_fields):
        field, direction = orders[0]
        if single_field_index(config, collection, field, direction, query_scope):
            return Verdict(True, f"single-field index on {field} {direction}")
        # A single-field index switched off by an override: only a composite helps.

    for index in config.get("indexes", []):
        if (
            index["collectionGroup"] == collection
            and index.get("queryScope", "COLLECTION") == query_scope
            and composite_serves(index, equalities, orders)
        ):
            return Verdict(True, "composite index")
    wanted = [f"{f} (equality)" for f, _ in equalities] + [f"{f} {d}" for f, d in orders]
    return Verdict(
        False,
        f"The query requires an index: {collection} ({query_scope.lower()}) on "
        + ", ".join(wanted),
    )
