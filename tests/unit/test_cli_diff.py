"""``tinkerbell diff``: what changed between two versions of a strategy (cli/diff.py)."""

from __future__ import annotations

from typing import Any

from cli.diff import diff_text, strategy_diff


def strategy(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "strategy_name": "Cider",
        "required_budget": 10_000,
        "channels": [
            {"name": "Instagram", "budget_share": 0.5},
            {"name": "Radio", "budget_share": 0.5},
        ],
        "steps": [
            {"step_number": 1, "description": "Research"},
            {"step_number": 2, "description": "Launch"},
        ],
        "kpis": ["1,000 followers", "50 stores"],
        "key_messages": ["Local apples"],
    }
    return base | changes


def test_an_unchanged_strategy_is_all_the_same() -> None:
    diff = strategy_diff(strategy(), strategy())
    assert diff["budget"]["change"] == "same"
    rows = diff["channels"] + diff["steps"] + diff["kpis"] + diff["key_messages"]
    assert {row["change"] for row in rows} == {"same"}


def test_budget_per_channel_steps_kpis_and_messages_are_marked() -> None:
    after = strategy(
        required_budget=5_000,
        channels=[
            {"name": "Instagram", "budget_share": 0.6},
            {"name": "TikTok", "budget_share": 0.4},
        ],
        steps=[
            {"step_number": 1, "description": "Research"},
            {"step_number": 2, "description": "Go live"},
            {"step_number": 3, "description": "Measure"},
        ],
        kpis=["50 stores", "10,000 views"],
        key_messages=["Local apples"],
    )
    diff = strategy_diff(strategy(), after)
    assert diff["budget"] == {"change": "changed", "before_eur": 10_000, "after_eur": 5_000}
    assert diff["channels"] == [
        {"change": "changed", "channel": "Instagram", "before_eur": 5000.0, "after_eur": 3000.0},
        {"change": "removed", "channel": "Radio", "before_eur": 5000.0, "after_eur": None},
        {"change": "added", "channel": "TikTok", "before_eur": None, "after_eur": 2000.0},
    ]
    assert [row["change"] for row in diff["steps"]] == ["same", "changed", "added"]
    assert [(row["change"], row["item"]) for row in diff["kpis"]] == [
        ("removed", "1,000 followers"),
        ("same", "50 stores"),
        ("added", "10,000 views"),
    ]
    text = diff_text(diff, "a", "b")
    assert "~ budget: 10,000.00 EUR -> 5,000.00 EUR" in text
    assert "-   Radio: 5,000.00 EUR -> —" in text
    assert "+   TikTok: — -> 2,000.00 EUR" in text
    assert "-   2. Launch" in text and "+   2. Go live" in text and "+   3. Measure" in text
