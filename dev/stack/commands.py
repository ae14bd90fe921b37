"""The commands: ``up`` (start, or bring back what is down), ``down``, ``status``, ``env``;
``main()`` parses the command line (the part commands: ``part_control.cmd_part``)."""

from __future__ import annotations

import argparse
import functools
import os
import shlex
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .config import (
    BRIDGE_NEEDS,
    FUNCTIONS,
    READY_TIMEOUT_S,
    RESTARTABLE_PARTS,
    ROOT,
    STACK_NAMES,
    STOP_TIMEOUT_S,
    PartSpec,
    PlanError,
    StackPlan,
)
from .part_control import _RESTARTED, _saved_launch_path, cmd_part
from .plan import is_bridge, plan, with_subscription
from .processes import (
    PartFailed,
    Running,
    busy_ports,
    http_get,
    log_tail,
    missing_tools,
    port_is_free,
    start_part,
    stop_groups,
    stop_runnings,
    wait_all_ready,
)
from .recovery import (
    Recovery,
    describe_recovered,
    describe_recovery,
    plan_differences,
    plan_recovery,
)
from .resources import (
    bridge_feeds,
    create_bucket,
    create_resources,
    requeue_unfinished,
    requeue_webhooks,
    resubscribe,
)
from .state import (
    build_state,
    part_alive,
    read_state,
    recorded_group_is_ours,
    stack_lock,
    write_state,
)


def print_urls(state: Mapping[str, Any]) -> None:
    env, urls = state["env"], state["urls"]
    rows = [
        ("submit", f"{env['SUBMIT_URL']}/v1/strategies"),
        ("status", f"{env['STATUS_URL']}/v1/tasks/{{task_id}}"),
        ("process", f"{env['PROCESS_URL']}/  (CloudEvents, fed by the bridge)"),
        ("deadletter", f"{env.get('DEADLETTER_URL')}/  (CloudEvents, the dead-letter handler)"),
        ("webhooks", f"{env.get('WEBHOOKS_URL')}/  (CloudEvents, the webhook deliveries)"),
        ("firestore", env["FIRESTORE_EMULATOR_HOST"]),
        ("pubsub", env["PUBSUB_EMULATOR_HOST"]),
        ("auth", env["AUTH_EMULATOR_URL"]),
        ("storage", f"{env['STORAGE_EMULATOR_HOST']}  (bucket {env['UPLOADS_BUCKET']})"),
    ]
    gemini = state.get("gemini", {})
    if gemini.get("standin"):
        rows.append(("gemini", f"{env['GEMINI_STANDIN_URL']}  (stand-in)"))
    else:
        rows.append(("gemini", gemini.get("base_url") or "the real Gemini API"))
    if "web" in urls:
        rows.append(("web", urls["web"]))
    for label, value in rows:
        print(f"  {label:<10} {value}")
    logs = Path(state["root"]) / ".stack" / state["name"] / "logs"
    print(f"  {'logs':<10} {logs}/")
    print(f'  {"env":<10} eval "$(.venv/bin/python -m dev.stack env --name {state["name"]})"')


def healthy_parts(state: Mapping[str, Any]) -> dict[str, tuple[bool, bool]]:
    """part -> (process group alive, answering its probe)."""
    result = {}
    for name, record in state.get("parts", {}).items():
        alive = part_alive(record)
        url = record.get("url")
        probe_url = f"{url}/" if url else None
        result[name] = (alive, alive and (probe_url is None or http_get(probe_url) is not None))
    return result


def stop_recorded(state: Mapping[str, Any], timeout: float = STOP_TIMEOUT_S) -> list[str]:
    """Stop the process groups a state file records (bridge first); names SIGKILLed."""
    parts: dict[str, Mapping[str, Any]] = state.get("parts", {})
    ours = {name: rec for name, rec in parts.items() if recorded_group_is_ours(rec)}
    batches = [
        [n for n in ours if is_bridge(n)],
        [n for n in ours if not is_bridge(n)],
    ]
    killed: list[str] = []
    for batch in batches:
        groups = [
            (name, int(ours[name]["pgid"]), signal.Signals[ours[name]["stop_signal"]])
            for name in batch
        ]
        killed += stop_groups(groups, timeout)
    return killed


def settled_health(
    state: Mapping[str, Any], tries: int = 3, pause: float = 1.0
) -> dict[str, tuple[bool, bool]]:
    """``healthy_parts``, asking again a part that lives but did not answer (busy?)."""
    health = healthy_parts(state)
    for _ in range(tries - 1):
        unsure = [name for name, (alive, ok) in health.items() if alive and not ok]
        if not unsure:
            break
        time.sleep(pause)
        health.update(healthy_parts({"parts": {n: state["parts"][n] for n in unsure}}))
    return health


def cmd_up(stack: StackPlan, timeout: float) -> int:
    started = time.monotonic()
    with stack_lock(stack.stack_dir):
        state = read_state(stack.state_path)
        if state is not None:
            recovery = plan_recovery(
                state.get("status"),
                settled_health(state),
                [part.name for part in stack.all_parts],
                plan_differences(state, stack),
            )
            if recovery.action == "already_up":
                print(f"stack {stack.name!r} is already up (project {state['project']})")
                print_urls(state)
                return 0
            if recovery.action == "refuse":
                _report_refusal(stack, recovery)
                return 2
            if recovery.action == "restart_parts":
                return _recover(stack, state, recovery, timeout, started)
            print(
                f"stack {stack.name!r} cannot be brought back part by part: {recovery.reason}.\n"
                "Restarting the whole stack, emulators included: the tasks, messages, users "
                "and uploads it held are lost"
            )
            stop_recorded(state)
            stack.state_path.unlink(missing_ok=True)

        problems = busy_ports(stack) + missing_tools(stack)
        if problems:
            print(f"cannot start stack {stack.name!r}; nothing was started:", file=sys.stderr)
            for problem in problems:
                print(f"  - {problem}", file=sys.stderr)
            return 2
        return _start_stack(stack, timeout, started)


def _report_refusal(stack: StackPlan, recovery: Recovery) -> None:
    down = ", ".join(recovery.down)
    print(
        f"stack {stack.name!r} is only partly running ({down} down), but this environment "
        "plans another stack than the one running, so nothing was started or stopped:",
        file=sys.stderr,
    )
    for difference in recovery.reason.split("; "):
        print(f"  - {difference}", file=sys.stderr)
    print(
        "Run `make up` again with the environment the stack was started with, or "
        "`make down` and then `make up` to start over with this one (the emulators' "
        "data is lost then).",
        file=sys.stderr,
    )


def _recover(
    stack: StackPlan,
    state: dict[str, Any],
    recovery: Recovery,
    timeout: float,
    started: float,
) -> int:
    """Start again only the parts ``recovery`` names; everything else keeps running."""
    for line in describe_recovery(stack.name, recovery, stack.settings.get("LEASE_SECONDS")):
        print(line)
    records: dict[str, Any] = state["parts"]
    if recovery.stop_first:
        stop_groups(
            [
                (n, int(records[n]["pgid"]), signal.Signals[records[n]["stop_signal"]])
                for n in recovery.stop_first
                if recorded_group_is_ours(records[n])
            ],
            STOP_TIMEOUT_S,
        )
    specs = {spec.name: spec for spec in stack.all_parts}
    busy = _still_busy(
        {port: name for name in recovery.restart for port in specs[name].ports.values()},
        deadline=time.monotonic() + 5.0,
    )
    if busy:
        print(f"cannot start {', '.join(recovery.restart)} again:", file=sys.stderr)
        for port, name in busy.items():
            print(
                f"  - port {port} ({name}) is held by another process: "
                f"`ss -ltnp 'sport = :{port}'`",
                file=sys.stderr,
            )
        return 2
    _prepare_dirs(stack)
    restarted: list[Running] = []
    previous_term = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    requeued: list[str] = []
    requeued_webhooks: list[str] = []
    try:
        plain = [name for name in recovery.restart if not is_bridge(name)]
        for name in plain:
            restarted.append(_start_again(stack, specs[name], records))
        write_state(stack.state_path, state)  # `down` stops them even if this process dies
        wait_all_ready(restarted, timeout, started, watch=restarted)
        if "storage" in plain:
            _or_fail("storage", "creating the bucket", lambda: create_bucket(stack))
        bridges = []
        for name in recovery.resubscribe:
            feed = bridge_feeds(stack.resources)[name]
            generations = state.setdefault("subscription_generations", {})
            generation = int(generations.get(name, 1)) + 1
            old = state.get("resources", {}).get(feed.state_key)
            path = _or_fail(
                name,
                "making its fresh subscription",
                functools.partial(resubscribe, stack, name, old, generation),
            )
            generations[name] = generation
            state.setdefault("resources", {})[feed.state_key] = path
            write_state(stack.state_path, state)
            bridges.append(_start_again(stack, with_subscription(specs[name], path), records))
        if bridges:
            restarted.extend(bridges)
            write_state(stack.state_path, state)
            wait_all_ready(bridges, timeout, started, watch=restarted)
            if recovery.requeue:
                requeued = _or_fail(
                    "resources",
                    "publishing the unfinished tasks again",
                    lambda: requeue_unfinished(stack),
                )
            if recovery.requeue_webhooks:
                requeued_webhooks = _or_fail(
                    "resources",
                    "publishing the pending webhook deliveries again",
                    lambda: requeue_webhooks(stack),
                )
    except PartFailed as failure:
        _report_failure(failure)
        stop_runnings(restarted, timeout=3.0)
        write_state(stack.state_path, state)  # they are recorded dead: the next `up` retries
        print(
            f"stopped what this `up` had started again; {', '.join(recovery.keep)} "
            "still run as they were (`make up` tries again, `make down` stops everything)",
            file=sys.stderr,
        )
        return 1
    except BaseException:
        print(
            f"\nstack {stack.name!r}: interrupted, stopping what was started again", file=sys.stderr
        )
        stop_runnings(restarted, timeout=3.0)
        write_state(stack.state_path, state)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous_term)
    for running in restarted:
        records[running.spec.name]["ready_after_s"] = running.ready_after_s
    state["status"] = "up"
    state["recovered_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    write_state(stack.state_path, state)
    print(describe_recovered(stack.name, recovery, round(time.monotonic() - started, 1)))
    if recovery.requeue:
        print(f"  published again: {len(requeued)} unfinished task(s)")
    if recovery.requeue_webhooks:
        print(f"  published again: {len(requeued_webhooks)} pending webhook delivery(ies)")
    print_urls(state)
    return 0


def _start_again(stack: StackPlan, spec: PartSpec, records: dict[str, Any]) -> Running:
    """Start one part of a running stack again; its log continues the old one."""
    with (stack.log_dir / f"{spec.name}.log").open("a") as log:
        log.write(f"\n--- dev.stack up: started again at {datetime.now(UTC).isoformat()} ---\n")
    running = start_part(spec, stack.log_dir, append=True)
    _RESTARTED.append(running)
    record = running.record()
    record["restarts"] = int(records.get(spec.name, {}).get("restarts", 0)) + 1
    records[spec.name] = record
    _saved_launch_path(stack.stack_dir, spec.name).unlink(missing_ok=True)  # kill-part's
    return running


def _or_fail(part: str, doing: str, action: Callable[[], Any]) -> Any:
    try:
        return action()
    except Exception as error:  # any client error: report it like a failed part
        raise PartFailed(part, f"{doing}: {error}") from error


def _still_busy(ports: Mapping[int, str], deadline: float) -> dict[int, str]:
    """The ports (of `ports`: port -> part) still bound once `deadline` has passed."""
    busy = dict(ports)
    while busy:
        busy = {port: name for port, name in busy.items() if not port_is_free(port)}
        if not busy or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return busy


def _start_stack(stack: StackPlan, timeout: float, started: float) -> int:
    _prepare_dirs(stack)
    runnings: list[Running] = []
    previous_term = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        for spec in stack.parts:
            runnings.append(start_part(spec, stack.log_dir))
        # Recorded before waiting, so that `down` can stop them if this process dies.
        write_state(stack.state_path, build_state(stack, runnings, "starting"))
        # The bridge needs only Pub/Sub, Storage and process_task: set it going
        # while the slow Auth emulator is still compiling its validators.
        first = [r for r in runnings if r.spec.name in BRIDGE_NEEDS]
        wait_all_ready(first, timeout, started, watch=runnings)
        _create_resources_or_fail(stack)
        runnings.extend(start_part(bridge, stack.log_dir) for bridge in stack.bridges)
        write_state(stack.state_path, build_state(stack, runnings, "starting"))
        wait_all_ready([r for r in runnings if r not in first], timeout, started)
    except PartFailed as failure:
        _report_failure(failure)
        _abandon(stack, runnings)
        return 1
    except BaseException:
        print(f"\nstack {stack.name!r}: interrupted, stopping what was started", file=sys.stderr)
        _abandon(stack, runnings)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous_term)
    up_seconds = round(time.monotonic() - started, 1)
    state = build_state(stack, runnings, "up", up_seconds)
    write_state(stack.state_path, state)
    print(f"stack {stack.name!r} is up in {up_seconds} s (project {stack.project})")
    print_urls(state)
    return 0


def _create_resources_or_fail(stack: StackPlan) -> None:
    try:
        create_resources(stack)
    except Exception as error:  # any client error: report it like a failed part
        reason = f"creating the bucket, topics or subscriptions: {error}"
        raise PartFailed("resources", reason) from error


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _prepare_dirs(stack: StackPlan) -> None:
    stack.log_dir.mkdir(parents=True, exist_ok=True)
    (stack.stack_dir / "tmp").mkdir(exist_ok=True)
    for part in FUNCTIONS:
        (stack.stack_dir / "run" / part).mkdir(mode=0o700, parents=True, exist_ok=True)
    for path, content in stack.files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


def _report_failure(failure: PartFailed) -> None:
    print(f"stack failed: {failure}", file=sys.stderr)
    if failure.log is not None:
        print(f"--- last lines of {failure.log} ---", file=sys.stderr)
        print(log_tail(failure.log), file=sys.stderr)
        print("---", file=sys.stderr)


def _abandon(stack: StackPlan, runnings: Sequence[Running]) -> None:
    # Short grace: a part still starting (the Auth emulator compiling) may not
    # handle its signal for many seconds, and it holds nothing worth saving.
    stop_runnings(runnings, timeout=3.0)
    stack.state_path.unlink(missing_ok=True)
    print("stopped everything that had been started", file=sys.stderr)


def cmd_down(stack_dir: Path, name: str) -> int:
    state_path = stack_dir / "state.json"
    with stack_lock(stack_dir):
        state = read_state(state_path)
        if state is None:
            print(f"stack {name!r} is not running (no {state_path})")
            return 0
        killed = stop_recorded(state)
        state_path.unlink(missing_ok=True)
    if killed:
        print(f"killed (SIGKILL) after {STOP_TIMEOUT_S:.0f} s: {', '.join(killed)}")
    still_bound = [
        port
        for part in state["parts"].values()
        for port in part["ports"].values()
        if not port_is_free(port)
    ]
    print(f"stack {name!r} stopped")
    if still_bound:
        print(f"warning: ports still bound by something else: {still_bound}", file=sys.stderr)
    return 0


def cmd_status(state_path: Path, name: str) -> int:
    state = read_state(state_path)
    if state is None:
        print(f"stack {name!r} is not running")
        return 3
    health = healthy_parts(state)
    print(f"stack {name!r} ({state.get('status')}, project {state['project']}):")
    for part, (alive, ok) in health.items():
        record = state["parts"][part]
        word = "up" if alive and ok else ("not answering" if alive else "DEAD")
        print(f"  {part:<18} {word:<14} pid {record['pid']:<8} {record.get('url') or ''}")
    return 0 if state.get("status") == "up" and all(a and b for a, b in health.values()) else 1


def cmd_env(state_path: Path, name: str) -> int:
    state = read_state(state_path)
    if state is None or state.get("status") != "up":
        print(f"stack {name!r} is not up: run `make up` first", file=sys.stderr)
        return 1
    for key, value in sorted(state["env"].items()):
        print(f"export {key}={shlex.quote(value)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    # The package's docstring describes the command line (as dev/stack.py's did).
    from . import __doc__ as package_doc

    parser = argparse.ArgumentParser(
        prog="python -m dev.stack", description=package_doc.split("\n")[0]
    )
    parser.add_argument(
        "command",
        choices=("up", "down", "status", "env", "kill-part", "start-part", "restart-part"),
    )
    parser.add_argument(
        "part", nargs="?", help=f"for *-part: one of {', '.join(RESTARTABLE_PARTS)}"
    )
    parser.add_argument("--name", choices=STACK_NAMES, default="dev")
    parser.add_argument(
        "--timeout", type=float, default=READY_TIMEOUT_S, help="readiness deadline, seconds"
    )
    args = parser.parse_args(argv)
    stack_dir = ROOT / ".stack" / args.name
    commands: dict[str, Callable[[], int]] = {
        "down": lambda: cmd_down(stack_dir, args.name),
        "status": lambda: cmd_status(stack_dir / "state.json", args.name),
        "env": lambda: cmd_env(stack_dir / "state.json", args.name),
    }
    if args.command in commands:
        return commands[args.command]()
    if args.command.endswith("-part"):
        return cmd_part(args.command, args.name, args.part, args.timeout)
    try:
        stack = plan(os.environ, args.name)
    except PlanError as error:
        print(f"cannot start stack {args.name!r}: {error}", file=sys.stderr)
        return 2
    try:
        return cmd_up(stack, args.timeout)
    except KeyboardInterrupt:
        return 130  # already reported, and everything started was stopped
