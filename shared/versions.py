"""The versions of a strategy (issue 19, SPEC §2.8): a task and its revisions share a
``root_task_id`` (the first version's own id) and count up ``version`` from 1."""

from __future__ import annotations

from shared import clients, tasks
from shared.models import TaskRecord, VersionList, VersionSummary
from shared.settings import get_settings

MAX_VERSIONS = 500


def versions_of(task_id: str, *, uid: str) -> VersionList:
    """Every version of the owner's task's strategy, oldest first (deleted ones are gone;
    the others keep working). 404 for a task that is not the user's."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    task = tasks.get_owned_task(task_id, uid=uid)
    root = task.root_task_id or task.task_id
    collection = clients.firestore().collection(get_settings().tasks_collection)
    # One equality (served by the single-field index); the owner's are kept here.
    query = collection.where(filter=FieldFilter("root_task_id", "==", root)).limit(MAX_VERSIONS)
    found = {snap.id: TaskRecord.model_validate(snap.to_dict()) for snap in query.stream()}
    if root not in found and (first := tasks.get_task(root)) is not None:
        found[root] = first  # made before versions: it names no root
    mine = [record for record in found.values() if record.uid == uid]
    mine.sort(key=lambda record: (record.version, record.created_at))
    return VersionList(root_task_id=root, versions=[_summary(record) for record in mine])


def _summary(task: TaskRecord) -> VersionSummary:
    revision = task.request.revision
    return VersionSummary(
        task_id=task.task_id,
        version=task.version,
        parent_task_id=task.parent_task_id,
        status=task.status,
        created_at=task.created_at,
        instruction=revision.instruction if revision else None,
        strategy_name=task.result.strategy.strategy_name if task.result else None,
    )
