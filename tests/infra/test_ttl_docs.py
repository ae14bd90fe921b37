"""The TTL collections the docs name are the ones the config gives a TTL policy (issue 15,
defect 9: docs/architecture.md named three of six).

firestore.indexes.json's ``fieldOverrides`` entries with ``"ttl": true`` are what
firebase deploy turns into TTL policies; docs/deploy.md (Deploy, step 8) and
docs/architecture.md (the Firestore row of the components table) list them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest

from tests.infra.conftest import REPO


def configured() -> set[str]:
    config = json.loads((REPO / "firestore.indexes.json").read_text())
    return {o["collectionGroup"] for o in config["fieldOverrides"] if o.get("ttl")}


def collections(span: str) -> set[str]:
    """The collections in backquotes: `a/{id}` is a; the TTL field is not one."""
    return {name.split("/")[0] for name in re.findall(r"`([^`]+)`", span)} - {"expires_at"}


def deploy_md() -> str:
    """Deploy, step 8: "turns on the TTL policies (every collection ...: `a`, `b` ...)"."""
    text = " ".join((REPO / "docs" / "deploy.md").read_text().split())
    start = "turns on the TTL policies ("
    assert start in text, f"docs/deploy.md no longer says {start!r}: update this test"
    return text[text.index(start) :].split(")", 1)[0]


def architecture_md() -> str:
    """The Firestore row of the components table: its last cell, after `tasks/{task_id}`;
    up to the collections without a TTL policy (after the next `;`)."""
    rows = [
        line
        for line in (REPO / "docs" / "architecture.md").read_text().splitlines()
        if line.startswith("| Firestore |")
    ]
    assert len(rows) == 1, "docs/architecture.md: one Firestore row in the components table"
    cell = rows[0].rstrip(" |").rsplit(" | ", 1)[1]
    assert cell.startswith("`tasks/{task_id}`;"), cell
    return cell.split(";")[1]


@pytest.mark.parametrize("span", [deploy_md, architecture_md], ids=["deploy.md", "architecture.md"])
def test_the_docs_name_every_ttl_collection_of_the_config(span: Callable[[], str]) -> None:
    assert collections(span()) == configured()


def test_every_ttl_override_is_on_expires_at() -> None:
    """The docs say `expires_at` for all of them."""
    config = json.loads((REPO / "firestore.indexes.json").read_text())
    fields = {o["fieldPath"] for o in config["fieldOverrides"] if o.get("ttl")}
    assert fields == {"expires_at"}
