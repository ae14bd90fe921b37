"""Two versions of a strategy side by side (``tinkerbell diff A B``): the budget per
channel, the steps, the KPIs and the key messages, each marked as added, removed,
changed or the same. The web app's comparison (web/src/compare.js) marks the same way.
"""

from __future__ import annotations

from typing import Any

SAME, CHANGED, ADDED, REMOVED = "same", "changed", "added", "removed"
MARKS = {SAME: " ", CHANGED: "~", ADDED: "+", REMOVED: "-"}


def _channel_budgets(strategy: dict[str, Any]) -> dict[str, float]:
    total = float(strategy.get("required_budget") or 0)
    return {
        str(channel.get("name", "")): round(total * float(channel.get("budget_share") or 0), 2)
        for channel in strategy.get("channels") or []
    }


def _pairs(before: list[str], after: list[str]) -> list[dict[str, Any]]:
    """Position by position (steps are ordered)."""
    rows = []
    for index in range(max(len(before), len(after))):
        old = before[index] if index < len(before) else None
        new = after[index] if index < len(after) else None
        kind = SAME if old == new else ADDED if old is None else REMOVED if new is None else CHANGED
        rows.append({"change": kind, "before": old, "after": new})
    return rows


def _sets(before: list[str], after: list[str]) -> list[dict[str, Any]]:
    """As sets, in order of appearance (KPIs and messages are not ordered)."""
    rows = [{"change": SAME if item in after else REMOVED, "item": item} for item in before]
    rows += [{"change": ADDED, "item": item} for item in after if item not in before]
    return rows


def strategy_diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What changed from ``before`` to ``after`` (two MarketingStrategy dicts)."""
    old_budgets, new_budgets = _channel_budgets(before), _channel_budgets(after)
    channels = []
    for name in [*old_budgets, *(n for n in new_budgets if n not in old_budgets)]:
        old, new = old_budgets.get(name), new_budgets.get(name)
        kind = ADDED if old is None else REMOVED if new is None else SAME if old == new else CHANGED
        channels.append({"change": kind, "channel": name, "before_eur": old, "after_eur": new})
    old_total, new_total = before.get("required_budget"), after.get("required_budget")
    return {
        "budget": {
            "change": SAME if old_total == new_total else CHANGED,
            "before_eur": old_total,
            "after_eur": new_total,
        },
        "channels": channels,
        "steps": _pairs(
            [str(s.get("description", "")) for s in before.get("steps") or []],
            [str(s.get("description", "")) for s in after.get("steps") or []],
        ),
        "kpis": _sets(list(before.get("kpis") or []), list(after.get("kpis") or [])),
        "key_messages": _sets(
            list(before.get("key_messages") or []), list(after.get("key_messages") or [])
        ),
    }


def _eur(value: float | None) -> str:
    return "—" if value is None else f"{value:,.2f} EUR"


def diff_text(diff: dict[str, Any], label_a: str, label_b: str) -> str:
    """The diff as lines: '+' added, '-' removed, '~' changed, ' ' the same (control
    characters are stripped where everything is printed: cli/terminal.py)."""
    budget = diff["budget"]
    lines = [
        f"--- {label_a}",
        f"+++ {label_b}",
        f"{MARKS[budget['change']]} budget: {_eur(budget['before_eur'])} -> "
        f"{_eur(budget['after_eur'])}",
        "channels (EUR):",
    ]
    for row in diff["channels"]:
        lines.append(
            f"{MARKS[row['change']]}   {row['channel']}: {_eur(row['before_eur'])} -> "
            f"{_eur(row['after_eur'])}"
        )
    lines.append("steps:")
    for number, row in enumerate(diff["steps"], 1):
        if row["change"] == CHANGED:
            lines.append(f"-   {number}. {row['before']}")
            lines.append(f"+   {number}. {row['after']}")
        else:
            text = row["after"] if row["after"] is not None else row["before"]
            lines.append(f"{MARKS[row['change']]}   {number}. {text}")
    for section in ("kpis", "key_messages"):
        lines.append(f"{section.replace('_', ' ')}:")
        lines += [f"{MARKS[row['change']]}   {row['item']}" for row in diff[section]]
    return "\n".join(lines)
