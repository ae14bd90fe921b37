#!/usr/bin/env bash
# Remove what infra/deploy.sh made in a project (docs/deploy.md, "Teardown"):
#
#   PROJECT=my-project [REGION=europe-west1] infra/teardown.sh [--yes] [--delete-secret]
#
# Deletes only what deploy.sh made, as the project itself records it (deploy.sh labels
# what it creates app=tinkerbell, and keeps a record of the rest as labels on the
# bucket it created): the scheduler job, the six functions (with their Eventarc
# triggers and subscriptions), the labelled subscriptions (the webhook dead letters'),
# topics and bucket (with everything in it),
# the Firestore database with all its data and the Hosting site's content only if
# deploy.sh created them, the service accounts and their project-level bindings.
# Nothing is found from the current environment's settings, so other overrides than
# deploy's cannot point it at something else. Keeps the GEMINI_API_KEY secret unless
# --delete-secret. Left in place, and said so: enabled APIs, the Firebase project, the
# registered web app, its sign-in settings and its (anonymous) users, and the images
# Cloud Build pushed (Artifact Registry, gcf-artifacts). Asks before deleting anything
# unless --yes. Missing pieces are skipped, so it can run again after a partial teardown.
set -euo pipefail

usage() {
  sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
yes=0
delete_secret=0
for arg in "$@"; do
  case "$arg" in
    --yes | -y) yes=1 ;;
    --delete-secret) delete_secret=1 ;;
    *) usage ;;
  esac
done

: "${PROJECT:?set PROJECT to the Google Cloud project id}"
REGION=${REGION:-europe-west1}
PYTHON=${PYTHON:-python3}
SECRET=GEMINI_API_KEY
SWEEP_JOB=tinkerbell-sweep
DATABASE="(default)"
FUNCTIONS=(sweep_tasks deliver_webhook dead_letter_task process_task submit_strategy task_status)
# As infra/deploy.sh labels and records what it creates.
LABEL_KEY=app
LABEL_VALUE=tinkerbell
RECORD_DATABASE=tinkerbell-created-database
RECORD_SITE=tinkerbell-created-site

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

log() { printf '\n==> %s\n' "$*" >&2; }
die() {
  printf '\ninfra/teardown.sh: %s\n' "$*" >&2
  exit 1
}
gc() { gcloud --project="$PROJECT" --quiet "$@"; }
exists() { "$@" >/dev/null 2>&1; }
if [ -n "${FIREBASE_CLI:-}" ]; then
  read -r -a FIREBASE <<<"$FIREBASE_CLI"
elif [ -x node_modules/.bin/firebase ]; then
  FIREBASE=(node_modules/.bin/firebase)
else
  FIREBASE=(npx --yes firebase-tools@15.34.2)
fi
export NO_UPDATE_NOTIFIER=1
# As in deploy.sh: bill this project, not the quota project of the ADC file.
fb() {
  local command=$1
  shift
  GOOGLE_CLOUD_QUOTA_PROJECT="$PROJECT" \
    "${FIREBASE[@]}" "$command" "$@" --project="$PROJECT" --non-interactive
}

# The runtime accounts (RUNTIME_ACCOUNTS) and their addresses (sa_email), as deploy.sh
# makes them.
# shellcheck source=infra/accounts.sh
. infra/accounts.sh
# Reads a JSON object on stdin; prints its labels' value for KEY (empty if none).
label_of() {
  "$PYTHON" -c '
import json, sys
print((json.load(sys.stdin).get("labels") or {}).get(sys.argv[1], ""))' "$1"
}
ours="labels.$LABEL_KEY=$LABEL_VALUE"

# The names of what carries our label. An API that was never enabled holds nothing of
# ours (gcloud answers SERVICE_DISABLED); any other failure stops the teardown.
list_ours() {
  local names status=0 errors
  errors=$(mktemp)
  names=$(gc "$@" --filter="$ours" --format='value(name)' 2>"$errors") || status=$?
  if [ "$status" != 0 ]; then
    if ! grep -q -e SERVICE_DISABLED -e 'has not been used in project' "$errors"; then
      cat "$errors" >&2
      rm -f "$errors"
      exit "$status"
    fi
    names=""
  fi
  rm -f "$errors"
  printf '%s' "$names"
}

# What deploy.sh made, read back from the project.
BUCKETS=$(list_ours storage buckets list)
TOPICS=$(list_ours pubsub topics list)
SUBSCRIPTIONS=$(list_ours pubsub subscriptions list)
database_created=""
site_created=""
for bucket in $BUCKETS; do
  description=$(gc storage buckets describe "gs://$bucket" --format=json)
  [ "$(label_of "$RECORD_DATABASE" <<<"$description")" = true ] && database_created=1
  site=$(label_of "$RECORD_SITE" <<<"$description")
  [ -n "$site" ] && site_created=$site
done
database_line="  - the Firestore database $DATABASE with ALL its data (tasks, users' history)"
[ -n "$database_created" ] ||
  database_line="  (keeps the Firestore database $DATABASE: deploy.sh did not create it)"
site_line="  - the Hosting site $site_created's content (the site stops serving)"
[ -n "$site_created" ] ||
  site_line="  (keeps the Hosting site: deploy.sh did not create it)"

cat >&2 <<EOF
This deletes from project $PROJECT ($REGION):
  - scheduler job $SWEEP_JOB; functions ${FUNCTIONS[*]} (those labelled $LABEL_KEY=$LABEL_VALUE)
  - subscriptions labelled $LABEL_KEY=$LABEL_VALUE, with the messages they keep: $(echo "${SUBSCRIPTIONS:-none}" | sed 's#projects/[^/]*/subscriptions/##' | tr '\n' ' ')
  - topics labelled $LABEL_KEY=$LABEL_VALUE: $(echo "${TOPICS:-none}" | sed 's#projects/[^/]*/topics/##' | tr '\n' ' ')
  - buckets labelled $LABEL_KEY=$LABEL_VALUE, with every upload and preview in them: ${BUCKETS:-none}
$database_line
  - service accounts tinkerbell-{${RUNTIME_ACCOUNTS[*]// /,}} and their bindings
$site_line
$([ "$delete_secret" = 1 ] && echo "  - the secret $SECRET" || echo "It keeps the secret $SECRET (--delete-secret deletes it).")
EOF
if [ "$yes" != 1 ]; then
  [ -t 0 ] || die "not a terminal: pass --yes to delete without asking"
  read -r -p "Type the project id to confirm: " answer
  [ "$answer" = "$PROJECT" ] || die "not confirmed; nothing deleted"
fi

log "Scheduler job and functions"
if exists gc scheduler jobs describe "$SWEEP_JOB" --location="$REGION"; then
  gc scheduler jobs delete "$SWEEP_JOB" --location="$REGION"
fi
for name in "${FUNCTIONS[@]}"; do
  exists gc functions describe "$name" --region="$REGION" --v2 || continue
  label=$(gc functions describe "$name" --region="$REGION" --v2 --format=json | label_of "$LABEL_KEY")
  if [ "$label" = "$LABEL_VALUE" ]; then
    gc functions delete "$name" --region="$REGION"
  else
    printf 'kept the function %s: not labelled %s=%s (run deploy.sh once to label it)\n' \
      "$name" "$LABEL_KEY" "$LABEL_VALUE" >&2
  fi
done

log "Subscriptions and topics"
# The subscriptions first: a topic's deletion leaves them, detached, in place.
for subscription in $SUBSCRIPTIONS; do
  gc pubsub subscriptions delete "$subscription"
done
for topic in $TOPICS; do
  gc pubsub topics delete "$topic"
done

log "Firestore database"
if [ -n "$database_created" ] && exists gc firestore databases describe --database="$DATABASE"; then
  gc firestore databases delete --database="$DATABASE"
else
  printf 'kept the Firestore database %s: deploy.sh did not create it\n' "$DATABASE" >&2
fi

log "Service accounts"
# Bindings first: a deleted account's bindings would linger as deleted:serviceAccount:...
policy=$(gc projects get-iam-policy "$PROJECT" --format=json)
for role_name in "${RUNTIME_ACCOUNTS[@]}"; do
  email=$(sa_email "$role_name")
  member="serviceAccount:$email"
  roles=$(printf '%s' "$policy" | "$PYTHON" -c '
import json, sys
policy = json.load(sys.stdin)
print("\n".join(b["role"] for b in policy.get("bindings", []) if sys.argv[1] in b["members"]))
' "$member")
  for role in $roles; do
    # --all: also the conditional ones (the builder's storage.objectAdmin).
    gc projects remove-iam-policy-binding "$PROJECT" --member="$member" --role="$role" \
      --all >/dev/null
  done
  if [ "$role_name" = worker ] && [ "$delete_secret" != 1 ] && exists gc secrets describe "$SECRET"; then
    gc secrets remove-iam-policy-binding "$SECRET" --member="$member" \
      --role=roles/secretmanager.secretAccessor >/dev/null 2>&1 || true
  fi
  if exists gc iam service-accounts describe "$email"; then
    gc iam service-accounts delete "$email"
  fi
done

log "Hosting"
if [ -n "$site_created" ]; then
  fb hosting:disable --site="$site_created" --force >&2
else
  printf 'kept the Hosting site serving: deploy.sh did not create it\n' >&2
fi

if [ "$delete_secret" = 1 ] && exists gc secrets describe "$SECRET"; then
  log "Secret"
  gc secrets delete "$SECRET"
fi

# Last: the bucket holds the deploy record, so a teardown stopped half-way can run again.
log "Buckets"
for bucket in $BUCKETS; do
  # No soft delete on buckets deploy.sh made: the objects are gone, not restorable.
  gc storage rm --recursive "gs://$bucket"
done

log "Done"
cat >&2 <<EOF
Left in place: the enabled APIs, the Firebase project with its web app, its sign-in
settings and its users (the web app's anonymous Authentication users: delete them in the
Firebase console, Authentication -> Users, if you like), the Cloud Build images (Artifact Registry repository gcf-artifacts in
$REGION: gcloud artifacts repositories delete gcf-artifacts --location=$REGION)$(
  [ "$delete_secret" = 1 ] || printf ', and the secret %s' "$SECRET").
EOF
