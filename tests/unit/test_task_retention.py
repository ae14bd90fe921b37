"""Finished tasks expire (issue 19, "Forget it"): every turn to a final status sets the
``expires_at`` a TTL policy deletes the task at, TASK_RETENTION_DAYS later."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from shared.models import TaskError, TaskStatus
from shared.settings import get_settings
from shared.tasks import terminal_fields

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def retention(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TASK_RETENTION_DAYS", "30")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.parametrize("status", [TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED])
def test_every_final_status_sets_the_expiry(status: TaskStatus) -> None:
    error = TaskError(code="x", message="y", retryable=False)
    fields = terminal_fields(status, NOW, error=error if status is TaskStatus.FAILED else None)
    assert fields["expires_at"] == NOW + timedelta(days=30)
    assert fields["completed_at"] == NOW


def test_the_retention_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASK_RETENTION_DAYS", "0")
    get_settings.cache_clear()
    with pytest.raises(ValueError, match="task_retention_days"):
        get_settings()
