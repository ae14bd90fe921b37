"""One task as ``tinkerbell status`` prints it: its state, strategy, cost, error, and the
delivery of its webhook with every attempt (docs/webhooks.md). The same fields are in
``--json`` as the API answers them."""

from __future__ import annotations

from typing import Any


def short(text: Any, length: int) -> str:
    """One line of at most ``length`` characters."""
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= length else flat[: length - 1] + "…"


def describe_task(task: dict[str, Any]) -> str:
    progress = task.get("progress") or {}
    request = task.get("request") or {}
    lines = [
        f"task     {task.get('task_id')}",
        f"status   {task.get('status')} ({progress.get('stage')} {progress.get('percent')}%)",
        f"created  {task.get('created_at')}",
        f"language {request.get('language')}",
        f"brief    {short(request.get('brief', ''), 100)}",
    ]
    result = task.get("result") or {}
    if result.get("strategy"):
        lines.append(f"strategy {result['strategy'].get('strategy_name')}")
        if result.get("image"):
            lines.append(f"image    {result['image'].get('mime_type')}")
    cost = result.get("cost")
    if cost:
        amount = float(cost.get("amount") or 0)
        lines.append(f"cost     {amount:.4f} {cost.get('currency') or 'EUR'}")
    if task.get("error"):
        error = task["error"]
        lines.append(f"error    {error.get('code')}: {error.get('message')}")
    return "\n".join(lines + webhook_lines(task))


def webhook_lines(task: dict[str, Any]) -> list[str]:
    """The webhook's URL and delivery: nothing for a task without one; before its end,
    that it will be sent; after, its state and each attempt (when, status, how long)."""
    url = (task.get("request") or {}).get("webhook_url")
    delivery = task.get("webhook")
    if not url and not delivery:
        return []
    where = short(url, 100) if url else "(no URL)"
    if not delivery:
        return [f"webhook  {where}: sent when the task ends"]
    attempts = delivery.get("attempts") or []
    state = delivery.get("state")
    if state == "DELIVERED":
        status = f"DELIVERED at {delivery.get('finished_at')}"
    elif state == "FAILED":
        status = f"FAILED: given up after {len(attempts)} attempts at {delivery.get('finished_at')}"
    else:
        status = f"{state}: next attempt at {delivery.get('due_at') or 'once due'}"
    lines = [
        f"webhook  {where}",
        f"         {delivery.get('event_type')} {delivery.get('event_id')}: {status}",
    ]
    for number, attempt in enumerate(attempts, 1):
        code = attempt.get("status_code")
        answer = f"HTTP {code}" if code is not None else "no answer"
        why = f" ({short(attempt['error'], 80)})" if attempt.get("error") else ""
        lines.append(
            f"         {number:>2}. {attempt.get('at')}  {answer}{why}  "
            f"{attempt.get('latency_ms', 0)} ms"
        )
    return lines
