"""Following a task live: a Firestore realtime listener as the user, else polling.

The listener reads ``tasks/{task_id}`` with the user's own ID token, so the
security rules decide what it may read (firestore.rules: a task's owner only),
against the real service and against the local emulator alike. When it cannot
connect (no first snapshot in time, or Firestore ends the stream), the task is
followed through ``GET /v1/tasks/{id}`` with exponential backoff instead. While
the listener is quiet for a while, one GET checks that no write was missed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from cli.auth import Auth
from cli.config import Target
from cli.errors import CliError, Exit
from cli.terminal import printable
from shared.models import TaskPublic

TASKS_COLLECTION = "tasks"  # the collection firestore.rules opens to its owners
TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
LISTENER_TIMEOUT_S = 10.0  # for the first snapshot; TINKERBELL_LISTENER_TIMEOUT_S
SILENCE_CHECK_S = 30.0  # a quiet listener is checked with one GET this often
POLL_MIN_S = 0.5
POLL_MAX_S = 8.0
LIST_TIMEOUT_S = 20.0
PUBLIC_FIELDS = frozenset(TaskPublic.model_fields)


def listener_timeout(env: dict[str, str] | None = None) -> float:
    raw = (os.environ if env is None else env).get("TINKERBELL_LISTENER_TIMEOUT_S")
    try:
        return float(raw) if raw else LISTENER_TIMEOUT_S
    except ValueError:
        return LISTENER_TIMEOUT_S


def plain(value: Any) -> Any:
    """A Firestore value as the HTTP API would show it in JSON (timestamps ISO 8601, UTC)."""
    if isinstance(value, datetime):
        text = value.astimezone(UTC).isoformat()
        return text.replace("+00:00", "Z")
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def public_task(data: dict[str, Any]) -> dict[str, Any]:
    """A task document without the worker's internal fields (what GET /v1/tasks answers)."""
    return {k: plain(v) for k, v in data.items() if k in PUBLIC_FIELDS}


# ---------------------------------------------------------------- Firestore as the user


def firestore_client(target: Target, auth: Auth) -> Any:
    """A Firestore client that reads as the signed-in user.

    Against the real service it carries the user's Firebase ID token as its OAuth
    credentials (refreshed through ``auth`` when it expires), so Firestore applies
    the security rules to it exactly as to the web app.

    Against the emulator the Python client always sends ``Authorization: Bearer
    owner`` (admin, which bypasses the rules; shared/EMULATORS.md). We replace that
    header with the user's emulator ID token, which the Firestore emulator checks
    against firestore.rules too. Should a future client library not have the private
    attribute used for that, the listener stays admin: acceptable for a local stack,
    never the case against the real service.
    """
    from google.cloud import firestore

    user = auth.firestore_user()  # an emulator's token to a local emulator only
    if target.firestore_emulator:
        os.environ["FIRESTORE_EMULATOR_HOST"] = target.firestore_emulator
        client = firestore.Client(project=target.project)
        try:
            from google.cloud.firestore_v1 import _helpers

            metadata = _helpers.metadata_with_prefix(client._database_string)
            metadata.append(("authorization", f"Bearer {user.id_token}"))
            client._rpc_metadata_internal = metadata
        except (ImportError, AttributeError):  # pragma: no cover - a changed library
            pass
        return client
    os.environ.pop("FIRESTORE_EMULATOR_HOST", None)  # a stray one would send us elsewhere
    from google.oauth2.credentials import Credentials

    def refresh(_request: Any, scopes: Any = None) -> tuple[str, datetime]:
        fresh = auth.id_token(force_refresh=True)
        stored = auth.current()
        expires = stored.expires_at if stored else time.time() + 3000
        # google-auth compares expiry with a naive UTC datetime.
        return fresh, datetime.fromtimestamp(expires, UTC).replace(tzinfo=None)

    expiry = datetime.fromtimestamp(user.expires_at, UTC).replace(tzinfo=None)
    credentials = Credentials(token=user.id_token, expiry=expiry, refresh_handler=refresh)
    return firestore.Client(project=target.project, credentials=credentials)


class ListenerTrouble(logging.Handler):
    """Collects what the listener's background threads report (a rules denial, a lost
    stream) instead of letting them print tracebacks on the user's terminal."""

    LOGGERS = ("google.api_core.bidi", "google.cloud.firestore_v1.watch")

    def __init__(self, level: int = logging.WARNING) -> None:
        super().__init__(level)
        self.problems: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        self.problems.append(str(error) if error else record.getMessage())

    def thread_failed(self, failure: threading.ExceptHookArgs) -> None:
        self.problems.append(f"{failure.exc_type.__name__}: {failure.exc_value}")

    def summary(self) -> str:
        if not self.problems:
            return ""
        text = " ".join(self.problems[-1].split())
        if "PermissionDenied" in text or "Error 7" in text or "permission" in text.lower():
            return "Firestore refused the listener (permission denied)"
        return text[:200]

    @contextmanager
    def installed(self) -> Iterator[ListenerTrouble]:
        loggers = [logging.getLogger(name) for name in self.LOGGERS]
        saved = [logger.propagate for logger in loggers]
        previous_hook = threading.excepthook
        for logger in loggers:
            logger.addHandler(self)
            logger.propagate = False
        threading.excepthook = self.thread_failed
        try:
            yield self
        finally:
            threading.excepthook = previous_hook
            for logger, propagate in zip(loggers, saved, strict=True):
                logger.removeHandler(self)
                logger.propagate = propagate


def list_tasks(target: Target, auth: Auth, limit: int) -> list[dict[str, Any]]:
    """The user's most recent tasks, newest first: a Firestore query as the user
    (``uid == me``, what the rules allow; index uid + created_at desc)."""
    from google.api_core import exceptions
    from google.api_core.retry import Retry
    from google.cloud.firestore_v1.base_query import FieldFilter

    user = auth.user()
    trouble = ListenerTrouble()
    with trouble.installed():
        client = firestore_client(target, auth)
        try:
            query = (
                client.collection(TASKS_COLLECTION)
                .where(filter=FieldFilter("uid", "==", user.uid))
                .order_by("created_at", direction="DESCENDING")
                .limit(limit)
            )
            retry = Retry(deadline=LIST_TIMEOUT_S)
            snapshots = query.get(retry=retry, timeout=LIST_TIMEOUT_S)
        except exceptions.PermissionDenied:
            raise CliError(
                "Firestore refused to list the tasks (permission denied)", Exit.AUTH
            ) from None
        except exceptions.Unauthenticated:
            raise CliError(
                "Firestore refused the sign-in: run `tinkerbell login`", Exit.AUTH
            ) from None
        except (exceptions.GoogleAPIError, exceptions.RetryError) as error:
            where = target.firestore_emulator or "Firestore"
            message = " ".join(str(error).split())[:160]
            raise CliError(f"cannot list the tasks from {where}: {message}", Exit.NETWORK) from None
        finally:
            client.close()
    return [public_task(s.to_dict() or {}) for s in snapshots]


# ---------------------------------------------------------------- progress on stderr


def _stage_of(task: dict[str, Any]) -> tuple[str, str, int]:
    progress = task.get("progress") or {}
    status = str(task.get("status") or "?")
    stage = str(progress.get("stage") or status.lower())
    try:
        percent = int(progress.get("percent") or 0)
    except (TypeError, ValueError):
        percent = 0
    return status, stage, percent


class ProgressView:
    """A progress bar of the task's stage and percent on a terminal; plain lines (one per
    change) when stderr is not a terminal; nothing when quiet. Strategy drafts (the
    strategy as Gemini writes it) appear as their steps arrive."""

    WIDTH = 24

    def __init__(
        self, stream: TextIO | None = None, *, quiet: bool = False, tty: bool | None = None
    ) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = self.stream.isatty() if tty is None else tty
        encoding = (getattr(self.stream, "encoding", "") or "").lower()
        self.full, self.empty = ("█", "░") if "utf" in encoding else ("#", "-")
        self.last: tuple[str, str, int] | None = None
        self.drawn = False
        self.draft_name: str | None = None
        self.draft_steps = 0

    def bar(self, status: str, stage: str, percent: int) -> str:
        filled = round(self.WIDTH * max(0, min(percent, 100)) / 100)
        blocks = self.full * filled + self.empty * (self.WIDTH - filled)
        shown = printable(f"{status.lower()}: {stage.replace('_', ' ')}")
        return f"[{blocks}] {percent:3d}%  {shown}"

    def update(self, task: dict[str, Any]) -> None:
        if self.quiet:
            return
        self._draft(task.get("draft"))
        seen = _stage_of(task)
        if seen == self.last:
            return
        self.last = seen
        if self.tty:
            self.stream.write("\r\033[K" + self.bar(*seen))
            self.drawn = True
        else:
            status, stage, percent = seen
            self.stream.write(printable(f"{status} {stage} {percent}%") + "\n")
        self.stream.flush()

    def note(self, line: str) -> None:
        """A line above the bar."""
        if self.quiet:
            return
        line = printable(line)
        if self.tty and self.drawn:
            self.stream.write("\r\033[K" + line + "\n")
            if self.last:
                self.stream.write(self.bar(*self.last))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def _draft(self, draft: Any) -> None:
        if not isinstance(draft, dict):
            return
        name = draft.get("strategy_name")
        if isinstance(name, str) and name and self.draft_name is None:
            self.draft_name = name
            self.note(f"  writing: {name}")
        steps = draft.get("steps")
        if isinstance(steps, list) and len(steps) > self.draft_steps:
            for step in steps[self.draft_steps :]:
                if isinstance(step, dict):
                    self.note(f"  {step.get('step_number', '?')}. {step.get('description', '')}")
            self.draft_steps = len(steps)

    def finish(self) -> None:
        if self.tty and self.drawn and not self.quiet:
            self.stream.write("\n")
            self.stream.flush()
        self.drawn = False


# ---------------------------------------------------------------- following

# What a listener pushes: (document id, its data, or None when it does not exist); a
# (None, None) says "connected" (a first snapshot without the task in it).
Push = Callable[[str | None, dict[str, Any] | None], None]
OpenListener = Callable[[Push], Any]  # returns the watch (is_active, unsubscribe())


class ListenerUnavailable(Exception):
    """The listener could not follow the task; the message says why."""


@dataclass
class FollowResult:
    task: dict[str, Any]
    via: str = "listener"  # "listener", "polling", or "listener+polling" after a fallback
    snapshots: int = 0  # listener snapshots of the task received
    polls: int = 0  # GET /v1/tasks answers used
    fallback_reason: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "via": self.via,
            "snapshots": self.snapshots,
            "polls": self.polls,
            "fallback_reason": self.fallback_reason,
            "events": self.events,
        }


class Follower:
    """Follows one task to its end: listener first, polling when the listener fails.

    ``start()`` may open the listener before the task exists (``submit --wait``
    listens to the user's recent tasks before it submits, so that it sees PENDING
    too); ``follow()`` opens it otherwise.
    """

    def __init__(
        self,
        get_task: Callable[[str], dict[str, Any]],
        view: ProgressView,
        *,
        open_listener: OpenListener | None,
        listener_timeout_s: float = LISTENER_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        trouble: ListenerTrouble | None = None,
    ) -> None:
        self.get_task = get_task
        self.view = view
        self.open_listener = open_listener
        self.listener_timeout_s = listener_timeout_s
        self.clock = clock
        self.sleep = sleep
        self.trouble = trouble or ListenerTrouble()
        self.started = clock()
        self.result = FollowResult(task={})
        self.updates: queue.Queue[tuple[str | None, dict[str, Any] | None]] = queue.Queue()
        self.watch: Any = None
        self.opened_at: float | None = None
        self.open_error: str | None = None
        self._quiet_threads = contextlib.ExitStack()

    def start(self) -> None:
        """Open the listener (once); a failure is kept for ``follow`` to fall back on."""
        if self.opened_at is not None or self.open_error is not None:
            return
        if self.open_listener is None:
            self.open_error = "no listener"
            return
        self._quiet_threads.enter_context(self.trouble.installed())
        self.opened_at = self.clock()
        try:
            self.watch = self.open_listener(lambda i, d: self.updates.put((i, d)))
        except CliError:
            self.close()
            raise
        except Exception as error:  # the client library could not even start
            self.open_error = f"{type(error).__name__}: {error}"

    def close(self) -> None:
        if self.watch is not None:
            with contextlib.suppress(Exception):  # closing a broken stream may raise
                self.watch.unsubscribe()
            self.watch = None
        self._quiet_threads.close()

    def _seen(self, task: dict[str, Any], via: str) -> None:
        self.result.task = task
        status, stage, percent = _stage_of(task)
        events = self.result.events
        last = None
        if events:
            last = (events[-1]["status"], events[-1]["stage"], events[-1]["percent"])
        if last != (status, stage, percent):
            elapsed = round(self.clock() - self.started, 3)
            events.append(
                {"status": status, "stage": stage, "percent": percent, "elapsed_s": elapsed}
                | {"via": via}
            )
        self.view.update(task)

    def follow(self, task_id: str, timeout_s: float) -> FollowResult:
        """Until the task is final or ``timeout_s`` has passed (then ``result.task`` is
        the last state seen, not final)."""
        deadline = self.clock() + timeout_s
        try:
            try:
                self.start()
                if self.open_error is not None:
                    raise ListenerUnavailable(self.open_error)
                self._listen(task_id, deadline)
                return self.result
            except ListenerUnavailable as reason:
                self.result.fallback_reason = str(reason)
                self.result.via = "listener+polling" if self.result.snapshots else "polling"
            finally:
                self.close()
            self._poll(task_id, deadline)
            return self.result
        finally:
            self.view.finish()

    def _terminal(self) -> bool:
        return self.result.task.get("status") in TERMINAL

    def _check(self, task_id: str) -> None:
        self.result.polls += 1
        self._seen(self.get_task(task_id), "poll")

    def _listen(self, task_id: str, deadline: float) -> None:
        assert self.opened_at is not None
        connected = False
        first_by = self.opened_at + self.listener_timeout_s
        checked_unseen = False
        quiet_since = self.clock()
        while not self._terminal():
            now = self.clock()
            if now >= deadline:
                return
            try:
                doc_id, data = self.updates.get(timeout=min(1.0, max(deadline - now, 0.01)))
            except queue.Empty:
                pass
            else:
                connected = True
                if doc_id != task_id:
                    continue  # "connected", or another task of the user
                if data is None:  # the document does not exist (or is not ours)
                    raise ListenerUnavailable("the listener does not see the task")
                quiet_since = self.clock()
                self.result.snapshots += 1
                self._seen(public_task(data), "listener")
                continue
            now = self.clock()
            if self.watch is not None and not getattr(self.watch, "is_active", True):
                raise ListenerUnavailable(self.trouble.summary() or "Firestore closed the listener")
            if not connected and now >= first_by:
                reason = self.trouble.summary() or "no answer from Firestore"
                raise ListenerUnavailable(f"{reason} within {self.listener_timeout_s:g} s")
            if connected and not self.result.snapshots and not checked_unseen and now >= first_by:
                checked_unseen = True  # connected, but the task has not shown up: ask once
                self._check(task_id)
            elif now - quiet_since >= SILENCE_CHECK_S:
                # A listen stream has been seen to miss a final write under load: ask once.
                quiet_since = now
                self._check(task_id)

    def _poll(self, task_id: str, deadline: float) -> None:
        delay = POLL_MIN_S
        while True:
            before = self.result.task
            self._check(task_id)
            if self._terminal():
                return
            changed = _stage_of(before) != _stage_of(self.result.task)
            delay = POLL_MIN_S if changed else min(delay * 2, POLL_MAX_S)
            remaining = deadline - self.clock()
            if remaining <= 0:
                return
            self.sleep(min(delay, remaining))


def document_listener(target: Target, auth: Auth, task_id: str) -> OpenListener:
    """A listener on ``tasks/{task_id}`` as the user."""

    def open_listener(push: Push) -> Any:
        client = firestore_client(target, auth)

        def on_snapshot(snapshots: list[Any], _changes: Any, _read_time: Any) -> None:
            for snapshot in snapshots:
                push(snapshot.id, snapshot.to_dict() if snapshot.exists else None)
            if not snapshots:
                push(task_id, None)

        reference = client.collection(TASKS_COLLECTION).document(task_id)
        return _Closing(reference.on_snapshot(on_snapshot), client)

    return open_listener


def recent_tasks_listener(target: Target, auth: Auth, window_s: float = 600.0) -> OpenListener:
    """A listener on the user's tasks created from ``window_s`` ago on (``uid == me``, what
    the rules allow; index uid + created_at), opened before a submit so that the new task
    is seen from PENDING on."""

    def open_listener(push: Push) -> Any:
        from google.cloud.firestore_v1.base_query import FieldFilter

        user = auth.user()
        client = firestore_client(target, auth)
        since = datetime.fromtimestamp(time.time() - window_s, UTC)

        def on_snapshot(_snapshots: list[Any], changes: list[Any], _read_time: Any) -> None:
            push(None, None)  # connected
            for change in changes:
                document = change.document
                if getattr(change.type, "name", "") != "REMOVED":
                    push(document.id, document.to_dict() or {})

        query = (
            client.collection(TASKS_COLLECTION)
            .where(filter=FieldFilter("uid", "==", user.uid))
            .where(filter=FieldFilter("created_at", ">=", since))
        )
        return _Closing(query.on_snapshot(on_snapshot), client)

    return open_listener


class _Closing:
    """The watch, closing its client with it."""

    def __init__(self, watch: Any, client: Any) -> None:
        self.watch = watch
        self.client = client

    @property
    def is_active(self) -> bool:
        return bool(self.watch.is_active)

    def unsubscribe(self) -> None:
        try:
            self.watch.unsubscribe()
        finally:
            self.client.close()
