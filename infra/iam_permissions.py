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
    "trigger": "run.routes.invoke",  # Eventarc's push to the three Pub/Sub functions
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

# ------------------------------------------------------------------------ the deployer
#
# tinkerbell-deployer (infra/build_accounts.sh) runs infra/deploy.sh in Cloud Build.
# Its roles, from the same reference, listed only as far as deploy.sh's commands use
# them (cloudfunctions.admin alone has 255 permissions) and for every permission they
# hold that reaches the users' data or acts as another identity: none of these holds a
# storage.objects.*, secretmanager.versions.access or iam.serviceAccounts.actAs
# permission, except serviceAccountUser, which build_accounts.sh grants on each runtime
# account only. (roles/firebase.admin, which deploy.sh's Firebase steps used to need,
# holds storage.objects.get and datastore.entities.* on the whole project: a custom role
# replaces it, with storage.admin and secretmanager.admin.)
DEPLOYER_ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    # https://cloud.google.com/iam/docs/roles-permissions/serviceusage
    "roles/serviceusage.serviceUsageAdmin": frozenset(
        {"serviceusage.services.enable", "serviceusage.services.get", "serviceusage.services.list"}
    ),
    # https://cloud.google.com/iam/docs/roles-permissions/iam
    "roles/iam.serviceAccountCreator": frozenset(
        {"iam.serviceAccounts.create", "iam.serviceAccounts.get", "iam.serviceAccounts.list"}
    ),
    "roles/iam.serviceAccountUser": frozenset(
        {"iam.serviceAccounts.actAs", "iam.serviceAccounts.get", "iam.serviceAccounts.list"}
    ),
    # https://cloud.google.com/iam/docs/roles-permissions/resourcemanager
    "roles/resourcemanager.projectIamAdmin": frozenset(
        {
            "resourcemanager.projects.get",
            "resourcemanager.projects.getIamPolicy",
            "resourcemanager.projects.setIamPolicy",
        }
    ),
    # https://cloud.google.com/iam/docs/roles-permissions/cloudfunctions
    "roles/cloudfunctions.admin": frozenset(
        {
            "cloudfunctions.functions.create",
            "cloudfunctions.functions.get",
            "cloudfunctions.functions.sourceCodeSet",
            "cloudfunctions.functions.update",
            "eventarc.triggers.create",
            "eventarc.triggers.get",
            "resourcemanager.projects.get",
            "run.services.getIamPolicy",
            "run.services.setIamPolicy",
        }
    ),
    # https://cloud.google.com/iam/docs/roles-permissions/run
    "roles/run.admin": frozenset({"run.services.getIamPolicy", "run.services.setIamPolicy"}),
    # https://cloud.google.com/iam/docs/roles-permissions/eventarc
    "roles/eventarc.admin": frozenset({"eventarc.triggers.create", "eventarc.triggers.get"}),
    # https://cloud.google.com/iam/docs/roles-permissions/pubsub
    "roles/pubsub.admin": frozenset(
        {
            "pubsub.subscriptions.create",
            "pubsub.subscriptions.get",
            "pubsub.subscriptions.getIamPolicy",
            "pubsub.subscriptions.setIamPolicy",
            "pubsub.subscriptions.update",
            "pubsub.topics.attachSubscription",
            "pubsub.topics.create",
            "pubsub.topics.get",
            "pubsub.topics.getIamPolicy",
            "pubsub.topics.setIamPolicy",
        }
    ),
    # https://cloud.google.com/iam/docs/roles-permissions/cloudscheduler
    "roles/cloudscheduler.admin": frozenset(
        {"cloudscheduler.jobs.create", "cloudscheduler.jobs.get", "cloudscheduler.jobs.update"}
    ),
    # https://cloud.google.com/iam/docs/roles-permissions/datastore (datastore.owner also
    # reads and writes every document: datastore.entities.*)
    "roles/datastore.owner": frozenset(
        {
            "datastore.databases.create",
            "datastore.databases.get",
            "datastore.databases.getMetadata",
            "datastore.entities.get",
            "datastore.entities.list",
            "datastore.indexes.create",
            "datastore.indexes.get",
            "datastore.indexes.list",
            "datastore.indexes.update",
        }
    ),
    # https://cloud.google.com/iam/docs/roles-permissions/firebasehosting
    "roles/firebasehosting.admin": frozenset(
        {
            "firebase.clients.get",
            "firebase.clients.list",
            "firebase.projects.get",
            "firebasehosting.sites.create",
            "firebasehosting.sites.get",
            "firebasehosting.sites.list",
            "firebasehosting.sites.update",
        }
    ),
    # https://cloud.google.com/iam/docs/roles-permissions/firebaserules
    "roles/firebaserules.admin": frozenset(
        {
            "firebaserules.releases.create",
            "firebaserules.releases.get",
            "firebaserules.releases.list",
            "firebaserules.releases.update",
            "firebaserules.rulesets.create",
        }
    ),
    "roles/logging.logWriter": ROLE_PERMISSIONS["roles/logging.logWriter"],
    # What an earlier build_accounts.sh granted instead (it revokes them now), listed so
    # that the audit says what each reaches.
    "roles/iam.serviceAccountAdmin": frozenset(
        {
            "iam.serviceAccounts.create",
            "iam.serviceAccounts.get",
            "iam.serviceAccounts.getIamPolicy",
            "iam.serviceAccounts.setIamPolicy",
        }
    ),
    "roles/storage.admin": frozenset(
        {
            "storage.buckets.create",
            "storage.buckets.get",
            "storage.buckets.getIamPolicy",
            "storage.buckets.setIamPolicy",
            "storage.buckets.update",
            "storage.objects.delete",
            "storage.objects.get",
            "storage.objects.list",
        }
    ),
    "roles/secretmanager.admin": frozenset(
        {
            "secretmanager.secrets.get",
            "secretmanager.secrets.getIamPolicy",
            "secretmanager.secrets.setIamPolicy",
            "secretmanager.versions.access",
            "secretmanager.versions.add",
            "secretmanager.versions.list",
        }
    ),
    # https://cloud.google.com/iam/docs/roles-permissions/firebase#firebase.admin
    "roles/firebase.admin": frozenset(
        {
            "datastore.entities.get",
            "datastore.entities.list",
            "firebase.clients.create",
            "firebase.clients.get",
            "firebase.clients.list",
            "firebase.projects.get",
            "firebase.projects.update",
            "firebaseauth.configs.get",
            "firebaseauth.configs.update",
            "firebaseauth.users.get",
            "firebasehosting.sites.create",
            "firebasehosting.sites.list",
            "firebasehosting.sites.update",
            "firebaserules.releases.create",
            "firebaserules.releases.list",
            "firebaserules.releases.update",
            "firebaserules.rulesets.create",
            "storage.buckets.get",
            "storage.objects.get",
            "storage.objects.list",
        }
    ),
}
# What the deployer needs besides its commands: Cloud Build writes the build's log as it.
DEPLOYER_PLATFORM_NEEDS: frozenset[str] = frozenset({"logging.logEntries.create"})

# What each command infra/deploy.sh runs needs (gcloud by command path, firebase-tools
# by command and deploy target), from each API method's reference page ("IAM
# Permissions"), and for Firebase from https://firebase.google.com/docs/projects/iam/permissions.
# A command missing here fails test_build_accounts.py.
DEPLOY_COMMANDS: dict[str, tuple[str, ...]] = {
    "gcloud.services.list": ("serviceusage.services.list",),
    "gcloud.services.enable": ("serviceusage.services.enable",),
    # services.generateServiceIdentity's reference names no permission;
    # roles/serviceusage.serviceUsageAdmin is what Google's guides use for it.
    "gcloud.beta.services.identity.create": (),
    "gcloud.projects.describe": ("resourcemanager.projects.get",),
    "gcloud.projects.add-iam-policy-binding": (
        "resourcemanager.projects.getIamPolicy",
        "resourcemanager.projects.setIamPolicy",
    ),
    "gcloud.secrets.describe": ("secretmanager.secrets.get",),
    "gcloud.secrets.versions.list": ("secretmanager.versions.list",),
    "gcloud.secrets.add-iam-policy-binding": (
        "secretmanager.secrets.getIamPolicy",
        "secretmanager.secrets.setIamPolicy",
    ),
    "gcloud.pubsub.topics.describe": ("pubsub.topics.get",),
    "gcloud.pubsub.topics.create": ("pubsub.topics.create",),
    "gcloud.pubsub.topics.add-iam-policy-binding": (
        "pubsub.topics.getIamPolicy",
        "pubsub.topics.setIamPolicy",
    ),
    "gcloud.pubsub.subscriptions.describe": ("pubsub.subscriptions.get",),
    # The webhook dead letters' pull subscription: made in the project, on the topic.
    "gcloud.pubsub.subscriptions.create": (
        "pubsub.subscriptions.create",
        "pubsub.topics.attachSubscription",
    ),
    "gcloud.pubsub.subscriptions.update": ("pubsub.subscriptions.update",),
    "gcloud.pubsub.subscriptions.add-iam-policy-binding": (
        "pubsub.subscriptions.getIamPolicy",
        "pubsub.subscriptions.setIamPolicy",
    ),
    # The bucket: its metadata and policy, never its objects.
    "gcloud.storage.buckets.describe": ("storage.buckets.get",),
    "gcloud.storage.buckets.create": ("storage.buckets.create",),
    "gcloud.storage.buckets.update": ("storage.buckets.get", "storage.buckets.update"),
    "gcloud.storage.buckets.add-iam-policy-binding": (
        "storage.buckets.getIamPolicy",
        "storage.buckets.setIamPolicy",
    ),
    "gcloud.firestore.databases.describe": ("datastore.databases.getMetadata",),
    "gcloud.firestore.databases.create": ("datastore.databases.create",),
    "gcloud.firestore.indexes.fields.describe": ("datastore.indexes.get",),
    "gcloud.firestore.indexes.composite.list": ("datastore.indexes.list",),
    "gcloud.firestore.fields.ttls.update": ("datastore.indexes.update",),
    "gcloud.iam.service-accounts.describe": ("iam.serviceAccounts.get",),
    "gcloud.iam.service-accounts.create": ("iam.serviceAccounts.create",),
    # And actAs on every account the flags name (ACCOUNT_FLAGS).
    "gcloud.functions.deploy": (
        "cloudfunctions.functions.create",
        "cloudfunctions.functions.get",
        "cloudfunctions.functions.sourceCodeSet",
        "cloudfunctions.functions.update",
    ),
    "gcloud.functions.describe": ("cloudfunctions.functions.get",),
    "gcloud.functions.add-invoker-policy-binding": (
        "run.services.getIamPolicy",
        "run.services.setIamPolicy",
    ),
    "gcloud.eventarc.triggers.describe": ("eventarc.triggers.get",),
    "gcloud.scheduler.jobs.describe": ("cloudscheduler.jobs.get",),
    "gcloud.scheduler.jobs.create.http": ("cloudscheduler.jobs.create",),
    "gcloud.scheduler.jobs.update.http": ("cloudscheduler.jobs.get", "cloudscheduler.jobs.update"),
    "firebase projects:list": ("firebase.projects.get",),
    "firebase projects:addfirebase": (
        "firebase.projects.update",
        "resourcemanager.projects.get",
        "serviceusage.services.enable",
        "serviceusage.services.get",
    ),
    "firebase apps:list": ("firebase.clients.list",),
    # Non-interactive, it also makes the default Hosting site.
    "firebase apps:create": ("firebase.clients.create", "firebasehosting.sites.create"),
    "firebase apps:sdkconfig": ("firebase.clients.get",),
    "firebase hosting:sites:list": ("firebasehosting.sites.list",),
    "firebase hosting:sites:create": ("firebasehosting.sites.create",),
    "firebase deploy firestore:rules": (
        "firebaserules.releases.create",
        "firebaserules.releases.list",
        "firebaserules.releases.update",
        "firebaserules.rulesets.create",
    ),
    "firebase deploy firestore:indexes": (
        "datastore.indexes.create",
        "datastore.indexes.list",
        "datastore.indexes.update",
    ),
    "firebase deploy auth": ("firebaseauth.configs.get", "firebaseauth.configs.update"),
    "firebase deploy hosting": ("firebasehosting.sites.update",),
    # What it runs locally (node web/build.mjs) needs nothing.
    "node web/build.mjs": (),
}
# Flags that make a command run something as a service account: the caller needs
# iam.serviceAccounts.actAs on it (functions deploy: runtime, trigger and build
# identities; a scheduler job's OIDC identity).
ACCOUNT_FLAGS = (
    "--service-account",
    "--trigger-service-account",
    "--build-service-account",
    "--oidc-service-account-email",
)
# Flags that need more than their command: a public function's allUsers invoker.
FLAG_NEEDS: dict[str, tuple[str, ...]] = {
    "--allow-unauthenticated": ("run.services.getIamPolicy", "run.services.setIamPolicy"),
    "--trigger-topic": ("eventarc.triggers.create",),
}
