"""Cloud Functions entry points (SPEC §1).

One source tree deploys all six: ``gcloud functions deploy NAME --gen2
--source=. --entry-point=NAME`` (submit_strategy, task_status, process_task,
dead_letter_task, sweep_tasks, deliver_webhook). The
entry points are resolved lazily, so that each function imports only its own
dependencies: the HTTP functions never load ``google.genai``.
"""

from __future__ import annotations

import importlib
from typing import Any

_ENTRY_POINTS = {
    "submit_strategy": "functions.submit",
    "process_task": "functions.process",
    "task_status": "functions.status",
    "dead_letter_task": "functions.recovery",
    "sweep_tasks": "functions.recovery",
    "deliver_webhook": "functions.webhooks",
}

__all__ = list(_ENTRY_POINTS)


def __getattr__(name: str) -> Any:
    module = _ENTRY_POINTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # Fail the cold start, not every request, on a configuration the settings refuse
    # (emulator variables with a real project, a lease shorter than one attempt...).
    from shared.settings import get_settings

    get_settings()
    return getattr(importlib.import_module(module), name)
