"""Per-user limits on the accept path: tasks per minute and tasks in flight.

Both are counted with Firestore aggregation queries on the user's own tasks.
Two requests racing past a cap at once may both get in: the caps protect the
Gemini budget from runaway clients, not to the unit.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from google.cloud.firestore_v1.base_query import FieldFilter

from shared import clients
from shared.errors import RateLimited
from shared.models import TaskStatus
from shared.settings import get_settings

WINDOW = timedelta(minutes=1)
IN_FLIGHT_RETRY_AFTER_S = 15
IN_FLIGHT = [TaskStatus.PENDING.value, TaskStatus.PROCESSING.value]


def _count(query: object) -> int:
    results = query.count().get()  # type: ignore[attr-defined]
    return int(results[0][0].value)


def check_user_limits(uid: str, now: datetime, pool: ThreadPoolExecutor) -> None:
    settings = get_settings()
    tasks = clients.firestore().collection(settings.tasks_collection)
    mine = tasks.where(filter=FieldFilter("uid", "==", uid))
    in_flight = recent = None
    if settings.max_tasks_in_flight_per_user:
        in_flight = pool.submit(_count, mine.where(filter=FieldFilter("status", "in", IN_FLIGHT)))
    if settings.max_tasks_per_user_per_minute:
        recent = pool.submit(
            _count, mine.where(filter=FieldFilter("created_at", ">=", now - WINDOW))
        )
    if recent is not None and recent.result() >= settings.max_tasks_per_user_per_minute:
        raise RateLimited(
            f"at most {settings.max_tasks_per_user_per_minute} tasks a minute per user",
            retry_after_s=int(WINDOW.total_seconds()),
        )
    if in_flight is not None and in_flight.result() >= settings.max_tasks_in_flight_per_user:
        raise RateLimited(
            f"at most {settings.max_tasks_in_flight_per_user} unfinished tasks per user",
            retry_after_s=IN_FLIGHT_RETRY_AFTER_S,
        )
