"""Resources as Google's APIs (and gcloud, and firebase-tools) show them.

The gcloud stand-in answers describe and list calls with these shapes, and then
prints them with gcloud's own resource printer (tests/infra/gcloud_parser.py), so
that a ``--format='value(eventTrigger.trigger)'`` in the deploy script reads the
field where the real answer has it. Each builder names its source: the REST
reference of the resource (gcloud prints the API's message as JSON, camelCase
field names) or the gcloud / firebase-tools source file that shapes the output.
Only the fields the scripts read or the test checks are filled in, plus a few
that make a resource recognisable.
"""

from __future__ import annotations

import zlib
from typing import Any

Json = dict[str, Any]
PROJECT_NUMBER = "493087620113"
CREATE_TIME = "2026-11-29T10:00:00.000000Z"


def service(api: str) -> Json:
    # https://cloud.google.com/service-usage/docs/reference/rest/v1/services#Service
    return {
        "name": f"projects/{PROJECT_NUMBER}/services/{api}",
        "parent": f"projects/{PROJECT_NUMBER}",
        "config": {"name": api, "title": api.split(".")[0]},
        "state": "ENABLED",
    }


def service_identity(api: str) -> Json:
    # https://cloud.google.com/service-usage/docs/reference/rest/v1beta1/services/generateServiceIdentity
    # (ServiceIdentity); a service agent's address: service-NUMBER@gcp-sa-NAME.iam...
    # (https://cloud.google.com/iam/docs/service-agents)
    name = api.removesuffix(".googleapis.com")
    return {
        "email": f"service-{PROJECT_NUMBER}@gcp-sa-{name}.iam.gserviceaccount.com",
        "uniqueId": str(100000000000000000000 + zlib.crc32(api.encode())),
    }


def project(project_id: str) -> Json:
    # https://cloud.google.com/resource-manager/reference/rest/v1/projects#Project
    # (gcloud projects describe calls Resource Manager v1:
    # googlecloudsdk/api_lib/cloudresourcemanager/projects_util.py, DEFAULT_API_VERSION)
    return {
        "projectId": project_id,
        "projectNumber": PROJECT_NUMBER,
        "name": project_id,
        "lifecycleState": "ACTIVE",
        "createTime": CREATE_TIME,
    }


def policy(bindings: dict[str, list[str]]) -> Json:
    # https://cloud.google.com/iam/docs/reference/rest/v1/Policy
    return {
        "version": 1,
        "etag": "BwYf3rYc1xQ=",
        "bindings": [
            {"role": role, "members": sorted(members)}
            for role, members in sorted(bindings.items())
            if members
        ],
    }


def secret(project_id: str, name: str) -> Json:
    # https://cloud.google.com/secret-manager/docs/reference/rest/v1/projects.secrets#Secret
    return {
        "name": f"projects/{PROJECT_NUMBER}/secrets/{name}",
        "replication": {"automatic": {}},
        "createTime": CREATE_TIME,
        "etag": '"16274d3c9d1f1b"',
    }


def secret_version(name: str, number: int) -> Json:
    # https://cloud.google.com/secret-manager/docs/reference/rest/v1/projects.secrets.versions#SecretVersion
    return {
        "name": f"projects/{PROJECT_NUMBER}/secrets/{name}/versions/{number}",
        "createTime": CREATE_TIME,
        "state": "ENABLED",
        "replicationStatus": {"automatic": {}},
    }


def database(project_id: str, database_id: str, location: str, db_type: str) -> Json:
    # https://cloud.google.com/firestore/docs/reference/rest/v1/projects.databases#Database
    return {
        "name": f"projects/{project_id}/databases/{database_id}",
        "uid": "c8f2a1e4-1d7b-4c55-9a0e-5b7d3f1c2e90",
        "createTime": CREATE_TIME,
        "locationId": location,
        "type": {"firestore-native": "FIRESTORE_NATIVE", "datastore-mode": "DATASTORE_MODE"}[
            db_type
        ],
        "concurrencyMode": "PESSIMISTIC",
        "appEngineIntegrationMode": "DISABLED",
        "deleteProtectionState": "DELETE_PROTECTION_DISABLED",
        "databaseEdition": "STANDARD",
        "etag": "IPjb9v+1zokDMKrE3LO1zokD",
    }


def field(
    project_id: str,
    database_id: str,
    group: str,
    path: str,
    ttl_state: str | None,
    override: list[Json] | None = None,
) -> Json:
    # https://cloud.google.com/firestore/docs/reference/rest/v1/projects.databases.collectionGroups.fields#Field
    # A field without an override answers with its inherited index config and no ttlConfig;
    # with one, its own indexes ({} when the override lists none).
    config: Json = {"usesAncestorConfig": True, "ancestorField": "__default__"}
    if override is not None:
        config = {}
        if override:
            config["indexes"] = [
                {
                    "queryScope": index.get("queryScope", "COLLECTION"),
                    "fields": [
                        {
                            "fieldPath": path,
                            **{k: v for k, v in index.items() if k in ("order", "arrayConfig")},
                        }
                    ],
                    "state": "READY",
                }
                for index in override
            ]
    answer: Json = {
        "name": (
            f"projects/{project_id}/databases/{database_id}/collectionGroups/{group}/fields/{path}"
        ),
        "indexConfig": config,
    }
    if ttl_state:
        answer["ttlConfig"] = {"state": ttl_state}
    return answer


def composite_index(project_id: str, database_id: str, number: int, spec: Json) -> Json:
    # https://cloud.google.com/firestore/docs/reference/rest/v1/projects.databases.collectionGroups.indexes#Index
    group = spec["collectionGroup"]
    return {
        "name": (
            f"projects/{project_id}/databases/{database_id}/collectionGroups/{group}"
            f"/indexes/CICAgOjXh4EK{number:02d}"
        ),
        "queryScope": spec.get("queryScope", "COLLECTION"),
        "fields": [*spec["fields"], {"fieldPath": "__name__", "order": "ASCENDING"}],
        "state": "READY",
        "density": "SPARSE_ALL",
    }


def topic(project_id: str, name: str) -> Json:
    # https://cloud.google.com/pubsub/docs/reference/rest/v1/projects.topics#Topic
    return {"name": f"projects/{project_id}/topics/{name}"}


def subscription(project_id: str, name: str, topic_name: str, push_endpoint: str, sa: str) -> Json:
    # https://cloud.google.com/pubsub/docs/reference/rest/v1/projects.subscriptions#Subscription
    # As Eventarc creates it for a Pub/Sub trigger: push with an OIDC token, the
    # defaults for ack deadline and retry (immediate redelivery), no dead-letter policy.
    return {
        "name": f"projects/{project_id}/subscriptions/{name}",
        "topic": f"projects/{project_id}/topics/{topic_name}",
        "pushConfig": {
            "pushEndpoint": push_endpoint,
            "oidcToken": {"serviceAccountEmail": sa},
        },
        "ackDeadlineSeconds": 10,
        "messageRetentionDuration": "86400s",
        "expirationPolicy": {},
        "state": "ACTIVE",
        "labels": {"goog-eventarc": ""},
    }


def pull_subscription(project_id: str, name: str, topic_name: str) -> Json:
    # https://cloud.google.com/pubsub/docs/reference/rest/v1/projects.subscriptions#Subscription
    # As `gcloud pubsub subscriptions create` makes one without flags: pull, a 10 s ack
    # deadline, 7 days' retention, deleted after 31 days without use.
    return {
        "name": f"projects/{project_id}/subscriptions/{name}",
        "topic": f"projects/{project_id}/topics/{topic_name}",
        "pushConfig": {},
        "ackDeadlineSeconds": 10,
        "messageRetentionDuration": "604800s",
        "expirationPolicy": {"ttl": "2678400s"},
        "state": "ACTIVE",
    }


def bucket(name: str, location: str) -> Json:
    # What `gcloud storage buckets describe` prints: not the JSON API's field names but
    # gcloud's own display keys, googlecloudsdk/command_lib/storage/resources/
    # resource_util.py (get_display_dict_for_resource) over the fields of
    # full_resource_formatter.py (BucketDisplayTitlesAndDefaults).
    return {
        "storage_url": f"gs://{name}/",
        "name": name,
        "default_storage_class": "STANDARD",
        "location_type": "region",
        "location": location.upper(),
        "creation_time": "2026-11-29T10:00:00+0000",
        "uniform_bucket_level_access": False,
        "public_access_prevention": "inherited",
        "soft_delete_policy": {"retentionDurationSeconds": "604800"},
    }


def custom_role(
    name: str, title: str, description: str, permissions: list[str], stage: str
) -> Json:
    # https://cloud.google.com/iam/docs/reference/rest/v1/projects.roles#Role
    return {
        "name": name,
        "title": title,
        "description": description,
        "includedPermissions": permissions,
        "stage": stage,
        "etag": "BwYf3rYc1xQ=",
    }


def service_account(project_id: str, email: str, display_name: str) -> Json:
    # https://cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts#ServiceAccount
    return {
        "name": f"projects/{project_id}/serviceAccounts/{email}",
        "projectId": project_id,
        "uniqueId": str(100000000000000000000 + sum(map(ord, email))),
        "email": email,
        "displayName": display_name,
        "etag": "MDEwMjE5MjA=",
        "oauth2ClientId": str(100000000000000000000 + sum(map(ord, email))),
    }


def run_service_name(function_name: str) -> str:
    # Cloud Functions names the function's Cloud Run service after it, in lower case
    # with dashes (serviceConfig.service).
    return function_name.lower().replace("_", "-")


def function(project_id: str, region: str, name: str) -> Json:
    # https://cloud.google.com/functions/docs/reference/rest/v2/projects.locations.functions#Function
    service_name = run_service_name(name)
    return {
        "name": f"projects/{project_id}/locations/{region}/functions/{name}",
        "environment": "GEN_2",
        "state": "ACTIVE",
        # The cloudfunctions.net URL (Function.url) and the Cloud Run one (serviceConfig.uri).
        "url": f"https://{region}-{project_id}.cloudfunctions.net/{name}",
        "buildConfig": {},
        "serviceConfig": {
            "service": f"projects/{project_id}/locations/{region}/services/{service_name}",
            "uri": f"https://{service_name}-q4f7k2m3xa-ew.a.run.app",
            "ingressSettings": "ALLOW_ALL",
            "allTrafficOnLatestRevision": True,
        },
        "labels": {"deployment-tool": "cli-gcloud"},
    }


def trigger(project_id: str, region: str, function_name: str, topic_name: str, sa: str) -> Json:
    # https://cloud.google.com/eventarc/docs/reference/rest/v1/projects.locations.triggers#Trigger
    # A trigger that Cloud Functions made names the function (destination.cloudFunction),
    # not a Cloud Run service: gcloud's `eventarc triggers list` format shows either
    # (googlecloudsdk/command_lib/eventarc/flags.py and triggers list's display format).
    suffix = zlib.crc32(topic_name.encode()) % 900000 + 100000
    trigger_id = f"{run_service_name(function_name)}-{suffix}"
    return {
        "name": f"projects/{project_id}/locations/{region}/triggers/{trigger_id}",
        "uid": "7f0e6c1a-2b3d-4e5f-8a9b-0c1d2e3f4a5b",
        "createTime": CREATE_TIME,
        "eventFilters": [
            {"attribute": "type", "value": "google.cloud.pubsub.topic.v1.messagePublished"}
        ],
        "serviceAccount": sa,
        "destination": {
            "cloudFunction": f"projects/{project_id}/locations/{region}/functions/{function_name}"
        },
        "transport": {
            "pubsub": {
                "topic": f"projects/{project_id}/topics/{topic_name}",
                "subscription": (
                    f"projects/{project_id}/subscriptions/eventarc-{region}-{trigger_id}-sub-318"
                ),
            }
        },
        "eventDataContentType": "application/protobuf",
    }


def scheduler_job(project_id: str, region: str, name: str) -> Json:
    # https://cloud.google.com/scheduler/docs/reference/rest/v1/projects.locations.jobs#Job
    return {
        "name": f"projects/{project_id}/locations/{region}/jobs/{name}",
        "state": "ENABLED",
        "timeZone": "Etc/UTC",
        "userUpdateTime": CREATE_TIME,
        "retryConfig": {
            "maxBackoffDuration": "3600s",
            "maxDoublings": 5,
            "maxRetryDuration": "0s",
            "minBackoffDuration": "5s",
        },
    }


def firebase_project(project_id: str, hosting_site: str | None) -> Json:
    # https://firebase.google.com/docs/reference/firebase-management/rest/v1beta1/projects#FirebaseProject
    # (firebase projects:list --json returns a list of these: firebase-tools
    # lib/commands/projects-list.js)
    resources: Json = {}
    if hosting_site:
        resources["hostingSite"] = hosting_site
    return {
        "projectId": project_id,
        "projectNumber": PROJECT_NUMBER,
        "displayName": project_id,
        "name": f"projects/{project_id}",
        "resources": resources,
        "state": "ACTIVE",
        "etag": "1_8a1c2f0e-5b4d-4c3e-9f2a-7d6e5c4b3a21",
    }


def web_app(project_id: str, app_number: int, display_name: str) -> Json:
    # https://firebase.google.com/docs/reference/firebase-management/rest/v1beta1/projects.webApps#WebApp
    # (firebase apps:list adds "platform": firebase-tools lib/management/apps.js listFirebaseApps)
    app_id = f"1:{PROJECT_NUMBER}:web:{app_number:022x}"
    return {
        "name": f"projects/{project_id}/webApps/{app_id}",
        "appId": app_id,
        "displayName": display_name,
        "projectId": project_id,
        "webId": f"{app_number:036x}",
        "apiKeyId": "0b7c1f3e-2d4a-4f6b-8c9d-1e2f3a4b5c6d",
        "state": "ACTIVE",
        "platform": "WEB",
    }


def web_app_config(project_id: str, app_id: str) -> Json:
    # https://firebase.google.com/docs/reference/firebase-management/rest/v1beta1/projects.webApps/getConfig
    # (WebAppConfig; firebase apps:sdkconfig --json returns {fileName, fileContents,
    # sdkConfig}: firebase-tools lib/commands/apps-sdkconfig.js)
    return {
        "projectId": project_id,
        "appId": app_id,
        "apiKey": "rehearsal-web-api-key",
        "authDomain": f"{project_id}.firebaseapp.com",
        "storageBucket": f"{project_id}.firebasestorage.app",
        "messagingSenderId": PROJECT_NUMBER,
    }


def hosting_site(project_id: str, site_id: str, app_id: str | None, default: bool) -> Json:
    # https://firebase.google.com/docs/reference/hosting/rest/v1beta1/projects.sites#Site
    answer: Json = {
        "name": f"projects/{PROJECT_NUMBER}/sites/{site_id}",
        "defaultUrl": f"https://{site_id}.web.app",
        "type": "DEFAULT_SITE" if default else "USER_SITE",
    }
    if app_id:
        answer["appId"] = app_id
    return answer


def firebase_json_envelope(result: Any) -> Json:
    # firebase-tools lib/command.js: with --json, stdout is {"status": "success", "result": ...}
    return {"status": "success", "result": result}
