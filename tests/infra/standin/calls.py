"""One parsed gcloud invocation, and the table of the commands the stand-in simulates."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.infra import fixtures as fx

from .common import (
    DRS_MESSAGE,
    REQUIRED_APIS,
    ROLES,
    Json,
    event,
    fail,
    fault_count,
    fresh_faults_on,
    give_fault,
    refuses_all_users,
)


class Call:
    """One parsed gcloud invocation against the simulated project."""

    def __init__(self, state: Json, command: str, args: Json) -> None:
        self.state = state
        self.command = command
        self.args = args
        project = args.get("--project")
        if not project:
            fail("INVALID_ARGUMENT", "no project: the scripts pass --project on every call")
        self.project: str = project
        state.setdefault("project", project)
        if state["project"] != project:
            fail("PERMISSION_DENIED", f"the rehearsal simulates {state['project']}, not {project}")

    def arg(self, name: str, default: Any = None) -> Any:
        return self.args.get(name, default)

    def positional(self, name: str) -> Any:
        for key, value in self.args.items():
            if key == name or key.startswith(f"{name}:"):
                return value
        fail("INVALID_ARGUMENT", f"{name} is required")

    def require_apis(self) -> None:
        for prefix, apis in REQUIRED_APIS.items():
            if self.command == prefix or self.command.startswith(prefix + "."):
                for api in apis:
                    just_enabled = api in self.state.get("just_enabled", [])
                    if just_enabled and fresh_faults_on() and not fault_count("service-disabled"):
                        give_fault(
                            "service-disabled",
                            "PERMISSION_DENIED",
                            f"{api} has not been used in project {fx.PROJECT_NUMBER} before "
                            "or it is disabled. If you enabled this API recently, wait a few "
                            "minutes for the action to propagate to our systems and retry.\n"
                            "- '@type': type.googleapis.com/google.rpc.ErrorInfo\n"
                            "  reason: SERVICE_DISABLED",
                        )
                    if api not in self.state["services"]:
                        fail(
                            "PERMISSION_DENIED",
                            f"{api} has not been used in project {self.project} before or "
                            "it is disabled. Enable it by visiting "
                            f"https://console.developers.google.com/apis/api/{api}/overview",
                        )

    # -- IAM

    def check_member(self, member: str) -> None:
        kind, _, who = member.partition(":")
        if member in ("allUsers", "allAuthenticatedUsers"):
            return
        if kind != "serviceAccount":
            fail("INVALID_ARGUMENT", f"unexpected member {member} in the rehearsal")
        if who.endswith(f"@{self.project}.iam.gserviceaccount.com"):
            if who not in self.state["service_accounts"]:
                fail("INVALID_ARGUMENT", f"Service account {who} does not exist.")
            key = f"unknown-account:{who}"
            if who in self.state.get("new_accounts", []):
                self.state["new_accounts"].remove(who)  # kept only if this call succeeds
                if fresh_faults_on() and not fault_count(key):
                    give_fault(key, "INVALID_ARGUMENT", f"Service account {who} does not exist.")
        elif who == f"service-{fx.PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com":
            if "pubsub.googleapis.com" not in self.state["services"]:
                fail("INVALID_ARGUMENT", f"Service account {who} does not exist.")
        elif who in self.state.get("service_identities", {}).values():
            pass  # a service agent made by `gcloud beta services identity create`
        else:
            fail("INVALID_ARGUMENT", f"Service account {who} does not exist.")

    def bindings(self, resource: str) -> dict[str, list[str]]:
        policy: dict[str, list[str]] = self.state["iam"].setdefault(resource, {})
        return policy

    def add_binding(self, resource: str, kind: str) -> Json:
        member, role = self.arg("--member"), self.arg("--role")
        # A custom role of this project (infra/build_accounts.sh) applies to the project.
        custom = kind == "project" and role in self.state.get("custom_roles", {})
        if role not in ROLES[kind] and not custom:
            fail("INVALID_ARGUMENT", f"Role {role} is not supported for this resource.")
        if member in ("allUsers", "allAuthenticatedUsers") and refuses_all_users():
            fail("FAILED_PRECONDITION", DRS_MESSAGE)
        self.check_member(member)
        members = self.bindings(resource).setdefault(role, [])
        if member not in members:
            members.append(member)
            event("bind", resource, f"{role} {member}")
        return fx.policy(self.bindings(resource))

    def remove_binding(self, resource: str) -> Json:
        member, role = self.arg("--member"), self.arg("--role")
        members = self.bindings(resource).get(role, [])
        if member not in members:
            fail("NOT_FOUND", "Policy binding with the specified principal and role not found!")
        members.remove(member)
        event("unbind", resource, f"{role} {member}")
        return fx.policy(self.bindings(resource))

    def has_role(self, resource: str, role: str, member: str) -> bool:
        return member in self.state["iam"].get(resource, {}).get(role, [])


Handler = Callable[[Call], Any]
GCLOUD: dict[str, Handler] = {}


def command(*paths: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        for path in paths:
            GCLOUD[path] = handler
        return handler

    return register


def short(name: str) -> str:
    """The last path segment: projects/p/topics/t -> t."""
    return name.rsplit("/", 1)[-1]


# -- services, projects
