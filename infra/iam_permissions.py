"""The permissions of the predefined roles infra/deploy.sh grants, and what needs which.

Only the permissions that matter to our operations are listed, from Google's role
reference (https://cloud.google.com/iam/docs/roles-permissions, one page per
service: datastore, storage, pubsub, secretmanager, firebaseauth, aiplatform, run,
logging, artifactregistry). A role missing here fails the IAM coverage test: add it
with its permissions from that reference, never a guess.
"""

from __future__ import annotations

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    # https://cloud.google.com/iam/docs/roles-permissions/datastore#datastore.user
    "roles/datastore.user": frozenset(
        {
            "datastore.databases.getMetadata",
            "datastore.entities.allocateIds",
            "datastore.entities.create",
            "datastore.entities.delete",
            "datastore.entities.get",
            "datastore.entities.list",
            "datastore.entities.update",
            "datastore.indexes.list",
            "datastore.namespaces.get",
            "datastore.namespaces.list",
        }
    ),
    # https://cloud.google.com/iam/docs/roles-permissions/storage#storage.objectUser
    "roles/storage.objectUser": frozenset(
        {
            "storage.objects.create",
            "storage.objects.delete",
            "storage.objects.get",
            "storage.objects.list",
            "storage.objects.restore",
            "storage.objects.update",
            "storage.multipartUploads.create",
            "storage.multipartUploads.abort",
            "storage.multipartUploads.list",
            "storage.multipartUploads.listParts",
        }
    ),
    # storage.objectViewer: read only.
    "roles/storage.objectViewer": frozenset({"storage.objects.get", "storage.objects.list"}),
    # storage.objectAdmin: objectUser's and the objects' IAM policies.
    "roles/storage.objectAdmin": frozenset(
        {
            "storage.objects.create",
            "storage.objects.delete",
            "storage.objects.get",
            "storage.objects.getIamPolicy",
            "storage.objects.list",
            "storage.objects.setIamPolicy",
            "storage.objects.update",
        }
    ),
    # https://cloud.google.com/iam/docs/roles-permissions/pubsub
    "roles/pubsub.publisher": frozenset({"pubsub.topics.publish"}),
    "roles/pubsub.subscriber": frozenset(
        {
            "pubsub.snapshots.seek",
            "pubsub.subscriptions.consume",
            "pubsub.topics.attachSubscription",
        }
    ),
    # https://cloud.google.com/iam/docs/roles-permissions/secretmanager
    "roles/secretmanager.secretAccessor": frozenset({"secretmanager.versions.access"}),
    # https://cloud.google.com/iam/docs/roles-permissions/firebaseauth
    "roles/firebaseauth.viewer": frozenset({"firebaseauth.configs.get", "firebaseauth.users.get"}),
    "roles/firebaseauth.admin": frozenset(
        {
            "firebaseauth.configs.create",
            "firebaseauth.configs.get",
            "firebaseauth.configs.getHashConfig",
            "firebaseauth.configs.getSecret",
            "firebaseauth.configs.update",
            "firebaseauth.users.create",
            "firebaseauth.users.createSession",
            "firebaseauth.users.delete",
            "firebaseauth.users.get",
            "firebaseauth.users.sendEmail",
            "firebaseauth.users.update",
        }
    ),
    # https://cloud.google.com/iam/docs/roles-permissions/aiplatform#aiplatform.user
    "roles/aiplatform.user": frozenset({"aiplatform.endpoints.predict", "aiplatform.models.get"}),
    # https://cloud.google.com/iam/docs/roles-permissions/run#run.invoker
    "roles/run.invoker": frozenset({"run.routes.invoke", "run.jobs.run"}),
    "roles/logging.logWriter": frozenset({"logging.logEntries.create"}),
    "roles/artifactregistry.writer": frozenset(
        {
            "artifactregistry.repositories.downloadArtifacts",
            "artifactregistry.repositories.uploadArtifacts",
        }
    ),
}

# What Gemini needs on each backend: Vertex AI is called as the worker's identity; the
# Developer API with the key (Secret Manager, below), which needs no IAM of its own.
GEMINI_BY_BACKEND: dict[str, tuple[str, str] | None] = {
    "vertex": ("aiplatform.endpoints.predict", "project"),
    "developer": None,
}
# A secret a function's deploy mounts (--set-secrets) is read by Cloud Run as the
# function's identity when an instance starts
# (https://cloud.google.com/run/docs/configuring/services/secrets#access-secret).
SECRET_MOUNT = "secretmanager.versions.access"  # noqa: S105 (a permission)

# Identities the platform uses, not our code: what each must be able to do, checked
# against the grants the same way (the rehearsal's functions and their triggers say
# which function each invokes).
PLATFORM_NEEDS: dict[str, str] = {
    "trigger": "run.routes.invoke",  # Eventarc's push to the two Pub/Sub functions
    "scheduler": "run.routes.invoke",  # Cloud Scheduler's call to the sweeper
}
# The build identity (https://cloud.google.com/functions/docs/securing/build-custom-sa):
# write the build's logs, push the image, read the uploaded source.
BUILDER_NEEDS: frozenset[tuple[str, str]] = frozenset(
    {
        ("logging.logEntries.create", "project"),
        ("artifactregistry.repositories.uploadArtifacts", "project"),
        ("storage.objects.get", "gcf-v2-buckets"),
    }
)
