"""The local stack (SPEC §7): ``python -m dev.stack up|down|status|env [--name dev|test]``.

Also ``kill-part|start-part|restart-part PART``: SIGKILL one function process and
start it again with the same command and environment (crash tests, issue 4).

``up`` on a stack that is partly running brings back only what is down
(``plan_recovery()``): the emulators keep running with their data, and so does
every other part. A dead bridge gets a fresh subscription (a streaming pull that
went away leaves a dead stream behind) and the unfinished tasks are published
again for it (for ``bridge-webhooks``: the pending webhook deliveries). Only a dead
Firestore or Pub/Sub emulator means starting over.

Starts, on loopback only, the Firestore, Pub/Sub, Firebase Auth and Cloud Storage
emulators, the Gemini stand-in (unless a real or other endpoint is configured), the
three functions under functions-framework plus the dead-letter handler
(``dead_letter_task``, part ``deadletter``) and the webhook deliveries
(``deliver_webhook``, part ``webhooks``), three Pub/Sub → CloudEvent delivery
bridges (``bridge``: the tasks subscription to ``process_task``;
``bridge-deadletter``: the dead-letter topic's ``-handler`` subscription to
``dead_letter_task``; ``bridge-webhooks``: the webhooks topic's ``-deliver``
subscription to ``deliver_webhook``) and, when ``web/`` exists, a web server that
serves it as Firebase Hosting does, headers and Content-Security-Policy included
(``dev/web_server.py``, ``infra/hosting.py``). The functions may call webhook
receivers on loopback (``WEBHOOK_ALLOW_LOOPBACK=true``: the tests' receivers).

The package has two halves:

* pure planning: ``config`` (ports, project, Gemini endpoint, settings, environments),
  ``plan`` (every part's command, environment and probe) and ``recovery`` (what
  ``up`` does with a stack partly running). No process is started and nothing is
  written, so they are unit-tested directly (``tests/unit/test_stack_plan.py``);
* process management: ``processes`` (preflight, process groups, readiness, stopping),
  ``resources`` (bucket, topics, subscriptions, requeueing), ``state`` (the state
  file), ``part_control`` (kill/start one part) and ``commands`` (``up``, ``down``,
  ``status``, ``env``, the command line). Each part runs in its own process group
  with its log under ``.stack/<name>/logs/``, and ``.stack/<name>/state.json``
  records exactly the process groups ``up`` started, so that ``down`` stops those
  and nothing else.

docs/decisions/0007-local-stack-supervision.md says why this is our own code.

Facts about the emulators this relies on are in ``shared/EMULATORS.md``
(port squatting, gcloud's Java children, gunicorn's control socket, the
emulator's push concurrency of 2, dead streaming-pull streams).
"""

from .commands import (
    cmd_down,
    cmd_env,
    cmd_status,
    cmd_up,
    healthy_parts,
    main,
    settled_health,
    stop_recorded,
)
from .config import (
    BRIDGE_NEEDS,
    BRIDGE_READY_MESSAGE,
    EMULATOR_DATA,
    PLACEHOLDER_GEMINI_KEY,
    PORT_DEFAULTS,
    RESTARTABLE_PARTS,
    PartSpec,
    PlanError,
    Probe,
    StackPlan,
)
from .part_control import PartError, _record_of, kill_part, restart_part, start_part_again
from .plan import is_bridge, part_named, plan, with_subscription
from .processes import (
    PartFailed,
    Running,
    busy_ports,
    check_ready,
    group_members,
    http_get,
    missing_tools,
    port_is_free,
    start_part,
    stop_groups,
    wait_all_ready,
)
from .recovery import (
    EMULATOR_TITLES,
    Recovery,
    describe_recovered,
    describe_recovery,
    plan_differences,
    plan_recovery,
)
from .resources import (
    bridge_feeds,
    requeue_unfinished,
    requeue_webhooks,
    resubscribe,
    subscription_name,
)
from .state import build_state, part_alive, read_state, recorded_group_is_ours, write_state

__all__ = [
    "BRIDGE_NEEDS",
    "BRIDGE_READY_MESSAGE",
    "EMULATOR_DATA",
    "EMULATOR_TITLES",
    "PLACEHOLDER_GEMINI_KEY",
    "PORT_DEFAULTS",
    "RESTARTABLE_PARTS",
    "PartError",
    "PartFailed",
    "PartSpec",
    "PlanError",
    "Probe",
    "Recovery",
    "Running",
    "StackPlan",
    "_record_of",
    "bridge_feeds",
    "build_state",
    "busy_ports",
    "check_ready",
    "cmd_down",
    "cmd_env",
    "cmd_status",
    "cmd_up",
    "describe_recovered",
    "describe_recovery",
    "group_members",
    "healthy_parts",
    "http_get",
    "is_bridge",
    "kill_part",
    "main",
    "missing_tools",
    "part_alive",
    "part_named",
    "plan",
    "plan_differences",
    "plan_recovery",
    "port_is_free",
    "read_state",
    "recorded_group_is_ours",
    "requeue_unfinished",
    "requeue_webhooks",
    "restart_part",
    "resubscribe",
    "settled_health",
    "start_part",
    "start_part_again",
    "stop_groups",
    "stop_recorded",
    "subscription_name",
    "wait_all_ready",
    "with_subscription",
    "write_state",
]
