#!/usr/bin/env bash
# The two identities Cloud Build runs as (docs/deploy.md, "Cloud Build"), made once by an
# Owner of the project:
#
#   PROJECT=my-project infra/build_accounts.sh
#
# tinkerbell-ci: cloudbuild.yaml (npm ci, pip install, lint, unit tests, the deploy
#   rehearsal). Third-party install scripts and our tests run as it, so it holds
#   nothing but the right to write the build's logs.
# tinkerbell-deployer: cloudbuild.deploy.yaml (infra/deploy.sh and nothing else). It
#   can grant project roles, but only the ones deploy.sh grants (an IAM condition on
#   iam.googleapis.com/modifiedGrantsByRole), so it cannot make itself or anyone Owner.
#   It may act as the seven runtime accounts (made here, with the right to act as each
#   granted on the account itself) and as no other account of the project; it can
#   manage the uploads bucket and the Gemini key's secret but read neither the users'
#   PDFs nor the key (a custom role, below, instead of storage.admin, secretmanager.admin
#   and firebase.admin, which hold storage.objects.get or secretmanager.versions.access).
# Safe to run again: it creates what is missing, re-applies the bindings and the custom
# role's permissions, and revokes the broader roles an earlier version granted. Run it
# again after infra/teardown.sh, which deletes the runtime accounts (and so the
# deployer's right to act as them).
set -euo pipefail

: "${PROJECT:?set PROJECT to the Google Cloud project id}"
CI_SA="tinkerbell-ci@$PROJECT.iam.gserviceaccount.com"
DEPLOYER_SA="tinkerbell-deployer@$PROJECT.iam.gserviceaccount.com"
DEPLOYER="serviceAccount:$DEPLOYER_SA"
# Every project-level role infra/deploy.sh grants (tests/infra/test_build_accounts.py
# keeps this list equal to deploy.sh's).
GRANTABLE_ROLES=(
  roles/datastore.user roles/firebaseauth.admin roles/logging.logWriter
  roles/artifactregistry.writer roles/storage.objectAdmin roles/aiplatform.user
)
# What deploy.sh does, by role (docs/deploy.md has the table with the reasons;
# infra/iam_permissions.py, DEPLOY_COMMANDS, what each of its commands needs).
DEPLOYER_ROLES=(
  roles/serviceusage.serviceUsageAdmin roles/iam.serviceAccountCreator
  roles/cloudfunctions.admin roles/run.admin roles/eventarc.admin roles/pubsub.admin
  roles/cloudscheduler.admin roles/datastore.owner roles/firebasehosting.admin
  roles/firebaserules.admin roles/logging.logWriter
)
# The custom role: what deploy.sh does to the bucket (create, describe, update its
# settings and labels, bind the runtime accounts), to the secret (describe, list its
# versions, bind the worker) and to Firebase (add it to the project, register the web
# app, set the sign-in providers; roles/firebasehosting.admin reads the project and its
# apps), and nothing of what the predefined roles add: no storage.objects.*, no secretmanager.versions.access or .add.
DEPLOYER_ROLE_ID=tinkerbellDeployer
DEPLOYER_PERMISSIONS=(
  storage.buckets.create storage.buckets.get storage.buckets.update
  storage.buckets.getIamPolicy storage.buckets.setIamPolicy
  secretmanager.secrets.get secretmanager.secrets.getIamPolicy
  secretmanager.secrets.setIamPolicy secretmanager.versions.list
  firebase.projects.update firebase.clients.create
  firebaseauth.configs.get firebaseauth.configs.update
)
# Granted by earlier versions of this script: project-wide actAs and service account
# admin, and roles that read every bucket's objects or every secret's value.
REVOKED_ROLES=(
  roles/iam.serviceAccountAdmin roles/iam.serviceAccountUser roles/storage.admin
  roles/secretmanager.admin roles/firebase.admin
)

cd "$(dirname "$0")/.."
GCLOUD_ERR=$(mktemp)
trap 'rm -f "$GCLOUD_ERR"' EXIT
# gc: gcloud on this project, waiting out a new project's "not yet" answers (a service
# account IAM does not know yet, an API just enabled).
# shellcheck source=infra/gcloud.sh
. infra/gcloud.sh
# The runtime accounts: RUNTIME_ACCOUNTS, sa_email, create_account.
# shellcheck source=infra/accounts.sh
. infra/accounts.sh
bind() { gc projects add-iam-policy-binding "$PROJECT" "$@" >/dev/null; }
joined() {
  local IFS=,
  printf '%s' "$*"
}

gc services enable cloudbuild.googleapis.com iam.googleapis.com \
  cloudresourcemanager.googleapis.com
for account in ci deployer; do
  if ! gc iam service-accounts describe "tinkerbell-$account@$PROJECT.iam.gserviceaccount.com" \
    >/dev/null 2>&1; then
    gc iam service-accounts create "tinkerbell-$account" \
      --display-name="Tinkerbell $account (Cloud Build)"
  fi
done

if gc iam roles describe "$DEPLOYER_ROLE_ID" --project="$PROJECT" >/dev/null 2>&1; then
  gc iam roles update "$DEPLOYER_ROLE_ID" --project="$PROJECT" \
    --permissions="$(joined "${DEPLOYER_PERMISSIONS[@]}")" >/dev/null
else
  gc iam roles create "$DEPLOYER_ROLE_ID" --project="$PROJECT" --stage=GA \
    --title="Tinkerbell deployer" \
    --description="infra/deploy.sh: the bucket, the secret and Firebase, without their data" \
    --permissions="$(joined "${DEPLOYER_PERMISSIONS[@]}")" >/dev/null
fi

bind --member="serviceAccount:$CI_SA" --role=roles/logging.logWriter --condition=None
for role in "${DEPLOYER_ROLES[@]}" "projects/$PROJECT/roles/$DEPLOYER_ROLE_ID"; do
  bind --member="$DEPLOYER" --role="$role" --condition=None
done
quoted=$(printf "'%s', " "${GRANTABLE_ROLES[@]}")
bind --member="$DEPLOYER" --role=roles/resourcemanager.projectIamAdmin \
  --condition="^;^title=tinkerbell-roles-only;description=Only the roles infra/deploy.sh grants;expression=api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', []).hasOnly([${quoted%, }])"
for role in "${REVOKED_ROLES[@]}"; do
  gc projects remove-iam-policy-binding "$PROJECT" --member="$DEPLOYER" --role="$role" \
    --condition=None >/dev/null 2>&1 || grep -qi "not found" "$GCLOUD_ERR" ||
    { cat "$GCLOUD_ERR" >&2 && exit 1; }
done

# The runtime accounts, and the deployer's right to deploy functions and jobs that run
# as them (iam.serviceAccounts.actAs), each on its account.
for role in "${RUNTIME_ACCOUNTS[@]}"; do
  create_account "$role"
  gc iam service-accounts add-iam-policy-binding "$(sa_email "$role")" --member="$DEPLOYER" \
    --role=roles/iam.serviceAccountUser >/dev/null
done

printf 'tinkerbell-ci and tinkerbell-deployer are ready in %s.\n' "$PROJECT" >&2
