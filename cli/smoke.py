"""``make smoke``: one Tinkerbell, deployed or local, checked end to end.

Against a deployed project it needs what ``infra/deploy.sh`` prints at the end,
as environment variables or in a file of those lines (``--env-file FILE``)::

    SUBMIT_URL=https://...   STATUS_URL=https://...
    FIREBASE_API_KEY=...     GOOGLE_CLOUD_PROJECT=...

Without them (no ``FIREBASE_API_KEY``) it reads the local stack's
``.stack/<name>/state.json`` (``--stack NAME``, default dev, or the stack of
``TB_STACK_STATE``) and talks to its emulators. ``FIREBASE_AUTH_EMULATOR_HOST`` and
``FIRESTORE_EMULATOR_HOST`` (both or neither) point an explicit configuration at
emulators too.

Steps, each reported as ``ok STEP (MS ms)`` or ``FAIL STEP: REASON``:

1. ``sign-up``: two throwaway anonymous users (Identity Toolkit ``accounts:signUp``);
2. ``listen``: a Firestore realtime listener on the first user's tasks (``where uid ==``,
   as the security rules require), live before the submit so that PENDING is seen too;
   against a deployed project it signs in as the user, so the rules apply (the
   emulator's Python client is always admin, shared/EMULATORS.md);
3. ``submit``: a Romanian brief with a URL and a small PDF, multipart: 202 and a task id;
4. ``follow``: the task's document through that listener, to COMPLETED within
   ``--timeout``, printing the stages seen (a FAILED task: its error code and message);
5. ``image``: the preview, as the owner: 200, the stated type, JPEG/PNG bytes;
6. ``other-user``: the second user gets 404 for the task and for its image;
7. ``cancel``: a second task (no image), cancelled at once: 200 and CANCELLED;
8. ``delete-users``: both users deleted (``accounts:delete``), whatever failed before.

The first failure ends the run (after ``delete-users``). Exit status: 0 all ok,
1 a step failed, 2 bad configuration. ``--json`` prints one JSON object per step.
The two tasks (and their PDF and preview) stay behind, owned by a deleted user.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx

from cli.follow import ListenerTrouble
from cli.sample_pdf import sample_pdf
from cli.smoke_target import FIRESTORE_EMULATOR, ConfigError, Target, resolve_target

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
DEFAULT_TIMEOUT_S = 180.0
LISTEN_TIMEOUT_S = 30.0  # for the listener's first snapshot

TASKS_COLLECTION = "tasks"  # the collection firestore.rules opens to its owners
TERMINAL = ("COMPLETED", "FAILED", "CANCELLED")
IMAGE_SIGNATURES = {"image/jpeg": b"\xff\xd8\xff", "image/png": b"\x89PNG\r\n\x1a\n"}

SAMPLE_URL = "https://example.com/"
BRIEF = (
    "Verificare automată Tinkerbell ({marker}). O brutărie artizanală din Iași vrea "
    "să-și dubleze comenzile online în trei luni, cu un buget de 3.000 EUR, "
    "mai ales printre familiile tinere din cartierele noi."
)
CANCEL_BRIEF = (
    "Verificare automată Tinkerbell ({marker}), sarcină anulată imediat: o florărie "
    "din Brașov pregătește campania de 8 Martie."
)


class StepFailed(Exception):
    """A step did not get what it expected; the message says what (exit 1)."""


# ---------------------------------------------------------------- reporting


@dataclass
class Outcome:
    """What a step that passed reports: one line of text, and fields for --json."""

    text: str = ""
    details: dict[str, Any] = field(default_factory=dict)


class Reporter:
    """Prints ``ok STEP (MS ms)`` / ``FAIL STEP: REASON`` lines, or JSON objects."""

    def __init__(self, as_json: bool, out: TextIO = sys.stdout) -> None:
        self.as_json = as_json
        self.out = out

    def note(self, text: str) -> None:
        """Progress between the step lines (text mode only)."""
        if not self.as_json:
            print(text, file=self.out, flush=True)

    def passed(self, step: str, ms: int, outcome: Outcome) -> None:
        if self.as_json:
            self._json(
                {"step": step, "ok": True, "ms": ms, "detail": outcome.text, **outcome.details}
            )
        else:
            suffix = f": {outcome.text}" if outcome.text else ""
            print(f"ok {step} ({ms} ms){suffix}", file=self.out, flush=True)

    def failed(self, step: str, ms: int, reason: str) -> None:
        if self.as_json:
            self._json({"step": step, "ok": False, "ms": ms, "error": reason})
        else:
            print(f"FAIL {step}: {reason}", file=self.out, flush=True)

    def _json(self, record: dict[str, Any]) -> None:
        print(json.dumps(record, ensure_ascii=False), file=self.out, flush=True)


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


# ---------------------------------------------------------------- HTTP helpers


@dataclass(frozen=True)
class User:
    uid: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def describe_http_error(error: httpx.HTTPError) -> str:
    """A transport failure in one line (no traceback)."""
    try:
        where = f"{error.request.method} {error.request.url}"
    except RuntimeError:  # no request attached
        where = "the request"
    if isinstance(error, httpx.ConnectError):
        return f"{where}: cannot connect ({error})"
    if isinstance(error, httpx.TimeoutException):
        return f"{where}: no answer in time ({type(error).__name__})"
    return f"{where}: {type(error).__name__}: {error}"


def answer_error(answer: httpx.Response) -> str:
    """``STATUS code: message`` from the API's error shape or Identity Toolkit's."""
    try:
        body = answer.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code, message = error.get("code"), error.get("message", "")
        if isinstance(code, str):  # the API's codes are words, Identity Toolkit's numbers
            return f"{answer.status_code} {code}: {message}"
        return f"{answer.status_code} {message}"
    return f"{answer.status_code} {answer.text[:200].strip()}"


def expect(answer: httpx.Response, status: int, what: str) -> httpx.Response:
    if answer.status_code != status:
        raise StepFailed(f"{what}: expected {status}, got {answer_error(answer)}")
    return answer


def json_field(answer: httpx.Response, key: str, what: str) -> Any:
    try:
        value = answer.json()[key]
    except (ValueError, KeyError, TypeError):
        raise StepFailed(f"{what}: no {key!r} in the answer: {answer.text[:200]}") from None
    return value


SIGN_UP_HINTS = {
    "ADMIN_ONLY_OPERATION": "anonymous sign-in is not enabled in Firebase Authentication",
    "OPERATION_NOT_ALLOWED": "anonymous sign-in is not enabled in Firebase Authentication",
    "API key not valid": "FIREBASE_API_KEY is not this project's web API key",
    "are blocked": "the API key's restrictions (HTTP referrers, APIs) exclude this caller",
}


def sign_up(http: httpx.Client, target: Target) -> User:
    answer = http.post(
        f"{target.identity_toolkit}/accounts:signUp",
        params={"key": target.api_key},
        json={"returnSecureToken": True},
    )
    if answer.status_code != 200:
        reason = answer_error(answer)
        hints = [hint for key, hint in SIGN_UP_HINTS.items() if key in reason]
        raise StepFailed(f"accounts:signUp: {reason}" + (f" ({hints[0]})" if hints else ""))
    return User(
        uid=json_field(answer, "localId", "accounts:signUp"),
        token=json_field(answer, "idToken", "accounts:signUp"),
    )


def delete_user(http: httpx.Client, target: Target, user: User) -> str | None:
    """None when deleted, else why not."""
    try:
        answer = http.post(
            f"{target.identity_toolkit}/accounts:delete",
            params={"key": target.api_key},
            json={"idToken": user.token},
        )
    except httpx.HTTPError as error:
        return f"user {user.uid}: {describe_http_error(error)}"
    if answer.status_code != 200:
        return f"user {user.uid}: accounts:delete {answer_error(answer)}"
    return None


# ---------------------------------------------------------------- the listener


@dataclass(frozen=True)
class Change:
    """A task's status or stage as the listener first saw it."""

    elapsed_s: float
    status: str
    stage: str
    percent: int

    def line(self) -> str:
        return f"    {self.elapsed_s:6.2f} s  {self.status} {self.stage} {self.percent}%"


class TasksListener:
    """The user's tasks (``where uid == me``, what the security rules let a client
    read), followed with a Firestore realtime listener attached before the submit,
    so that every stage is seen, PENDING included."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.ready = False
        self.started = time.monotonic()
        self.latest: dict[str, dict[str, Any]] = {}
        self.changes: dict[str, list[Change]] = {}

    def on_snapshot(self, snapshots: list[Any], _changes: Any, _read_time: Any) -> None:
        with self.changed:
            self.ready = True
            for snapshot in snapshots:
                self._record(snapshot.id, snapshot.to_dict() or {})
            self.changed.notify_all()

    def _record(self, task_id: str, data: dict[str, Any]) -> None:
        progress = data.get("progress") or {}
        status = str(data.get("status"))
        change = Change(
            elapsed_s=time.monotonic() - self.started,
            status=status,
            stage=str(progress.get("stage") or status.lower()),
            percent=int(progress.get("percent") or 0),
        )
        self.latest[task_id] = data
        seen = self.changes.setdefault(task_id, [])
        if not seen or (seen[-1].status, seen[-1].stage) != (change.status, change.stage):
            seen.append(change)


def firestore_client(target: Target, user: User) -> Any:
    """A Firestore client that, against a deployed project, acts as the user (the
    security rules apply); against the emulator it is admin (shared/EMULATORS.md)."""
    from google.cloud import firestore

    if target.firestore_emulator:
        os.environ[FIRESTORE_EMULATOR] = target.firestore_emulator
        return firestore.Client(project=target.project)
    os.environ.pop(FIRESTORE_EMULATOR, None)  # a stray one would send us elsewhere
    from google.oauth2.credentials import Credentials

    return firestore.Client(project=target.project, credentials=Credentials(token=user.token))


def read_directly(document: Any) -> str:
    """One plain read of the document, in words: its status, or why it failed."""
    from google.api_core import exceptions

    try:
        snapshot = document.get(timeout=20)
    except exceptions.GoogleAPICallError as error:
        return f"a direct read fails: {type(error).__name__}: {error.message}"
    status = (snapshot.to_dict() or {}).get("status") if snapshot.exists else "no document"
    return f"a direct read finds {status}"


# ---------------------------------------------------------------- the steps


class Smoke:
    """The steps, in order; the users are kept so that they are deleted in any case."""

    def __init__(
        self,
        target: Target,
        http: httpx.Client,
        reporter: Reporter,
        timeout: float,
        marker: str,
        webhook_url: str | None = None,
    ) -> None:
        self.webhook_url = webhook_url
        self.target = target
        self.http = http
        self.reporter = reporter
        self.timeout = timeout
        self.marker = marker
        self.users: list[User] = []
        # Errors only: the smoke test fails on what it collects.
        self.trouble = ListenerTrouble(logging.ERROR)
        self.listener = TasksListener()
        self.firestore: Any = None
        self.watch: Any = None
        self.task_id = ""
        self.task: dict[str, Any] = {}

    def run(self) -> int:
        failed = False
        with self.trouble.installed():
            try:
                for name, action in (
                    ("sign-up", self.sign_up),
                    ("listen", self.listen),
                    ("submit", self.submit),
                    ("follow", self.follow),
                    ("image", self.image),
                    ("webhook", self.webhook),
                    ("other-user", self.other_user),
                    ("cancel", self.cancel),
                ):
                    self.step(name, action)
            except StepFailed:
                failed = True
            finally:
                self.stop_listening()
                try:
                    self.step("delete-users", self.delete_users)
                except StepFailed:
                    failed = True
        return EXIT_FAILED if failed else EXIT_OK

    def step(self, name: str, action: Callable[[], Outcome]) -> None:
        started = time.monotonic()
        try:
            outcome = action()
        except StepFailed as failure:
            self.reporter.failed(name, _ms_since(started), str(failure))
            raise
        except httpx.HTTPError as error:
            self.reporter.failed(name, _ms_since(started), describe_http_error(error))
            raise StepFailed(name) from None
        self.reporter.passed(name, _ms_since(started), outcome)

    @property
    def owner(self) -> User:
        return self.users[0]

    def task_url(self, task_id: str) -> str:
        return f"{self.target.status_url}/v1/tasks/{task_id}"

    def sign_up(self) -> Outcome:
        while len(self.users) < 2:
            self.users.append(sign_up(self.http, self.target))
        uids = [user.uid for user in self.users]
        return Outcome(f"users {', '.join(uids)}", {"users": uids})

    def listen(self) -> Outcome:
        from google.cloud.firestore_v1.base_query import FieldFilter

        self.firestore = firestore_client(self.target, self.owner)
        query = self.firestore.collection(TASKS_COLLECTION).where(
            filter=FieldFilter("uid", "==", self.owner.uid)
        )
        self.watch = query.on_snapshot(self.listener.on_snapshot)
        bound = min(self.timeout, LISTEN_TIMEOUT_S)
        deadline = time.monotonic() + bound
        with self.listener.changed:
            while not self.listener.ready:  # live once its first (empty) snapshot arrives
                self.check_listener()
                if time.monotonic() > deadline:
                    raise StepFailed(
                        f"the listener got no first snapshot within {bound:g} s "
                        f"(is Firestore of project {self.target.project} reachable?)"
                    )
                self.listener.changed.wait(0.25)
        return Outcome(f"{TASKS_COLLECTION} where uid == {self.owner.uid}")

    def check_listener(self, task_id: str = "") -> None:
        """Fails when Firestore has ended the listener (rules, token, ...)."""
        if self.trouble.problems or not self.watch.is_active:
            problem = "; ".join(self.trouble.problems) or "the stream ended"
            reason = f"Firestore closed the listener ({problem})"
            if task_id:
                document = self.firestore.collection(TASKS_COLLECTION).document(task_id)
                reason += f"; {read_directly(document)}"
            raise StepFailed(reason)

    def stop_listening(self) -> None:
        if self.watch is not None:
            self.watch.unsubscribe()
        if self.firestore is not None:
            self.firestore.close()

    def submit(self) -> Outcome:
        url = f"{self.target.submit_url}/v1/strategies"
        pdf = sample_pdf(("Tinkerbell - verificare automata", f"Marcaj: {self.marker}"))
        self.listener.started = time.monotonic()
        answer = self.http.post(
            url,
            headers=self.owner.headers,
            files=[
                ("brief", (None, BRIEF.format(marker=self.marker))),
                ("language", (None, "ro")),
                ("urls", (None, SAMPLE_URL)),
                ("pdf", ("verificare.pdf", pdf, "application/pdf")),
                *([("webhook_url", (None, self.webhook_url))] if self.webhook_url else []),
            ],
        )
        expect(answer, 202, f"POST {url}")
        self.task_id = str(json_field(answer, "task_id", f"POST {url}"))
        return Outcome(f"task {self.task_id}", {"task_id": self.task_id})

    def follow(self) -> Outcome:
        self.task = self.wait_for_end(self.task_id)
        stages = [change.stage for change in self.listener.changes[self.task_id]]
        status = self.task.get("status")
        if status == "FAILED":
            error = self.task.get("error") or {}
            raise StepFailed(
                f"task {self.task_id} ended FAILED: {error.get('code')}: {error.get('message')}"
            )
        if status != "COMPLETED":
            raise StepFailed(f"task {self.task_id} ended {status}")
        if not (self.task.get("result") or {}).get("strategy"):
            raise StepFailed(f"task {self.task_id} is COMPLETED without a strategy")
        return Outcome(f"COMPLETED; stages {', '.join(stages)}", {"stages": stages})

    def wait_for_end(self, task_id: str) -> dict[str, Any]:
        """The task's document once it is terminal, its changes printed as they come."""
        deadline = time.monotonic() + self.timeout
        printed = 0
        with self.listener.changed:
            while True:
                changes = self.listener.changes.get(task_id, [])
                for change in changes[printed:]:
                    self.reporter.note(change.line())
                printed = len(changes)
                latest = self.listener.latest.get(task_id, {})
                if latest.get("status") in TERMINAL:
                    return dict(latest)
                self.check_listener(task_id)
                if time.monotonic() > deadline:
                    last = f"{changes[-1].status} {changes[-1].stage}" if changes else "nothing"
                    document = self.firestore.collection(TASKS_COLLECTION).document(task_id)
                    raise StepFailed(
                        f"task {task_id} not finished within {self.timeout:g} s through the "
                        f"listener (last seen: {last}; {read_directly(document)})"
                    )
                self.listener.changed.wait(0.25)

    def image(self) -> Outcome:
        result = self.task.get("result") or {}
        image = result.get("image")
        if not image:
            error = result.get("image_error") or {}
            raise StepFailed(
                f"the task has no preview image ({error.get('code')}: {error.get('message')})"
            )
        url = f"{self.task_url(self.task_id)}/image"
        answer = expect(self.http.get(url, headers=self.owner.headers), 200, f"GET {url}")
        mime_type = str(image.get("mime_type"))
        served = answer.headers.get("content-type", "").split(";")[0].strip().lower()
        if served != mime_type.lower():
            raise StepFailed(f"GET {url}: Content-Type {served!r}, the task says {mime_type!r}")
        signature = IMAGE_SIGNATURES.get(served)
        if signature is None or not answer.content.startswith(signature):
            raise StepFailed(
                f"GET {url}: {len(answer.content)} bytes that do not start like a JPEG or PNG "
                f"(first bytes {answer.content[:8]!r}, type {served})"
            )
        size = f"{image.get('width')}x{image.get('height')}"
        return Outcome(
            f"{len(answer.content)} bytes of {served}, {size}",
            {"mime_type": served, "bytes": len(answer.content)},
        )

    def webhook(self) -> Outcome:
        """The signing secret; with --webhook-url, the task's event delivered there by the
        deployed deliver_webhook (its account, its egress, the receiver's 2xx)."""
        url = f"{self.target.status_url}/v1/webhooks/secret"
        answer = expect(self.http.post(url, headers=self.owner.headers), 200, f"POST {url}")
        if not str(json_field(answer, "secret", f"POST {url}")).startswith("whsec_"):
            raise StepFailed(f"POST {url} answered a secret without the whsec_ prefix")
        if not self.webhook_url:
            return Outcome("secret ok; no --webhook-url, so no delivery checked")
        deadline = time.monotonic() + self.timeout
        while True:
            task = expect(
                self.http.get(self.task_url(self.task_id), headers=self.owner.headers),
                200,
                f"GET {self.task_url(self.task_id)}",
            ).json()
            delivery = task.get("webhook") or {}
            attempts = [
                f"{a.get('status_code') or a.get('error')} in {a.get('latency_ms')} ms"
                for a in delivery.get("attempts", [])
            ]
            if delivery.get("state") == "DELIVERED":
                return Outcome(f"delivered: {'; '.join(attempts)}", {"attempts": attempts})
            if delivery.get("state") == "FAILED" or time.monotonic() > deadline:
                state = delivery.get("state") or "not started"
                raise StepFailed(f"webhook {state}: {'; '.join(attempts) or 'no attempt yet'}")
            time.sleep(1.0)

    def other_user(self) -> Outcome:
        stranger = self.users[1]
        for url in (self.task_url(self.task_id), f"{self.task_url(self.task_id)}/image"):
            answer = self.http.get(url, headers=stranger.headers)
            if answer.status_code != 404:
                raise StepFailed(
                    f"GET {url} as another user: expected 404, got {answer.status_code}"
                )
        return Outcome("404 for the task and its image")

    def cancel(self) -> Outcome:
        url = f"{self.target.submit_url}/v1/strategies"
        body = {"brief": CANCEL_BRIEF.format(marker=self.marker), "language": "ro", "image": False}
        answer = self.http.post(url, headers=self.owner.headers, json=body)
        task_id = str(json_field(expect(answer, 202, f"POST {url}"), "task_id", f"POST {url}"))
        answer = self.http.delete(
            self.task_url(task_id), params={"cancel_only": "true"}, headers=self.owner.headers
        )
        if answer.status_code == 409:
            raise StepFailed(
                f"task {task_id} finished before the DELETE reached it ({answer_error(answer)}): "
                "the cancel could not be tested"
            )
        expect(answer, 200, f"DELETE {self.task_url(task_id)}")
        status = json_field(answer, "status", f"DELETE {self.task_url(task_id)}")
        if status != "CANCELLED":
            raise StepFailed(f"DELETE {self.task_url(task_id)}: 200 with status {status}")
        return Outcome(f"task {task_id} CANCELLED", {"task_id": task_id})

    def delete_users(self) -> Outcome:
        problems = [p for user in self.users if (p := delete_user(self.http, self.target, user))]
        if problems:
            raise StepFailed("; ".join(problems))
        return Outcome(f"{len(self.users)} users deleted")


# ---------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m cli.smoke",
        description="Check a deployed Tinkerbell (or the local stack) end to end.",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--env-file",
        type=Path,
        help="a file of deploy.sh's KEY=VALUE lines (SUBMIT_URL, STATUS_URL, "
        "FIREBASE_API_KEY, GOOGLE_CLOUD_PROJECT)",
    )
    where.add_argument("--stack", help="the local stack to check (default: dev)")
    parser.add_argument("--json", action="store_true", help="one JSON object per step")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help=f"seconds for the task to complete (default {DEFAULT_TIMEOUT_S:g})",
    )
    parser.add_argument(
        "--marker",
        default=None,
        help="a text put in the briefs, to find them in logs (default: smoke-<random>)",
    )
    parser.add_argument(
        "--webhook-url",
        default=None,
        help="an https receiver of yours: the smoke task's event must be delivered there",
    )
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        target = resolve_target(args.env_file, args.stack, os.environ)
    except ConfigError as error:
        print(f"smoke: {error}", file=sys.stderr)
        return EXIT_CONFIG
    reporter = Reporter(args.json)
    marker = args.marker or f"smoke-{uuid.uuid4().hex[:12]}"
    reporter.note(f"smoke test of {target.origin}: {target.submit_url}, project {target.project}")
    if target.auth_emulator:
        reporter.note(
            f"  emulators: auth {target.auth_emulator}, firestore {target.firestore_emulator}"
        )
    started = time.monotonic()
    timeout = httpx.Timeout(60.0, connect=10.0)
    with httpx.Client(timeout=timeout, headers={"User-Agent": "tinkerbell-smoke"}) as http:
        code = Smoke(target, http, reporter, args.timeout, marker, args.webhook_url).run()
    verdict = "all steps ok" if code == EXIT_OK else "FAILED"
    reporter.note(f"smoke {verdict} in {time.monotonic() - started:.1f} s (marker {marker})")
    return code


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
