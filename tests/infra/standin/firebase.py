"""firebase: commands checked against the installed firebase-tools, firebase.json
against its schema."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import sys
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.infra import fixtures as fx

from .calls import short
from .common import (
    FIREBASE_TOOLS,
    REPO,
    ApiError,
    Json,
    append,
    event,
    fail,
    fault_count,
    fresh_faults_on,
    locked_state,
    rehearsal_dir,
    seq,
)


def firebase_commands() -> dict[str, Json]:
    """Command names, positional arguments and options of the installed firebase-tools."""
    commands: dict[str, Json] = {}
    for path in sorted((FIREBASE_TOOLS / "lib" / "commands").glob("*.js")):
        text = path.read_text()
        match = re.search(r'new command_1\.Command\("([^"]+)"\)', text)
        if not match:
            continue
        name, *positional = match[1].split()
        options = {}
        for flags in re.findall(r'\.option\("([^"]+)"', text):
            options.update(parse_option(flags))
        if ".withForce(" in text:
            options.update(parse_option("-f, --force"))
        commands[name] = {"positional": positional, "options": options}
    return commands


def parse_option(flags: str) -> dict[str, str]:
    """'-o, --out [file]' -> {'-o': 'optional', '--out': 'optional'} (commander syntax)."""
    takes = "required" if "<" in flags else "optional" if "[" in flags else "none"
    names = re.findall(r"(--?[A-Za-z][\w-]*)", flags.split("<")[0].split("[")[0])
    return dict.fromkeys(names, takes)


def global_options() -> dict[str, str]:
    options: dict[str, str] = {}
    text = (FIREBASE_TOOLS / "lib" / "index.js").read_text()
    for flags in re.findall(r'program\.option\("([^"]+)"', text):
        options.update(parse_option(flags))
    options.update(parse_option("-h, --help"))
    return options


def parse_firebase(argv: list[str]) -> tuple[str, list[str], dict[str, Any]]:
    """Commander's reading of argv, or ValueError for what firebase-tools would refuse."""
    commands = firebase_commands()
    known = global_options()
    name = ""
    positional: list[str] = []
    options: dict[str, Any] = {}
    words = list(argv)
    while words:
        word = words.pop(0)
        if word.startswith("-"):
            flag, has_value, value = word.partition("=")
            spec = {**known, **(commands.get(name, {}).get("options", {}))}
            if flag.startswith("--no-") and f"--{flag[5:]}" in spec:
                options[flag[5:]] = False
                continue
            if flag not in spec:
                raise ValueError(f"error: unknown option '{flag}'")
            takes = spec[flag]
            if takes == "none":
                if has_value:
                    raise ValueError(f"error: option '{flag}' takes no value")
                options[flag.lstrip("-")] = True
            elif has_value:
                options[flag.lstrip("-")] = value
            elif takes == "required":
                if not words:
                    raise ValueError(f"error: option '{flag}' argument missing")
                options[flag.lstrip("-")] = words.pop(0)
            else:
                options[flag.lstrip("-")] = True
        elif not name:
            name = word
            if name not in commands:
                raise ValueError(f"firebase: {name} is not a firebase command")
        else:
            positional.append(word)
    if not name:
        raise ValueError("firebase: no command")
    if len(positional) > len(commands[name]["positional"]):
        raise ValueError(f"Too many arguments. Run firebase help {name} for usage instructions")
    return name, positional, options


def firebase_schema_errors(config: Json) -> list[str]:
    """firebase.json against firebase-tools' schema (schema/firebase-config.json)."""
    import jsonschema_rs

    def quoted(node: Any) -> Any:
        # The schema's own $refs hold '<' and '>' (Record<string,string>): URI-quote them.
        if isinstance(node, dict):
            return {
                key: urllib.parse.quote(value, safe="#/,") if key == "$ref" else quoted(value)
                for key, value in node.items()
            }
        if isinstance(node, list):
            return [quoted(item) for item in node]
        return node

    schema = quoted(json.loads((FIREBASE_TOOLS / "schema" / "firebase-config.json").read_text()))
    validator = jsonschema_rs.validator_for(schema)
    return [str(error).splitlines()[0] for error in validator.iter_errors(config)]


def firebase(argv: list[str]) -> int:
    record: Json = {
        "seq": seq(),
        "run": os.environ.get("REHEARSAL_RUN", ""),
        "tool": "firebase",
        "argv": argv,
    }
    try:
        name, positional, options = parse_firebase(argv)
    except ValueError as exc:
        append("calls.jsonl", record)
        append("rejects.jsonl", {**record, "error": str(exc)})
        print(exc, file=sys.stderr)
        return 1
    record["command"] = name
    append("calls.jsonl", record)
    handler = FIREBASE.get(name)
    if handler is None:
        append("rejects.jsonl", {**record, "error": "command not simulated"})
        return 3
    try:
        with locked_state() as state:
            project = options.get("project") or options.get("P")
            if not project or project != state.get("project", project):
                fail("INVALID_ARGUMENT", f"firebase needs --project (got {project!r})")
            if not options.get("non-interactive") and not options.get("json"):
                fail("INVALID_ARGUMENT", "scripts run firebase with --non-interactive")
            # The rehearsal's firebase-tools runs on application-default credentials whose
            # quota project (ADC_QUOTA_PROJECT) has no Firebase APIs; firebase-tools bills
            # GOOGLE_CLOUD_QUOTA_PROJECT instead when set (lib/apiv2.js, x-goog-user-project).
            quota = os.environ.get("GOOGLE_CLOUD_QUOTA_PROJECT") or ADC_QUOTA_PROJECT
            if quota != project:
                fail(
                    "PERMISSION_DENIED",
                    f"Firebase Management API has not been used in project {quota} before "
                    "or it is disabled (the quota project of the application-default "
                    "credentials).",
                )
            disabled = service_disabled_first(state)
            if disabled is None:
                result = handler(state, project, positional, options)
        if disabled is not None:
            return answer_service_disabled(name, options, disabled)
    except ApiError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        if options.get("json"):
            print(json.dumps({"status": "error", "error": str(exc)}))
        return 1
    if options.get("json"):
        print(json.dumps(fx.firebase_json_envelope(result), indent=2))
    else:
        print(f"✔  {name} complete", file=sys.stderr)
    return 0


# The quota project of the application-default credentials the rehearsal simulates.
ADC_QUOTA_PROJECT = "operators-own-project"

# ------------------------------------------------------------ first-run fault (firebase)
#
# As the gcloud stand-in does (common.py, "first-run faults"): a fresh project's first
# firebase call, just after `services enable` turned the Firebase Management API on,
# answers SERVICE_DISABLED once (logged in faults.jsonl; REHEARSAL_FRESH_FAULTS=0 turns
# it off). It is told the way firebase-tools 15.34 tells it, which hides the cause:
# - a command that wraps the API's error (projects:list, lib/management/projects.js:
#   "Failed to list Firebase projects. See firebase-debug.log for more info.", exit 2)
#   shows only that sentence; the API's answer (reason SERVICE_DISABLED) is in the debug
#   log alone (lib/apiv2.js logResponse), which is kept because the exit code is >= 2
#   (lib/bin/cli.js deletes it below 2);
# - any other command shows apiv2's "Request to URL had HTTP Error: 403, MESSAGE" and
#   exits 1 (lib/responseToError.js), its debug log deleted;
# - with --json, nothing goes to stderr (no console logger) and stdout is
#   {"status": "error", "error": MESSAGE} (lib/command.js).
# The debug log goes where FIREBASE_DEBUG_PATH says (lib/logger.js resolveLogTarget);
# without it firebase-tools writes ./firebase-debug.log, the stand-in
# $REHEARSAL_DIR/firebase-debug.log (never into the repo).
FIREBASE_API = "firebase.googleapis.com"
WRAPPED_ERRORS = {
    "projects:list": "Failed to list Firebase projects. See firebase-debug.log for more info.",
}
PROJECTS_URL = "https://firebase.googleapis.com/v1beta1/projects"


def service_disabled_first(state: Json) -> Json | None:
    """The API's 403 answer, for the first call after the Firebase API was enabled."""
    key = "firebase-service-disabled"
    if FIREBASE_API not in state.get("just_enabled", []):
        return None
    if not fresh_faults_on() or fault_count(key):
        return None
    append("faults.jsonl", {"run": os.environ.get("REHEARSAL_RUN", ""), "key": key})
    message = (
        f"Firebase Management API has not been used in project {fx.PROJECT_NUMBER} before "
        "or it is disabled. Enable it by visiting https://console.developers.google.com/apis/"
        f"api/{FIREBASE_API}/overview?project={fx.PROJECT_NUMBER} then retry. If you enabled "
        "this API recently, wait a few minutes for the action to propagate to our systems "
        "and retry."
    )
    return {
        "error": {
            "code": 403,
            "message": message,
            "status": "PERMISSION_DENIED",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "SERVICE_DISABLED",
                    "domain": "googleapis.com",
                    "metadata": {
                        "service": FIREBASE_API,
                        "consumer": f"projects/{fx.PROJECT_NUMBER}",
                    },
                }
            ],
        }
    }


def debug_log_path() -> Path:
    """lib/logger.js resolveLogTarget: FIREBASE_DEBUG_PATH, a file or a directory."""
    target = os.environ.get("FIREBASE_DEBUG_PATH", "").strip()
    if not target:
        return rehearsal_dir() / "firebase-debug.log"
    path = Path(target).expanduser()
    if path.is_dir() or not path.suffix:
        return path / "firebase-debug.log"
    return path


def answer_service_disabled(name: str, options: dict[str, Any], body: Json) -> int:
    wrapped = WRAPPED_ERRORS.get(name)
    if wrapped is not None:
        message, code = wrapped, 2
        log = debug_log_path()
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as stream:
            stream.write(f"[debug] <<< [apiv2][status] GET {PROJECTS_URL} 403\n")
            stream.write(f"[debug] <<< [apiv2][body] GET {PROJECTS_URL} {json.dumps(body)}\n")
            stream.write(f"[error] Error: {message}\n")
    else:
        message = f"Request to {PROJECTS_URL} had HTTP Error: 403, {body['error']['message']}"
        code = 1
    if options.get("json"):
        print(json.dumps({"status": "error", "error": message}, indent=2))
    else:
        print(f"\nError: {message}", file=sys.stderr)
    return code


FirebaseHandler = Callable[[Json, str, list[str], dict[str, Any]], Any]


def require_firebase(state: Json) -> Json:
    project: Json | None = state["firebase"]
    if project is None:
        fail(
            "NOT_FOUND",
            "Failed to get Firebase project. Please make sure the project exists "
            "and your account has permission to access it.",
        )
    return project


def require_api(state: Json, api: str) -> None:
    if api not in state["services"]:
        fail("PERMISSION_DENIED", f"{api} is not enabled")


def default_site(firebase_state: Json) -> Json | None:
    return next((s for s in firebase_state["sites"] if s["type"] == "DEFAULT_SITE"), None)


def fb_projects_list(state: Json, project: str, positional: list[str], options: Json) -> Any:
    # An account that may not list Firebase projects (a test's REHEARSAL_FIREBASE_DENY).
    if os.environ.get("REHEARSAL_FIREBASE_DENY") == "projects:list":
        fail("PERMISSION_DENIED", "The caller does not have permission")
    if state["firebase"] is None:
        return []
    site = default_site(state["firebase"])
    return [fx.firebase_project(project, short(site["name"]) if site else None)]


def fb_addfirebase(state: Json, project: str, positional: list[str], options: Json) -> Any:
    require_api(state, "firebase.googleapis.com")
    if positional and positional[0] != project:
        fail("INVALID_ARGUMENT", "addfirebase names another project")
    if state["firebase"] is not None:
        fail("ALREADY_EXISTS", "Firebase has already been added to this project")
    state["firebase"] = {"apps": [], "sites": [], "auth": {}, "rules": None, "releases": 0}
    event("create", "firebase", project)
    return fx.firebase_project(project, None)


def fb_apps_list(state: Json, project: str, positional: list[str], options: Json) -> Any:
    apps: list[Json] = require_firebase(state)["apps"]
    return apps


def fb_apps_create(state: Json, project: str, positional: list[str], options: Json) -> Any:
    firebase_state = require_firebase(state)
    platform, display_name = [*positional, "", ""][:2]
    if platform.upper() != "WEB" or not display_name:
        fail("INVALID_ARGUMENT", "the rehearsal expects apps:create WEB NAME")
    app = fx.web_app(project, len(firebase_state["apps"]) + 1, display_name)
    firebase_state["apps"].append(app)
    event("create", "web_app", display_name)
    # Non-interactive, apps:create takes the offer of a default Hosting site named after
    # the project (firebase-tools lib/commands/apps-create.js, pickHostingSiteName).
    if default_site(firebase_state) is None:
        create_site(state, firebase_state, project, project, app["appId"])
    return app


def create_site(state: Json, firebase_state: Json, project: str, site_id: str, app: Any) -> Json:
    require_api(state, "firebasehosting.googleapis.com")
    if any(short(s["name"]) == site_id for s in firebase_state["sites"]):
        fail("ALREADY_EXISTS", f"Site {site_id} already exists")
    # The first site of a project becomes its default site (what firebase deploy needs:
    # firebase-tools lib/getDefaultHostingSite.js).
    site = fx.hosting_site(project, site_id, app, default=not firebase_state["sites"])
    firebase_state["sites"].append(site)
    event("create", "hosting_site", site_id)
    return site


def fb_sites_list(state: Json, project: str, positional: list[str], options: Json) -> Any:
    require_api(state, "firebasehosting.googleapis.com")
    return {"sites": require_firebase(state)["sites"]}


def fb_sites_create(state: Json, project: str, positional: list[str], options: Json) -> Any:
    firebase_state = require_firebase(state)
    if not positional:
        fail("INVALID_ARGUMENT", "siteId is required in a non-interactive environment")
    app = options.get("app")
    if app and not any(a["appId"] == app for a in firebase_state["apps"]):
        fail("NOT_FOUND", f"app {app} not found")
    return create_site(state, firebase_state, project, positional[0], app)


def fb_sdkconfig(state: Json, project: str, positional: list[str], options: Json) -> Any:
    firebase_state = require_firebase(state)
    platform, app_id = [*positional, "", ""][:2]
    if platform.upper() != "WEB" or not any(a["appId"] == app_id for a in firebase_state["apps"]):
        fail("NOT_FOUND", f"no web app {app_id}")
    config = fx.web_app_config(project, app_id)
    contents = f"firebase.initializeApp({json.dumps(config)});"
    return {"fileName": "google-config.js", "fileContents": contents, "sdkConfig": config}


def fb_hosting_disable(state: Json, project: str, positional: list[str], options: Json) -> Any:
    firebase_state = require_firebase(state)
    site = next(
        (s for s in firebase_state["sites"] if short(s["name"]) == options.get("site")), None
    )
    if site is None or not options.get("force"):
        fail("INVALID_ARGUMENT", "hosting:disable needs an existing --site and --force")
    site["disabled"] = True
    event("delete", "hosting_release", short(site["name"]))
    return {}


def fb_deploy(state: Json, project: str, positional: list[str], options: Json) -> Any:
    firebase_state = require_firebase(state)
    config_path = Path(options.get("config") or "firebase.json")
    if Path.cwd() != REPO:
        fail("INVALID_ARGUMENT", "deploy from the repo root")
    config = json.loads(config_path.read_text())
    errors = firebase_schema_errors(config)
    if errors:
        fail("INVALID_ARGUMENT", f"{config_path} does not match the schema: {errors}")
    only = options.get("only")
    if not only:
        fail("INVALID_ARGUMENT", "the scripts deploy with --only")
    # Hosting deploys from the config infra/hosting.py writes (firebase.json's hosting
    # section, the Content-Security-Policy added, "public" absolute); the rest from
    # firebase.json itself.
    if config_path.resolve() != REPO / "firebase.json" and only != "hosting":
        fail("INVALID_ARGUMENT", f"{only} deploys from the repo's firebase.json")
    for target in only.split(","):
        if target in ("firestore:rules", "firestore:indexes"):
            require_api(state, "firestore.googleapis.com")
            require_api(state, "firebaserules.googleapis.com")
            if "(default)" not in state["databases"]:
                # firebase-tools would create it, in nam5, for good: never let it.
                fail("FAILED_PRECONDITION", "no (default) database: deploy would create it in nam5")
            firestore = config["firestore"]
            if target == "firestore:rules":
                rules = (REPO / firestore["rules"]).read_text()
                if not rules.startswith("rules_version"):
                    fail("INVALID_ARGUMENT", "firestore.rules does not compile")
                state["rules"] = rules
                event("update", "rules", firestore["rules"])
            else:
                deploy_indexes(state, json.loads((REPO / firestore["indexes"]).read_text()))
        elif target == "auth":
            require_api(state, "identitytoolkit.googleapis.com")
            if not firebase_state["apps"]:  # lib/deploy/auth/prepare.js creates one
                firebase_state["apps"].append(fx.web_app(project, 99, "Default Web App"))
                event("create", "web_app", "Default Web App")
            providers = config["auth"]["providers"]
            if firebase_state["auth"] != providers:
                firebase_state["auth"] = providers
                event("update", "auth", ",".join(sorted(providers)))
        elif target == "hosting":
            require_api(state, "firebasehosting.googleapis.com")
            site = default_site(firebase_state)
            if site is None:
                fail(
                    "FAILED_PRECONDITION", "Unable to deploy to Hosting as there is no Hosting site"
                )
            public = (REPO / config["hosting"]["public"]).resolve()
            if public != REPO / "web":
                fail("INVALID_ARGUMENT", f"Hosting's public directory is {public}, not web/")
            files = hosting_files(public, config["hosting"].get("ignore", []))
            if "index.html" not in files:
                fail("INVALID_ARGUMENT", f"no index.html in {public}")
            site.pop("disabled", None)
            firebase_state["releases"] += 1
            firebase_state["hosted_files"] = files
            firebase_state["hosting_headers"] = config["hosting"].get("headers", [])
            event("update", "hosting_release", short(site["name"]))
        else:
            fail("INVALID_ARGUMENT", f"the rehearsal does not simulate deploy target {target}")
    return {}


def deploy_indexes(state: Json, indexes: Json) -> None:
    database = "(default)"
    specs = state["indexes"].setdefault(database, [])
    for spec in indexes.get("indexes", []):
        if spec not in specs:
            specs.append(spec)
            event("create", "index", json.dumps(spec, sort_keys=True))
    fields = state["fields"].setdefault(database, {})
    overrides = state.setdefault("field_indexes", {}).setdefault(database, {})
    for override in indexes.get("fieldOverrides", []):
        key = f"{override['collectionGroup']}/{override['fieldPath']}"
        overrides[key] = override.get("indexes", [])
        if override.get("ttl") and fields.get(key) is None:
            fields[key] = "ACTIVE"
            event("create", "ttl", key)


def hosting_files(public: Path, ignore: list[str]) -> list[str]:
    files = []
    for path in sorted(public.rglob("*")):
        relative = path.relative_to(public).as_posix()
        if path.is_file() and not any(fnmatch.fnmatch(relative, p) for p in ignore):
            files.append(relative)
    return files


FIREBASE: dict[str, FirebaseHandler] = {
    "projects:list": fb_projects_list,
    "projects:addfirebase": fb_addfirebase,
    "apps:list": fb_apps_list,
    "apps:create": fb_apps_create,
    "apps:sdkconfig": fb_sdkconfig,
    "hosting:sites:list": fb_sites_list,
    "hosting:sites:create": fb_sites_create,
    "hosting:disable": fb_hosting_disable,
    "deploy": fb_deploy,
}
