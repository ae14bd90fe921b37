"""The command line of ``tinkerbell``: its arguments and its ``--help`` text.

``build_parser()`` says what each command takes; ``cli.tinkerbell`` runs them.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from cli.config import APP_CHECK_KEYS, KEYS
from cli.errors import EXIT_CODES_HELP, CliError, Exit

DEFAULT_WAIT_S = 600.0
DEFAULT_LIST = 20
WEBHOOK_HELP = (
    "POST a signed event there when the task ends (https; docs/webhooks.md; "
    "verify it with the secret of `tinkerbell webhook-secret`)"
)
DESCRIPTION = """\
Marketing briefs in, Gemini-made marketing strategies out.

first use:
  tinkerbell login                 an anonymous user (or --email ADDRESS)
  tinkerbell submit --wait "Specialty coffee shop near the campus in Cluj"
  tinkerbell list
  tinkerbell export TASK --format markdown -o strategy.md

where: after `make up` the local stack is found by itself (.stack/dev/state.json in
this directory or a parent; --stack NAME or TINKERBELL_STACK_STATE for another one).
A stack's state is used only when it is yours and every URL and emulator host in it
is on this machine (http on 127.0.0.1, ::1 or localhost).
A deployed project: `tinkerbell config set KEY VALUE` for SUBMIT_URL, STATUS_URL,
FIREBASE_API_KEY and GOOGLE_CLOUD_PROJECT (or TINKERBELL_<KEY>, or the flags below).
Sign-ins are kept in $XDG_CONFIG_HOME/tinkerbell/credentials.json (mode 0600), one
per server: a sign-in's ID token goes only to the SUBMIT and STATUS origins it was
made for (another server, or one older tinkerbell kept: `tinkerbell login` again).

App Check: a deployment that enforces Firebase App Check needs a debug token, which
an operator registers for the web app in the Firebase console (App Check > Apps >
Manage debug tokens), and that app's id: `tinkerbell config set APP_CHECK_TOKEN TOKEN`
and `tinkerbell config set FIREBASE_APP_ID ID` (deploy.sh prints it), or
TINKERBELL_APP_CHECK_TOKEN and TINKERBELL_FIREBASE_APP_ID. The command exchanges the
debug token for App Check tokens, sent as X-Firebase-AppCheck; it is kept in
config.json (mode 0600) and never shown: treat it like a password.
"""


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors as one line and exit code 2 (Exit.USAGE)."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{message} (see `{self.prog} --help`)", Exit.USAGE)


def build_parser() -> Parser:
    common = Parser(add_help=False)
    sup = argparse.SUPPRESS
    common.add_argument("--json", action="store_true", default=sup, help="one JSON object out")
    common.add_argument(
        "-q", "--quiet", action="store_true", default=sup, help="no progress on stderr"
    )
    common.add_argument(
        "--stack", default=sup, metavar="NAME", help="a local stack by name (dev, test...)"
    )
    common.add_argument("--submit-url", default=sup, metavar="URL")
    common.add_argument("--status-url", default=sup, metavar="URL")
    common.add_argument("--api-key", default=sup, metavar="KEY", help="Firebase web API key")
    common.add_argument("--project", default=sup, metavar="ID", help="Google Cloud project id")

    parser = Parser(
        prog="tinkerbell",
        description=DESCRIPTION,
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            parents=[common],
            epilog=EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    login = add("login", "sign in: anonymously, or with --email and a password")
    login.add_argument("--email", help="sign in with this email and a password (prompted)")
    login.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    login.add_argument("--create", action="store_true", help="create the email account first")
    login.add_argument("--new", action="store_true", help="a new anonymous user, not the kept one")

    logout = add("logout", "forget the sign-in of this target")
    logout.add_argument("--all", action="store_true", help="forget every kept sign-in")

    submit = add("submit", "submit a brief; with --wait, follow it live to the strategy")
    submit.add_argument("brief", nargs="?", help="the brief, or - to read it from stdin")
    submit.add_argument("--file", "-f", metavar="FILE", help="read the brief from FILE (- stdin)")
    submit.add_argument(
        "--url", action="append", default=[], metavar="URL", help="a reference page (repeat)"
    )
    submit.add_argument(
        "--pdf", metavar="FILE", help="the client's PDF (over 30 MiB: an upload session)"
    )
    submit.add_argument(
        "--language", metavar="TAG", help="the strategy's language (default: from the locale)"
    )
    submit.add_argument("--no-image", action="store_true", help="no preview image")
    submit.add_argument("--grounding", action="store_true", help="let the model search the web")
    submit.add_argument("--webhook-url", metavar="URL", help=WEBHOOK_HELP)
    submit.add_argument("--wait", "-w", action="store_true", help="follow the task to its end")
    submit.add_argument("--timeout", type=float, default=DEFAULT_WAIT_S, metavar="SECONDS")
    submit.add_argument(
        "--idempotency-key", metavar="KEY", help="default: a new one per invocation"
    )

    add("list", "your recent tasks, newest first").add_argument(
        "--limit", type=int, default=DEFAULT_LIST, metavar="N"
    )
    add("status", "one task's state").add_argument("task", metavar="TASK")
    watch = add("watch", "follow a task live to its end")
    watch.add_argument("task", metavar="TASK")
    watch.add_argument("--timeout", type=float, default=DEFAULT_WAIT_S, metavar="SECONDS")
    add("cancel", "cancel an unfinished task").add_argument("task", metavar="TASK")
    revise = add("revise", "a new version of a finished strategy, changed as you ask")
    revise.add_argument("task", metavar="TASK")
    revise.add_argument("instruction", help='what to change, e.g. "halve the budget"')
    revise.add_argument("--language", metavar="TAG", help="default: the strategy's own")
    revise.add_argument("--no-image", action="store_true", help="no preview image")
    revise.add_argument("--webhook-url", metavar="URL", help=WEBHOOK_HELP)
    revise.add_argument("--wait", "-w", action="store_true", help="follow it live to its end")
    revise.add_argument("--timeout", type=float, default=DEFAULT_WAIT_S, metavar="SECONDS")
    revise.add_argument("--idempotency-key", metavar="KEY", help="default: a new one")
    add("versions", "every version of a strategy, oldest first").add_argument(
        "task", metavar="TASK"
    )
    diff = add("diff", "what changed between two versions: budgets, steps, KPIs, messages")
    diff.add_argument("task_a", metavar="TASK_A")
    diff.add_argument("task_b", metavar="TASK_B")
    delete = add("delete", "delete a task for good: its brief, PDF, strategy and preview")
    delete.add_argument("task", metavar="TASK")
    delete.add_argument("--yes", "-y", action="store_true", help="do not ask first")
    forget = add("forget-me", "erase everything of yours: every task, upload and the sign-in")
    forget.add_argument("--yes", "-y", action="store_true", help="do not ask first")
    secret = add("webhook-secret", "print the secret your webhook events are signed with")
    secret.add_argument(
        "--rotate", action="store_true", help="make a new one (the old one stops verifying)"
    )
    image = add("image", "save a task's preview image")
    image.add_argument("task", metavar="TASK")
    image.add_argument("-o", "--output", required=True, metavar="FILE", help="FILE, or - stdout")
    exporter = add("export", "a finished task's strategy as Markdown or JSON")
    exporter.add_argument("task", metavar="TASK")
    exporter.add_argument("--format", choices=("markdown", "json"), default="markdown")
    exporter.add_argument("-o", "--output", metavar="FILE", help="default: stdout")

    config = add("config", "show or set where Tinkerbell is (a deployed project)")
    actions = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    setter = actions.add_parser("set", help="KEY VALUE", parents=[common])
    setter.add_argument("key", metavar="KEY", help=", ".join((*KEYS, "LANGUAGE", *APP_CHECK_KEYS)))
    setter.add_argument("value", metavar="VALUE")
    actions.add_parser("unset", help="KEY", parents=[common]).add_argument("key", metavar="KEY")
    actions.add_parser("show", help="the configuration in use", parents=[common])
    return parser
