"""gcloud: service accounts, Cloud Functions (gen2) and their Eventarc triggers, Cloud
Scheduler jobs."""

from __future__ import annotations

import os
import re
from pathlib import Path

from tests.infra import fixtures as fx

from .calls import Call, command, short
from .common import (
    DRS_MESSAGE,
    EVENTARC_AGENT_MESSAGE,
    EVENTARC_LAZY_REFUSALS,
    MAX_EVENT_TIMEOUT_S,
    MAX_HTTP_TIMEOUT_S,
    RESERVED_ENV,
    FailedAfterChanges,
    Json,
    ask_parser,
    event,
    fail,
    fault_count,
    fresh_faults_on,
    give_fault,
    refuses_all_users,
)
from .gcloud_data import topic_of


def service_account_of(call: Call, email: str) -> Json:
    account: Json | None = call.state["service_accounts"].get(email)
    if account is None:
        fail("NOT_FOUND", f"Service account projects/{call.project}/serviceAccounts/{email}")
    return account


@command("gcloud.iam.service-accounts.describe")
def accounts_describe(call: Call) -> Json:
    return service_account_of(call, call.positional("SERVICE_ACCOUNT"))


@command("gcloud.iam.service-accounts.create")
def accounts_create(call: Call) -> None:
    # accountId: https://cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts/create
    account_id = call.positional("NAME")
    if not re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])", account_id) or not (
        6 <= len(account_id) <= 30
    ):
        fail("INVALID_ARGUMENT", f"invalid account id {account_id!r}")
    email = f"{account_id}@{call.project}.iam.gserviceaccount.com"
    if email in call.state["service_accounts"]:
        fail("ALREADY_EXISTS", f"Service account {account_id} already exists within project")
    call.state["service_accounts"][email] = fx.service_account(
        call.project, email, call.arg("--display-name", "")
    )
    call.state.setdefault("new_accounts", []).append(email)
    event("create", "service_account", email)


@command("gcloud.iam.service-accounts.delete")
def accounts_delete(call: Call) -> None:
    email = call.positional("SERVICE_ACCOUNT")
    service_account_of(call, email)
    del call.state["service_accounts"][email]
    # The account's own policy goes with it (a new account of the same name has none).
    call.state["iam"].pop(f"account:{email}", None)
    event("delete", "service_account", email)


# An account's own policy (https://cloud.google.com/iam/docs/service-account-permissions):
# infra/build_accounts.sh lets the deployer act as each runtime account there.
@command("gcloud.iam.service-accounts.add-iam-policy-binding")
def accounts_add_binding(call: Call) -> Json:
    email = call.positional("SERVICE_ACCOUNT")
    service_account_of(call, email)
    return call.add_binding(f"account:{email}", "account")


@command("gcloud.iam.service-accounts.get-iam-policy")
def accounts_get_iam_policy(call: Call) -> Json:
    email = call.positional("SERVICE_ACCOUNT")
    service_account_of(call, email)
    return fx.policy(call.bindings(f"account:{email}"))


# -- custom roles (https://cloud.google.com/iam/docs/reference/rest/v1/projects.roles)


def custom_role_name(call: Call) -> str:
    role_id = call.positional("ROLE_ID")
    if not re.fullmatch(r"[a-zA-Z0-9_.]{3,64}", role_id):
        fail("INVALID_ARGUMENT", f"invalid role id {role_id!r}")
    if call.arg("--organization"):
        fail("INVALID_ARGUMENT", "the scripts make project roles only")
    return f"projects/{call.project}/roles/{role_id}"


def permissions_arg(call: Call) -> list[str]:
    given = call.arg("--permissions")
    if not given:
        fail("INVALID_ARGUMENT", "a custom role needs --permissions")
    permissions = given.split(",") if isinstance(given, str) else list(given)
    for permission in permissions:
        if not re.fullmatch(r"[a-z]+(\.[a-zA-Z]+){2}", permission):
            fail("INVALID_ARGUMENT", f"Permission {permission} is not valid.")
    return sorted(set(permissions))


@command("gcloud.iam.roles.describe")
def roles_describe(call: Call) -> Json:
    name = custom_role_name(call)
    role: Json | None = call.state.setdefault("custom_roles", {}).get(name)
    if role is None:
        fail("NOT_FOUND", f"The role named {name} was not found.")
    return role


@command("gcloud.iam.roles.create")
def roles_create(call: Call) -> Json:
    name = custom_role_name(call)
    roles = call.state.setdefault("custom_roles", {})
    if name in roles:
        fail("ALREADY_EXISTS", f"A role named {call.positional('ROLE_ID')} already exists.")
    roles[name] = fx.custom_role(
        name, call.arg("--title", ""), call.arg("--description", ""), permissions_arg(call),
        call.arg("--stage", "ALPHA"),
    )  # fmt: skip
    event("create", "custom_role", name)
    return roles[name]


@command("gcloud.iam.roles.update")
def roles_update(call: Call) -> Json:
    role = roles_describe(call)
    if call.arg("--permissions"):
        permissions = permissions_arg(call)
        if permissions != role["includedPermissions"]:
            role["includedPermissions"] = permissions
            event("update", "custom_role", role["name"])
    for flag, key in (("--title", "title"), ("--description", "description")):
        if call.arg(flag):
            role[key] = call.arg(flag)
    return role


# -- Cloud Functions (2nd gen) and Eventarc


def function_of(call: Call) -> Json:
    name = call.positional("NAME")
    function: Json | None = call.state["functions"].get(name)
    if function is None:
        fail(
            "NOT_FOUND",
            f"Resource 'projects/{call.project}/locations/{call.arg('--region')}/functions/"
            f"{name}' was not found",
        )
    return function


def existing_account(call: Call, email: str | None, flag: str) -> str:
    if not email:
        fail("INVALID_ARGUMENT", f"{flag} is missing: the default compute identity would be used")
    service_account_of(call, email)
    return email


@command("gcloud.functions.deploy")
def functions_deploy(call: Call) -> Json:
    name = call.positional("NAME")
    region = call.arg("--region")
    if call.arg("--gen2") != "true":
        fail("INVALID_ARGUMENT", "Tinkerbell deploys 2nd gen functions only (--gen2)")
    function = call.state["functions"].get(name)
    creating = function is None
    if creating:
        if not call.arg("--runtime"):
            fail("INVALID_ARGUMENT", "--runtime is required when creating a function")
        function = fx.function(call.project, region, name)
    assert function is not None
    source = call.arg("--source")
    answer = ask_parser(
        {"op": "upload_files", "directory": str(Path(source).resolve()), "kind": "functions"}
    )
    files = answer["files"]
    if "main.py" not in files or "requirements.txt" not in files:
        fail("INVALID_ARGUMENT", f"the source upload lacks main.py or requirements.txt: {files}")
    runtime_sa = existing_account(call, call.arg("--service-account"), "--service-account")
    build_sa = call.arg("--build-service-account") or ""
    existing_account(call, build_sa.rsplit("/", 1)[-1] or None, "--build-service-account")
    env = call.arg("--env-vars-file")
    if env is None:
        fail("INVALID_ARGUMENT", "the functions' environment comes from --env-vars-file")
    reserved = RESERVED_ENV & set(env)
    if reserved:
        fail("INVALID_ARGUMENT", f"reserved environment variables: {sorted(reserved)}")
    # Without a secrets flag a deploy keeps the function's secrets; --clear-secrets drops
    # them (googlecloudsdk/command_lib/functions/v2/deploy/command.py, secrets_config).
    previous_secrets = function["serviceConfig"].get("secretEnvironmentVariables") or []
    secrets = call.arg("--set-secrets") or {}
    secret_env = [] if call.arg("--clear-secrets") or secrets else list(previous_secrets)
    for key, ref in secrets.items():
        secret_name = ref.split("/")[3]
        if secret_name not in call.state["secrets"]:
            fail("NOT_FOUND", f"Secret {secret_name} was not found")
        # Cloud Run refuses a revision whose identity cannot read its secrets.
        member = f"serviceAccount:{runtime_sa}"
        if not call.has_role(f"secret:{secret_name}", "roles/secretmanager.secretAccessor", member):
            fail(
                "FAILED_PRECONDITION",
                f"Permission denied on secret {secret_name} for Revision service account "
                f"{runtime_sa}",
            )
        secret_env.append(
            {"key": key, "projectId": call.project, "secret": secret_name, "version": "latest"}
        )
    timeout = call.arg("--timeout", 60)
    topic_name = call.arg("--trigger-topic")
    limit = MAX_EVENT_TIMEOUT_S if topic_name else MAX_HTTP_TIMEOUT_S
    if timeout > limit:
        fail("INVALID_ARGUMENT", f"timeout {timeout}s exceeds {limit}s for this function type")
    service_config = function["serviceConfig"]
    service_config.update(
        {
            "serviceAccountEmail": runtime_sa,
            "timeoutSeconds": timeout,
            "availableMemory": call.arg("--memory", "256Mi"),
            "environmentVariables": {**env, "LOG_EXECUTION_ID": "true"},
            "secretEnvironmentVariables": secret_env,
        }
    )
    for flag, key in (
        ("--max-instances", "maxInstanceCount"),
        ("--concurrency", "maxInstanceRequestConcurrency"),
        ("--cpu", "availableCpu"),
    ):
        if call.arg(flag) is not None:
            service_config[key] = call.arg(flag)
    function["buildConfig"] = {
        "runtime": call.arg("--runtime", function["buildConfig"].get("runtime")),
        "entryPoint": call.arg("--entry-point", function["buildConfig"].get("entryPoint")),
        "serviceAccount": build_sa,
        "source": {"storageSource": {"bucket": f"gcf-v2-sources-{fx.PROJECT_NUMBER}-{region}"}},
        "dockerRepository": f"projects/{call.project}/locations/{region}/repositories/"
        "gcf-artifacts",
    }
    function["sourceFiles"] = files  # rehearsal only: what the upload held
    labels = {**function.get("labels", {}), **(call.arg("--update-labels") or {})}
    for key in call.arg("--remove-labels") or []:
        labels.pop(key, None)
    function["labels"] = labels
    run_resource = f"run:{fx.run_service_name(name)}"
    if topic_name:
        for api in ("eventarc.googleapis.com", "pubsub.googleapis.com"):
            if api not in call.state["services"]:
                fail("FAILED_PRECONDITION", f"{api} is needed for an event trigger")
        topic_of(call, topic_name)
        trigger_sa = existing_account(
            call, call.arg("--trigger-service-account"), "--trigger-service-account"
        )
        if fresh_faults_on():
            made = "eventarc.googleapis.com" in call.state.get("service_identities", {})
            refusals = 1 if made else EVENTARC_LAZY_REFUSALS
            if fault_count("eventarc-agent") < refusals:
                trigger = fx.trigger(call.project, region, name, topic_name, trigger_sa)["name"]
                give_fault(
                    "eventarc-agent",
                    "FAILED_PRECONDITION",
                    EVENTARC_AGENT_MESSAGE.format(trigger=trigger),
                )
        function["eventTrigger"] = deploy_trigger(call, name, region, topic_name, trigger_sa)
        function["eventTrigger"]["retryPolicy"] = (
            "RETRY_POLICY_RETRY" if call.arg("--retry") else "RETRY_POLICY_DO_NOT_RETRY"
        )
    elif call.arg("--trigger-http"):
        function.pop("eventTrigger", None)
        invokers = call.bindings(run_resource).setdefault("roles/run.invoker", [])
        if call.arg("--allow-unauthenticated") and "allUsers" not in invokers:
            invokers.append("allUsers")
            event("bind", run_resource, "roles/run.invoker allUsers")
        if call.arg("--no-allow-unauthenticated") is False and "allUsers" in invokers:
            invokers.remove("allUsers")
            event("unbind", run_resource, "roles/run.invoker allUsers")
    else:
        fail("INVALID_ARGUMENT", "the rehearsal expects --trigger-http or --trigger-topic")
    function["updateTime"] = f"rehearsal-run-{os.environ.get('REHEARSAL_RUN', '')}"
    call.state["functions"][name] = function
    event("create" if creating else "update", "function", name)
    if call.arg("--allow-unauthenticated") and refuses_all_users():
        # gcloud 528's gen2 deploy sets the allUsers binding after the function is
        # deployed, and fails the command when it is refused (command_lib/functions/
        # run_util.AddOrRemoveInvokerBinding, no try/except in v2/deploy/command.Run).
        invokers = call.bindings(run_resource).setdefault("roles/run.invoker", [])
        if "allUsers" in invokers:
            invokers.remove("allUsers")
        raise FailedAfterChanges("FAILED_PRECONDITION", DRS_MESSAGE)
    return function


def deploy_trigger(call: Call, name: str, region: str, topic_name: str, sa: str) -> Json:
    """The Eventarc trigger and push subscription Cloud Functions keeps for the function."""
    trigger = fx.trigger(call.project, region, name, topic_name, sa)
    trigger_id = short(trigger["name"])
    previous = call.state["triggers"].get(trigger_id)
    if previous is None:
        subscription_name = short(trigger["transport"]["pubsub"]["subscription"])
        push = call.state["functions"].get(name, fx.function(call.project, region, name))
        call.state["triggers"][trigger_id] = trigger
        call.state["subscriptions"][subscription_name] = fx.subscription(
            call.project, subscription_name, topic_name, push["serviceConfig"]["uri"], sa
        )
        event("create", "trigger", trigger_id)
        event("create", "subscription", subscription_name)
    else:
        previous["serviceAccount"] = sa
    return {
        "trigger": trigger["name"],
        "triggerRegion": region,
        "eventType": "google.cloud.pubsub.topic.v1.messagePublished",
        "pubsubTopic": f"projects/{call.project}/topics/{topic_name}",
        "serviceAccountEmail": sa,
    }


@command("gcloud.functions.describe")
def functions_describe(call: Call) -> Json:
    return function_of(call)


@command("gcloud.functions.delete")
def functions_delete(call: Call) -> None:
    function = function_of(call)
    name = call.positional("NAME")
    trigger_name = function.get("eventTrigger", {}).get("trigger")
    if trigger_name:
        trigger = call.state["triggers"].pop(short(trigger_name))
        subscription = short(trigger["transport"]["pubsub"]["subscription"])
        call.state["subscriptions"].pop(subscription, None)
        call.state["iam"].pop(f"subscription:{subscription}", None)
        event("delete", "trigger", short(trigger_name))
        event("delete", "subscription", subscription)
    call.state["iam"].pop(f"run:{fx.run_service_name(name)}", None)
    del call.state["functions"][name]
    event("delete", "function", name)


@command("gcloud.functions.add-invoker-policy-binding")
def functions_add_invoker(call: Call) -> Json:
    function_of(call)
    call.args["--role"] = "roles/run.invoker"
    return call.add_binding(f"run:{fx.run_service_name(call.positional('NAME'))}", "run")


@command("gcloud.eventarc.triggers.describe")
def triggers_describe(call: Call) -> Json:
    trigger: Json | None = call.state["triggers"].get(short(call.positional("TRIGGER")))
    if trigger is None:
        fail("NOT_FOUND", f"Trigger {call.positional('TRIGGER')} not found")
    return trigger


# -- Cloud Scheduler


def job_of(call: Call) -> Json:
    job: Json | None = call.state["jobs"].get(call.positional("JOB"))
    if job is None:
        fail("NOT_FOUND", f"Job {call.positional('JOB')} not found.")
    return job


def apply_job_flags(call: Call, job: Json) -> None:
    # attemptDeadline: 15 s to 30 min for HTTP targets
    # (https://cloud.google.com/scheduler/docs/reference/rest/v1/projects.locations.jobs#Job)
    deadline = call.arg("--attempt-deadline")
    if deadline is not None:
        if not 15 <= deadline <= 1800:
            fail("INVALID_ARGUMENT", f"attempt deadline {deadline}s outside 15s..30m")
        job["attemptDeadline"] = f"{int(deadline)}s"
    if call.arg("--schedule") is not None:
        job["schedule"] = call.arg("--schedule")
    target = job.setdefault("httpTarget", {"httpMethod": "POST"})
    if call.arg("--uri") is not None:
        target["uri"] = call.arg("--uri")
    if call.arg("--http-method") is not None:
        target["httpMethod"] = call.arg("--http-method").upper()
    email = call.arg("--oidc-service-account-email")
    if email is not None:
        service_account_of(call, email)
        target["oidcToken"] = {
            "serviceAccountEmail": email,
            "audience": call.arg("--oidc-token-audience", target.get("uri")),
        }


@command("gcloud.scheduler.jobs.describe")
def jobs_describe(call: Call) -> Json:
    return job_of(call)


@command("gcloud.scheduler.jobs.create.http")
def jobs_create(call: Call) -> None:
    name = call.positional("JOB")
    if name in call.state["jobs"]:
        fail("ALREADY_EXISTS", f"Job {name} already exists.")
    job = fx.scheduler_job(call.project, call.arg("--location"), name)
    apply_job_flags(call, job)
    call.state["jobs"][name] = job
    event("create", "job", name)


@command("gcloud.scheduler.jobs.update.http")
def jobs_update(call: Call) -> None:
    apply_job_flags(call, job_of(call))
    event("update", "job", call.positional("JOB"))


@command("gcloud.scheduler.jobs.delete")
def jobs_delete(call: Call) -> None:
    job_of(call)
    del call.state["jobs"][call.positional("JOB")]
    event("delete", "job", call.positional("JOB"))
