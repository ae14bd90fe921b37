"""Recovery planning (pure): what `up` does with a stack that is partly running."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .config import EMULATOR_DATA, EMULATORS, PORT_DEFAULTS, START_OVER_EMULATORS, StackPlan
from .plan import is_bridge

# The bridge whose lost messages are webhook deliveries, not tasks to run.
WEBHOOKS_BRIDGE = "bridge-webhooks"

EMULATOR_TITLES = {
    "firestore": "Firestore",
    "pubsub": "Pub/Sub",
    "auth": "Auth",
    "storage": "Cloud Storage",
}


@dataclass(frozen=True)
class Recovery:
    """What ``up`` does with a stack that state.json says was started.

    ``action`` is one of ``already_up`` (nothing is down), ``restart_parts``
    (start ``restart`` again and leave ``keep`` alone), ``start_over`` (stop
    everything and start the whole stack; ``reason`` says why it cannot be
    avoided) or ``refuse`` (something is down, but the environment now plans
    another stack than the one running: ``reason`` says how; nothing is touched).
    """

    action: str
    down: Mapping[str, str] = field(default_factory=dict)  # part -> "exited" / "not answering"
    restart: tuple[str, ...] = ()  # in the plan's order: functions before their bridges
    stop_first: tuple[str, ...] = ()  # of `restart`, alive but not answering: stopped first
    resubscribe: tuple[str, ...] = ()  # bridges that start over on a fresh subscription
    keep: tuple[str, ...] = ()  # left running, untouched
    reason: str = ""

    @property
    def requeue(self) -> bool:
        """A task bridge's old subscription goes: the unfinished tasks are published again."""
        return any(bridge != WEBHOOKS_BRIDGE for bridge in self.resubscribe)

    @property
    def requeue_webhooks(self) -> bool:
        """The webhooks bridge's old subscription goes: the pending deliveries are
        published again."""
        return WEBHOOKS_BRIDGE in self.resubscribe

    @property
    def lost(self) -> tuple[str, ...]:
        """Emulators started again: their data went when they went down."""
        return tuple(name for name in self.restart if name in EMULATORS)


def plan_recovery(
    status: str | None,
    health: Mapping[str, tuple[bool, bool]],
    planned: Sequence[str],
    differences: Sequence[str] = (),
) -> Recovery:
    """Which parts `up` starts again, from which recorded parts are alive and answering.

    `status` is state.json's (``up`` once a start finished), `health` maps each
    recorded part to (process group alive, answering its probe), `planned` lists
    the current plan's parts in start order, `differences` how the current
    environment's plan differs from the one the running stack was started with.

    Only what is down starts again, so the emulators keep their data. A function,
    the stand-in or the web server just starts again (Pub/Sub redelivers what a
    dead worker was doing; the task's lease tells the new worker when it may take
    over). A bridge starts over on a fresh subscription. An Auth or Storage
    emulator starts again alone (its data is gone already). A dead Firestore or
    Pub/Sub emulator means starting over (see START_OVER_EMULATORS).
    """
    down = {
        name: "not answering" if alive else "exited"
        for name, (alive, answering) in health.items()
        if not (alive and answering)
    }
    if status != "up":
        reason = f"its last `up` did not finish (state {status!r})"
        return Recovery("start_over", down, reason=reason)
    if not down:
        return Recovery("already_up", keep=tuple(health))
    mismatch = list(differences)
    mismatch += [
        f"{name} is planned but was never started" for name in planned if name not in health
    ]
    mismatch += [f"{name} runs but is no longer planned" for name in health if name not in planned]
    if mismatch:
        return Recovery("refuse", down, reason="; ".join(mismatch))
    fatal = [name for name in EMULATORS if name in down and name in START_OVER_EMULATORS]
    if fatal:
        reason = "; ".join(
            f"the {EMULATOR_TITLES[name]} emulator {_down_phrase(down[name])}: its "
            f"{EMULATOR_DATA[name]} went with it, and every function and bridge is "
            "connected to it"
            for name in fatal
        )
        return Recovery("start_over", down, reason=reason)
    restart = tuple(name for name in planned if name in down)
    return Recovery(
        "restart_parts",
        down,
        restart=restart,
        stop_first=tuple(name for name in restart if health[name][0]),
        resubscribe=tuple(name for name in restart if is_bridge(name)),
        keep=tuple(name for name in planned if name not in down),
    )


def _down_phrase(why: str) -> str:
    return "has exited" if why == "exited" else f"is {why}"


def _gemini_label(gemini: Mapping[str, Any]) -> str:
    if gemini.get("standin"):
        return "the stand-in"
    return str(gemini.get("base_url") or "the real API")


def plan_differences(state: Mapping[str, Any], stack: StackPlan) -> list[str]:
    """How `stack` (planned from the current environment) differs from the running one.

    A part started again must run with what the others run with: the same
    project, ports, Gemini endpoint and settings. A state.json written before
    the settings were recorded is compared on the rest.
    """
    found = []
    if state.get("project") != stack.project:
        found.append(f"GOOGLE_CLOUD_PROJECT: {state.get('project')!r} -> {stack.project!r}")
    ports = state.get("ports", {})
    for name, port in stack.ports.items():
        if ports.get(name) != port:
            found.append(f"{PORT_DEFAULTS[name][0]}: {ports.get(name)} -> {port}")
    then = state.get("gemini", {})
    now = {"standin": stack.gemini.start_standin, "base_url": stack.gemini.base_url}
    if (bool(then.get("standin")), then.get("base_url")) != (now["standin"], now["base_url"]):
        found.append(f"Gemini: {_gemini_label(then)} -> {_gemini_label(now)}")
    recorded = state.get("settings")
    if isinstance(recorded, Mapping):
        # A setting only one side knows came or went with a change of the code.
        for name in sorted(set(recorded) & set(stack.settings)):
            if recorded[name] != stack.settings[name]:
                found.append(f"{name}: {recorded.get(name)!r} -> {stack.settings.get(name)!r}")
    return found


def describe_recovery(name: str, recovery: Recovery, lease_seconds: int | None) -> list[str]:
    """What `up` prints before it starts parts again: what is down, what stays."""
    down = ", ".join(f"{part} ({why})" for part, why in recovery.down.items())
    lines = [
        f"stack {name!r} is only partly running: {down} down",
        f"  starting again: {', '.join(recovery.restart)}",
        f"  left running as they are: {', '.join(recovery.keep)}",
    ]
    kept = [EMULATOR_DATA[part] for part in EMULATORS if part in recovery.keep]
    if kept:
        lines.append(f"  the emulators keep their data ({'; '.join(kept)})")
    for part in recovery.lost:
        lines.append(
            f"  the {EMULATOR_TITLES[part]} emulator had gone down: its "
            f"{EMULATOR_DATA[part]} went with it"
        )
    if "process" in recovery.restart:
        lease = f"{lease_seconds} s" if lease_seconds else "their lease"
        lines.append(
            "  tasks the dead worker had started are taken over when their lease ends "
            f"(LEASE_SECONDS: {lease}), as Pub/Sub delivers them again"
        )
    for bridge in recovery.resubscribe:
        again = "pending webhook deliveries" if bridge == WEBHOOKS_BRIDGE else "unfinished tasks"
        lines.append(
            f"  {bridge} starts over on a fresh subscription (a dead streaming pull stays "
            f"registered under the old one), and the {again} are published again"
        )
    return lines


def describe_recovered(name: str, recovery: Recovery, seconds: float) -> str:
    kept = ", ".join(recovery.keep)
    return (
        f"stack {name!r} is up again in {seconds} s: restarted {', '.join(recovery.restart)}; "
        f"{kept} kept running (same processes, same data)"
    )
