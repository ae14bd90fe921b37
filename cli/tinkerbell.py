"""``tinkerbell``: the command-line client of Tinkerbell (``pip install .`` installs it).

``run()`` is the whole command (it returns the exit code and never raises);
``main()`` is the console script. The commands, the configuration and the exit
codes are in the ``--help`` text below (``DESCRIPTION``, ``cli.errors``).
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TextIO

import httpx

from cli import export
from cli.api import Api, Pdf, check_task_id, new_idempotency_key, pdf_request_limit
from cli.auth import Auth, CredentialStore, StoredUser
from cli.config import (
    APP_CHECK_KEYS,
    KEYS,
    Target,
    config_dir,
    default_language,
    normalize_key,
    read_config_file,
    redact,
    resolve_target,
    write_config_file,
)
from cli.diff import diff_text, strategy_diff
from cli.errors import CliError, Exit, exit_for_task_status
from cli.follow import (
    Follower,
    FollowResult,
    OpenListener,
    ProgressView,
    document_listener,
    list_tasks,
    listener_timeout,
    recent_tasks_listener,
)
from cli.parser import build_parser
from cli.show import describe_task, short
from cli.terminal import json_line, printable

LEGACY_SIGN_IN = (
    "a sign-in kept by an older tinkerbell for this project is bound to no server and is "
    "not used: run `tinkerbell login`"
)
CONFIG_FILE = "config.json"
HTTP_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


@dataclass
class Output:
    """What a command produced: its exit code, its JSON object, its text for humans."""

    exit: Exit = Exit.OK
    data: dict[str, Any] = field(default_factory=dict)
    text: str | None = None  # on stdout
    note: str | None = None  # on stderr (an outcome that is not a success, a hint)
    binary: bytes | None = None  # on stdout instead of text (image -o -)


class Context:
    """The resolved configuration and clients of one invocation, made when first needed."""

    def __init__(
        self,
        args: argparse.Namespace,
        env: Mapping[str, str],
        cwd: Path,
        stderr: TextIO,
    ) -> None:
        self.args = args
        self.env = env
        self.cwd = cwd
        self.stderr = stderr
        self.directory = config_dir(env)
        self.config_path = self.directory / CONFIG_FILE
        self.store = CredentialStore(self.directory)
        self._target: Target | None = None
        self._http: httpx.Client | None = None

    def file_values(self) -> dict[str, str]:
        return read_config_file(self.config_path)

    @property
    def target(self) -> Target:
        if self._target is None:
            flags = {
                "SUBMIT_URL": getattr(self.args, "submit_url", None),
                "STATUS_URL": getattr(self.args, "status_url", None),
                "FIREBASE_API_KEY": getattr(self.args, "api_key", None),
                "GOOGLE_CLOUD_PROJECT": getattr(self.args, "project", None),
            }
            self._target = resolve_target(
                flags,
                self.env,
                self.file_values(),
                self.cwd,
                stack_flag=getattr(self.args, "stack", None),
            )
        return self._target

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(timeout=HTTP_TIMEOUT)
        return self._http

    @property
    def auth(self) -> Auth:
        return Auth(self.target, self.http, self.store)

    @property
    def api(self) -> Api:
        return Api(self.target, self.auth, self.http)

    def view(self) -> ProgressView:
        return ProgressView(self.stderr, quiet=bool(getattr(self.args, "quiet", False)))

    def close(self) -> None:
        if self._http is not None:
            self._http.close()


# ---------------------------------------------------------------- commands


def cmd_login(ctx: Context) -> Output:
    args, auth = ctx.args, ctx.auth
    legacy = auth.current() is None and auth.legacy() is not None  # replaced by this login
    if args.email:
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        elif sys.stdin.isatty():
            password = getpass.getpass(f"password for {args.email}: ")
        else:
            raise CliError("no terminal for the password prompt: use --password-stdin", Exit.USAGE)
        if not password:
            raise CliError("the password is empty", Exit.USAGE)
        user = auth.sign_in_email(args.email, password, create=args.create)
        action = "created and signed in" if args.create else "signed in"
    else:
        existing = auth.current()
        if existing is not None and not args.new:
            try:
                user = auth.refresh(existing)
                action = "already logged in"
            except CliError as error:
                if error.exit != Exit.AUTH:
                    raise
                if not existing.anonymous:
                    raise CliError(
                        f"the sign-in of {existing.email} is no longer valid: run `tinkerbell "
                        f"login --email {existing.email}` (or `tinkerbell login --new`)",
                        Exit.AUTH,
                    ) from None
                user = auth.sign_up_anonymous()  # e.g. the Auth emulator was restarted
                action = "signed in anonymously (the previous sign-in had expired)"
        else:
            user = auth.sign_up_anonymous()
            action = "signed in anonymously"
    note = None
    if legacy:
        note = (
            "tinkerbell: the sign-in an older tinkerbell kept for this project was bound to no "
            "server: not used, and replaced by this one"
        )
    return Output(
        note=note,
        data={
            "ok": True,
            "action": action,
            "user": user.public(),
            "target": ctx.target.origin,
            "credentials": str(ctx.store.path),
        },
        text=f"{action} as {user.describe()} on {ctx.target.origin}",
    )


def cmd_logout(ctx: Context) -> Output:
    if ctx.args.all:
        removed = ctx.store.remove_all()
        return Output(
            data={"ok": True, "removed": removed, "credentials": str(ctx.store.path)},
            text="signed out everywhere" if removed else "not logged in anywhere",
        )
    user = ctx.auth.logout()
    return Output(
        data={"ok": True, "removed": user is not None, "user": user.public() if user else None},
        text=f"signed out {user.describe()}" if user else "not logged in",
    )


def read_brief(args: argparse.Namespace) -> str:
    given = [x for x in (args.brief, args.file) if x is not None]
    if len(given) != 1:
        raise CliError(
            "give the brief as an argument, with --file FILE, or - for stdin", Exit.USAGE
        )
    try:
        if args.file is not None:
            brief = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
        else:
            brief = sys.stdin.read() if args.brief == "-" else args.brief
    except (OSError, UnicodeDecodeError) as error:
        raise CliError(f"cannot read the brief: {error}", Exit.USAGE) from None
    if not brief.strip():
        raise CliError("the brief is empty", Exit.USAGE)
    return brief


def choose_language(ctx: Context) -> str:
    """--language, else TINKERBELL_LANGUAGE, else the config file, else the locale."""
    if getattr(ctx.args, "language", None):
        return str(ctx.args.language)
    configured = ctx.env.get("TINKERBELL_LANGUAGE") or ctx.file_values().get("LANGUAGE")
    return configured or default_language(ctx.env)


def cmd_submit(ctx: Context) -> Output:
    args = ctx.args
    fields: dict[str, Any] = {
        "brief": read_brief(args),
        "language": choose_language(ctx),
        "image": not args.no_image,
        "grounding": args.grounding,
    }
    if args.url:
        fields["urls"] = list(args.url)
    if args.webhook_url:
        fields["webhook_url"] = args.webhook_url
    pdf = Pdf.read(Path(args.pdf)) if args.pdf else None
    key = args.idempotency_key or new_idempotency_key()
    follower = None
    if args.wait:  # listening before the submit, the task is seen from PENDING on
        follower = make_follower(ctx, recent_tasks_listener(ctx.target, ctx.auth))
        follower.start()
    try:
        accepted = ctx.api.submit(
            fields, pdf=pdf, idempotency_key=key, request_limit=pdf_request_limit(ctx.env)
        )
    except BaseException:
        if follower is not None:
            follower.close()
        raise
    task_id = str(accepted["task_id"])
    submitted = {
        "task_id": task_id,
        "status_url": accepted.get("status_url"),
        "idempotency_key": key,
        "pdf_via": accepted.get("pdf_via"),
    }
    if follower is None:
        note = None if args.quiet else f"submitted; follow it with: tinkerbell watch {task_id}"
        return Output(data=submitted | {"status": accepted.get("status")}, text=task_id, note=note)
    if not args.quiet and not args.json:
        ctx.stderr.write(f"task {task_id} submitted\n")
    return finished(ctx, follow(follower, task_id, args.timeout), submitted)


def cmd_revise(ctx: Context) -> Output:
    args = ctx.args
    fields: dict[str, Any] = {"instruction": args.instruction, "image": not args.no_image}
    if args.language:
        fields["language"] = args.language
    if args.webhook_url:
        fields["webhook_url"] = args.webhook_url
    key = args.idempotency_key or new_idempotency_key()
    follower = None
    if args.wait:
        follower = make_follower(ctx, recent_tasks_listener(ctx.target, ctx.auth))
        follower.start()
    try:
        accepted = ctx.api.revise(args.task, fields, idempotency_key=key)
    except BaseException:
        if follower is not None:
            follower.close()
        raise
    task_id = str(accepted["task_id"])
    submitted = {"task_id": task_id, "parent_task_id": args.task, "idempotency_key": key}
    if follower is None:
        note = (
            None
            if args.quiet
            else f"revision submitted; follow it with: tinkerbell watch {task_id}"
        )
        return Output(data=submitted | {"status": accepted.get("status")}, text=task_id, note=note)
    if not args.quiet and not args.json:
        ctx.stderr.write(f"revision {task_id} of {args.task} submitted\n")
    return finished(ctx, follow(follower, task_id, args.timeout), submitted)


def cmd_versions(ctx: Context) -> Output:
    listed = ctx.api.versions(ctx.args.task)
    lines = []
    for version in listed["versions"]:
        what = version.get("instruction") or "(first version)"
        name = version.get("strategy_name") or ""
        lines.append(
            f"v{version['version']}  {version['task_id']}  {version['status']:<10}  "
            f"{short(name, 40)}  {short(what, 50)}"
        )
    return Output(data=listed, text="\n".join(lines) or "no versions")


def cmd_diff(ctx: Context) -> Output:
    strategies = []
    for task_id in (ctx.args.task_a, ctx.args.task_b):
        task = ctx.api.task(task_id)
        strategy = (task.get("result") or {}).get("strategy")
        if strategy is None:
            raise CliError(f"task {task_id} has no strategy ({task.get('status')})", Exit.REFUSED)
        strategies.append(strategy)
    diff = strategy_diff(*strategies)
    text = diff_text(diff, ctx.args.task_a, ctx.args.task_b)
    return Output(data={"a": ctx.args.task_a, "b": ctx.args.task_b, "diff": diff}, text=text)


def make_follower(ctx: Context, open_listener: OpenListener) -> Follower:
    return Follower(
        ctx.api.task,
        ctx.view(),
        open_listener=open_listener,
        listener_timeout_s=listener_timeout(dict(ctx.env)),
    )


def follow(follower: Follower, task_id: str, timeout_s: float) -> FollowResult:
    result = follower.follow(task_id, timeout_s)
    status = result.task.get("status")
    if status not in ("COMPLETED", "FAILED", "CANCELLED"):
        state = f"still {status}" if status else "not finished"
        raise CliError(
            f"task {task_id} is {state} after {timeout_s:g} s; it keeps running "
            f"(tinkerbell watch {task_id})",
            Exit.TIMEOUT,
            code="timeout",
        )
    return result


def finished(ctx: Context, result: FollowResult, extra: dict[str, Any] | None = None) -> Output:
    task = result.task
    status = str(task.get("status"))
    data = {
        **(extra or {}),
        "task_id": task.get("task_id"),
        "status": status,
        "task": task,
        "follow": result.to_json(),
    }
    out = Output(exit=exit_for_task_status(status), data=data)
    if status == "COMPLETED":
        task_id = task.get("task_id")
        text = export.to_text(task) + f"\n\ntask {task_id}\n"
        text += f"  as Markdown: tinkerbell export {task_id} --format markdown -o strategy.md"
        if (task.get("result") or {}).get("image"):
            text += f"\n  its preview: tinkerbell image {task_id} -o preview.jpg"
        out.text = text
    elif status == "FAILED":
        error = task.get("error") or {}
        again = " (retryable: submit it again later)" if error.get("retryable") else ""
        out.note = f"tinkerbell: task {task.get('task_id')} FAILED: {error.get('code')}: "
        out.note += f"{error.get('message')}{again}"
    else:
        out.note = f"tinkerbell: task {task.get('task_id')} was CANCELLED"
    return out


def cmd_watch(ctx: Context) -> Output:
    task_id = check_task_id(ctx.args.task)
    follower = make_follower(ctx, document_listener(ctx.target, ctx.auth, task_id))
    return finished(ctx, follow(follower, task_id, ctx.args.timeout))


def cmd_status(ctx: Context) -> Output:
    task = ctx.api.task(ctx.args.task)
    return Output(data=task, text=describe_task(task))


def cmd_list(ctx: Context) -> Output:
    if ctx.args.limit < 1:
        raise CliError("--limit must be at least 1", Exit.USAGE)
    tasks = list_tasks(ctx.target, ctx.auth, ctx.args.limit)
    rows = []
    for task in tasks:
        progress = task.get("progress") or {}
        strategy = (task.get("result") or {}).get("strategy") or {}
        rows.append(
            {
                "task_id": task.get("task_id"),
                "status": task.get("status"),
                "stage": progress.get("stage"),
                "percent": progress.get("percent"),
                "created_at": task.get("created_at"),
                "language": (task.get("request") or {}).get("language"),
                "brief": short((task.get("request") or {}).get("brief"), 120),
                "strategy_name": strategy.get("strategy_name"),
            }
        )
    lines = [
        f"{str(r['created_at'])[:19].replace('T', ' ')}  {r['task_id']}  {r['status']:<10}  "
        f"{short(r['strategy_name'] or r['brief'], 60)}"
        for r in rows
    ]
    return Output(data={"tasks": rows, "count": len(rows)}, text="\n".join(lines) or "no tasks")


def cmd_webhook_secret(ctx: Context) -> Output:
    """The key the user's webhook events are signed with (docs/webhooks.md): alone on
    stdout, for `export TINKERBELL_WEBHOOK_SECRET="$(tinkerbell webhook-secret)"`."""
    made = ctx.api.webhook_secret(rotate=ctx.args.rotate)
    note = None
    if ctx.args.rotate and not ctx.args.quiet:
        note = "rotated: events are signed with this secret from now on; the old one is void"
    return Output(data=made, text=str(made["secret"]), note=note)


def cmd_cancel(ctx: Context) -> Output:
    task = ctx.api.cancel(ctx.args.task)
    return Output(data=task, text=f"task {task.get('task_id')} {task.get('status')}")


def confirm(ctx: Context, question: str) -> None:
    """Ask before what cannot be undone; --yes answers for a script."""
    if ctx.args.yes:
        return
    if not sys.stdin.isatty():
        raise CliError("this cannot be undone: add --yes to confirm", Exit.USAGE)
    ctx.stderr.write(f"{question} [y/N] ")
    ctx.stderr.flush()
    if sys.stdin.readline().strip().lower() not in ("y", "yes"):
        raise CliError("nothing was deleted", Exit.USAGE)


def cmd_delete(ctx: Context) -> Output:
    confirm(ctx, f"delete task {ctx.args.task} for good?")
    cancelled = ctx.api.delete(ctx.args.task)
    if cancelled is not None:
        return Output(
            data=cancelled,
            text=f"task {ctx.args.task} was unfinished: CANCELLED (delete it again to erase it)",
        )
    return Output(data={"ok": True, "deleted": ctx.args.task}, text=f"task {ctx.args.task} deleted")


def cmd_forget_me(ctx: Context) -> Output:
    confirm(ctx, f"erase every task and upload of yours on {ctx.target.origin}, and your sign-in?")
    erased = ctx.api.forget_me()
    ctx.auth.logout()  # the user is gone: so is its kept sign-in
    return Output(
        data=erased,
        text=f"erased {erased.get('tasks', 0)} tasks and {erased.get('objects', 0)} files; "
        "you are signed out",
    )


def write_output(path: str, data: bytes) -> Path:
    target = Path(path)
    try:
        target.write_bytes(data)
    except OSError as error:
        raise CliError(f"cannot write {target}: {error.strerror or error}", Exit.USAGE) from None
    return target


def cmd_image(ctx: Context) -> Output:
    if ctx.args.output == "-" and ctx.args.json:
        raise CliError("-o - writes the image to stdout: not with --json", Exit.USAGE)
    data, content_type = ctx.api.image(ctx.args.task)
    info = {"task_id": ctx.args.task, "content_type": content_type, "bytes": len(data)}
    if ctx.args.output == "-":
        return Output(data=info, binary=data)
    path = write_output(ctx.args.output, data)
    return Output(
        data=info | {"path": str(path)},
        text=f"wrote {path} ({content_type}, {len(data)} bytes)",
    )


def cmd_export(ctx: Context) -> Output:
    task = ctx.api.task(ctx.args.task)
    info: dict[str, Any] = {"task_id": ctx.args.task, "format": ctx.args.format}
    if ctx.args.format == "markdown":
        content = export.to_markdown(task)
        info["content"] = content
    else:
        strategy = export.strategy_of(task)
        content = json.dumps(strategy, indent=2, ensure_ascii=False) + "\n"
        info["strategy"] = strategy
    if ctx.args.output and ctx.args.output != "-":
        path = write_output(ctx.args.output, content.encode())
        info = {k: v for k, v in info.items() if k not in ("content", "strategy")}
        info |= {"path": str(path), "bytes": len(content.encode())}
        return Output(data=info, text=f"wrote {path}")
    return Output(data=info, text=content.rstrip("\n"))


def cmd_config(ctx: Context) -> Output:
    args = ctx.args
    values = ctx.file_values()
    if args.config_command == "set":
        key = normalize_key(args.key)
        values[key] = args.value
        write_config_file(ctx.config_path, values)
        return Output(
            data={"ok": True, "path": str(ctx.config_path), "values": redact(values)},
            text=f"{key} set in {ctx.config_path}",
        )
    if args.config_command == "unset":
        key = normalize_key(args.key)
        removed = values.pop(key, None) is not None
        write_config_file(ctx.config_path, values)
        return Output(
            data={"ok": True, "removed": removed, "path": str(ctx.config_path)},
            text=f"{key} removed" if removed else f"{key} was not set",
        )
    # show
    data: dict[str, Any] = {
        "config_file": str(ctx.config_path),
        "credentials_file": str(ctx.store.path),
        "file_values": redact(values),
        "environment": redact(
            {
                f"TINKERBELL_{k}": ctx.env[f"TINKERBELL_{k}"]
                for k in (*KEYS, "LANGUAGE", "STACK_STATE", *APP_CHECK_KEYS)
                if ctx.env.get(f"TINKERBELL_{k}")
            }
        ),
        "language": choose_language(ctx),
    }
    lines = [f"config file       {ctx.config_path}", f"credentials file  {ctx.store.path}"]
    try:
        target = ctx.target
    except CliError as error:
        data |= {"target": None, "problem": error.message, "user": None}
        lines.append(f"target            none: {error.message}")
        return Output(data=data, text="\n".join(lines))
    user: StoredUser | None = ctx.auth.current()
    data |= {"target": target.to_json(), "user": user.public() if user else None}
    lines += [
        f"target            {target.origin}",
        f"  submit          {target.submit_url}",
        f"  status          {target.status_url}",
        f"  project         {target.project}",
    ]
    if target.auth_emulator:
        lines.append(f"  auth emulator   {target.auth_emulator}")
    if target.firestore_emulator:
        lines.append(f"  firestore emu.  {target.firestore_emulator}")
    if target.app_check_token:
        app = target.app_check_app_id or "FIREBASE_APP_ID missing"
        lines.append(f"  app check       a debug token (not shown), app {app}")
    lines.append(f"user              {user.describe() if user else 'not logged in'}")
    if user is None and ctx.auth.legacy() is not None:
        data["problem"] = LEGACY_SIGN_IN
        lines.append(f"                  ({LEGACY_SIGN_IN})")
    return Output(data=data, text="\n".join(lines))


# ---------------------------------------------------------------- the parser


COMMANDS: dict[str, Callable[[Context], Output]] = {
    "login": cmd_login,
    "logout": cmd_logout,
    "submit": cmd_submit,
    "watch": cmd_watch,
    "status": cmd_status,
    "list": cmd_list,
    "cancel": cmd_cancel,
    "revise": cmd_revise,
    "versions": cmd_versions,
    "diff": cmd_diff,
    "delete": cmd_delete,
    "forget-me": cmd_forget_me,
    "webhook-secret": cmd_webhook_secret,
    "image": cmd_image,
    "export": cmd_export,
    "config": cmd_config,
}


def run(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run one command; returns its exit code. Nothing escapes as a traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    env = os.environ if env is None else env
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    as_json = "--json" in argv
    ctx: Context | None = None
    try:
        with contextlib.redirect_stdout(stdout):  # --help
            args = build_parser().parse_args(argv)
        for name in ("json", "quiet"):
            setattr(args, name, bool(getattr(args, name, False)))
        ctx = Context(args, env, cwd or Path.cwd(), stderr)
        out = COMMANDS[args.command](ctx)
    except CliError as error:
        return fail(error, as_json, stdout, stderr)
    except SystemExit as done:  # --help
        return done.code if isinstance(done.code, int) else 0
    except KeyboardInterrupt:
        fail(CliError("interrupted", Exit.INTERNAL, code="interrupted"), as_json, stdout, stderr)
        return 130
    except Exception as error:  # a bug: one line, not a traceback
        detail = " ".join(str(error).split())[:300]
        message = f"unexpected error: {type(error).__name__}: {detail}"
        return fail(CliError(message, Exit.INTERNAL, code="internal"), as_json, stdout, stderr)
    finally:
        if ctx is not None:
            ctx.close()
    if out.note:
        stderr.write(printable(out.note) + "\n")
    if args.json:
        stdout.write(json_line(out.data) + "\n")
    elif out.binary is not None:
        stdout.flush()
        binary: Any = getattr(stdout, "buffer", None)
        if binary is None:
            raise CliError("stdout takes no binary data here", Exit.USAGE)
        binary.write(out.binary)
        binary.flush()
    elif out.text is not None:
        stdout.write(printable(out.text) + "\n")
    stdout.flush()
    return int(out.exit)


def fail(error: CliError, as_json: bool, stdout: TextIO, stderr: TextIO) -> int:
    stderr.write(f"tinkerbell: {printable(' '.join(error.message.split()))}\n")
    if as_json:
        stdout.write(json_line(error.to_json()) + "\n")
    stdout.flush()
    return int(error.exit)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    try:
        code = run(argv)
    except BrokenPipeError:  # `tinkerbell list | head`
        code = 0
    sys.exit(code)


if __name__ == "__main__":
    main()
