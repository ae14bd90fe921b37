"""Readable terminal output of a strategy."""

from __future__ import annotations

from shared.models import MarketingStrategy


def render_strategy(strategy: MarketingStrategy) -> str:
    lines = [
        f"== {strategy.strategy_name} ==",
        f"Audience: {strategy.target_audience}",
        f"Budget:   EUR {strategy.required_budget:,.2f}",
    ]
    if strategy.timeline_weeks:
        lines.append(f"Timeline: {strategy.timeline_weeks} weeks")
    if strategy.summary:
        lines += ["", strategy.summary]
    lines += ["", "Steps:"]
    lines += [f"  {step.step_number}. {step.description}" for step in strategy.steps]
    if strategy.channels:
        lines += ["", "Channels:"]
        lines += [f"  - {c.name} ({c.budget_share:.0%}): {c.rationale}" for c in strategy.channels]
    if strategy.key_messages:
        lines += ["", "Key messages:"] + [f"  - {m}" for m in strategy.key_messages]
    if strategy.kpis:
        lines += ["", "KPIs:"] + [f"  - {k}" for k in strategy.kpis]
    if strategy.visual_brief:
        lines += ["", f"Visual brief: {strategy.visual_brief}"]
    return "\n".join(lines)
