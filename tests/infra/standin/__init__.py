"""gcloud, firebase and node stand-ins for the deploy rehearsal (test_deploy_rehearsal.py).

    python -m tests.infra.standin gcloud|firebase|node ARGS...

The rehearsal puts small wrappers named ``gcloud``, ``firebase`` and ``node`` first
on PATH; each runs this package. The simulated project lives in ``state.json`` under
``$REHEARSAL_DIR`` (it starts as a new project: nothing but the APIs Google enables
in every project), and every call is logged there (``calls.jsonl``), with what it
created, updated or deleted (``events.jsonl``).

gcloud: every invocation first goes through the real installed gcloud's parser
(tests/infra/gcloud_parser.py: parse_args and resource concepts, --format and
--filter compiled), and a refusal is logged in ``rejects.jsonl`` as well as failing
the call, so a script that hides a failing describe behind ``|| create`` cannot hide
a bad flag. Then the call is simulated like the API would answer it: NOT_FOUND,
ALREADY_EXISTS, the API's value ranges, a disabled API, a member that does not
exist, a secret the runtime identity cannot read. Describe and list answers have
the documented shapes (tests/infra/fixtures.py) and are printed by gcloud's own
resource printer, so ``--format='value(...)'`` reads what the real gcloud would.

firebase: the command and its options are checked against the command definitions
of the installed firebase-tools (node_modules/firebase-tools/lib/commands/*.js and
lib/index.js), and firebase.json against firebase-tools' own JSON schema.

node: only ``node web/build.mjs`` (the web build) is expected; it records the build
environment and writes nothing.

Where things are: ``common`` (the project's rules, errors, first-run faults, state and
logs), ``calls`` (one gcloud invocation, the command table), ``gcloud_projects``,
``gcloud_data`` and ``gcloud_compute`` (the simulated commands by service), ``gcloud``
(parse, simulate, print), ``firebase`` and ``node``.
"""

from .common import ask_parser

__all__ = ["ask_parser"]
