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
# Safe to run again: it creates what is missing and re-applies the bindings.
set -euo pipefail

: "${PROJECT:?set PROJECT to the Google Cloud project id}"
CI_SA="tinkerbell-ci@$PROJECT.iam.gserviceaccount.com"
DEPLOYER_SA="tinkerbell-deployer@$PROJECT.iam.gserviceaccount.com"
# Every project-level role infra/deploy.sh grants (tests/infra/test_build_accounts.py
# keeps this list equal to deploy.sh's).
GRANTABLE_ROLES=(
  roles/datastore.user roles/firebaseauth.admin roles/logging.logWriter
  roles/artifactregistry.writer roles/storage.objectAdmin roles/aiplatform.user
)
# What deploy.sh does, by role (docs/deploy.md has the table with the reasons).
DEPLOYER_ROLES=(
  roles/serviceusage.serviceUsageAdmin roles/iam.serviceAccountAdmin
  roles/iam.serviceAccountUser roles/cloudfunctions.admin roles/run.admin
  roles/eventarc.admin roles/pubsub.admin roles/storage.admin roles/secretmanager.admin
  roles/cloudscheduler.admin roles/datastore.owner roles/firebase.admin
  roles/logging.logWriter
)

cd "$(dirname "$0")/.."
GCLOUD_ERR=$(mktemp)
trap 'rm -f "$GCLOUD_ERR"' EXIT
# gc: gcloud on this project, waiting out a new project's "not yet" answers (a service
# account IAM does not know yet, an API just enabled).
# shellcheck source=infra/gcloud.sh
. infra/gcloud.sh
bind() { gc projects add-iam-policy-binding "$PROJECT" "$@" >/dev/null; }

gc services enable cloudbuild.googleapis.com iam.googleapis.com \
  cloudresourcemanager.googleapis.com
for account in ci deployer; do
  if ! gc iam service-accounts describe "tinkerbell-$account@$PROJECT.iam.gserviceaccount.com" \
    >/dev/null 2>&1; then
    gc iam service-accounts create "tinkerbell-$account" \
      --display-name="Tinkerbell $account (Cloud Build)"
  fi
done

bind --member="serviceAccount:$CI_SA" --role=roles/logging.logWriter --condition=None
for role in "${DEPLOYER_ROLES[@]}"; do
  bind --member="serviceAccount:$DEPLOYER_SA" --role="$role" --condition=None
done
quoted=$(printf "'%s', " "${GRANTABLE_ROLES[@]}")
bind --member="serviceAccount:$DEPLOYER_SA" --role=roles/resourcemanager.projectIamAdmin \
  --condition="^;^title=tinkerbell-roles-only;description=Only the roles infra/deploy.sh grants;expression=api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', []).hasOnly([${quoted%, }])"

printf 'tinkerbell-ci and tinkerbell-deployer are ready in %s.\n' "$PROJECT" >&2
