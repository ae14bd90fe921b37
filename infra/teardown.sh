#!/usr/bin/env bash
# Remove what infra/deploy.sh made in a project (docs/deploy.md, "Teardown"):
#
#   PROJECT=my-project [REGION=europe-west1] infra/teardown.sh [--yes] [--delete-secret]
#
# Deletes the scheduler job, the five functions (with their Eventarc triggers and
# subscriptions), both topics, the bucket and everything in it, the Firestore database
# and all its data, the service accounts and their project-level bindings, and stops
# the Hosting site. Keeps the GEMINI_API_KEY secret unless --delete-secret. Left in
# place, and said so: enabled APIs, the Firebase project, the registered web app and
# its sign-in settings, and the images Cloud Build pushed (Artifact Registry,
# gcf-artifacts). Asks before deleting anything unless --yes. Missing pieces are
# skipped, so it can run again after a partial teardown.
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
FUNCTIONS=(sweep_tasks dead_letter_task process_task submit_strategy task_status)
ROLES=(api worker recovery trigger scheduler builder)

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
fb() {
  local command=$1
  shift
  "${FIREBASE[@]}" "$command" "$@" --project="$PROJECT" --non-interactive
}

# Names (topics, bucket) from the same settings deploy.sh used.
values=$("$PYTHON" infra/deploy_env.py --project="$PROJECT") ||
  die "the settings refuse this configuration (see above)"
eval "$values"

sa_email() { printf 'tinkerbell-%s@%s.iam.gserviceaccount.com' "$1" "$PROJECT"; }

cat >&2 <<EOF
This deletes from project $PROJECT ($REGION):
  - scheduler job $SWEEP_JOB; functions ${FUNCTIONS[*]}
  - topics $TASKS_TOPIC and $DEAD_LETTER_TOPIC
  - bucket gs://$BUCKET with every upload and preview in it
  - the Firestore database $DATABASE with ALL its data (tasks, users' history)
  - service accounts tinkerbell-{${ROLES[*]// /,}} and their bindings
  - the Hosting site's content (the site stops serving)
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
  if exists gc functions describe "$name" --region="$REGION" --v2; then
    gc functions delete "$name" --region="$REGION"
  fi
done

log "Topics"
for topic in "$TASKS_TOPIC" "$DEAD_LETTER_TOPIC"; do
  if exists gc pubsub topics describe "$topic"; then
    gc pubsub topics delete "$topic"
  fi
done

log "Bucket"
if exists gc storage buckets describe "gs://$BUCKET"; then
  gc storage rm --recursive "gs://$BUCKET"
fi

log "Firestore database"
if exists gc firestore databases describe --database="$DATABASE"; then
  gc firestore databases delete --database="$DATABASE"
fi

log "Service accounts"
# Bindings first: a deleted account's bindings would linger as deleted:serviceAccount:...
policy=$(gc projects get-iam-policy "$PROJECT" --format=json)
for role_name in "${ROLES[@]}"; do
  email=$(sa_email "$role_name")
  member="serviceAccount:$email"
  roles=$(printf '%s' "$policy" | "$PYTHON" -c '
import json, sys
policy = json.load(sys.stdin)
print("\n".join(b["role"] for b in policy.get("bindings", []) if sys.argv[1] in b["members"]))
' "$member")
  for role in $roles; do
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
site=$(fb hosting:sites:list --json | "$PYTHON" -c '
import json, sys
sites = json.load(sys.stdin).get("result", {}).get("sites", [])
print(next((s["name"].rsplit("/", 1)[-1] for s in sites if s.get("type") == "DEFAULT_SITE"), ""))
' || true)
if [ -n "$site" ]; then
  fb hosting:disable --site="$site" --force >&2
fi

if [ "$delete_secret" = 1 ] && exists gc secrets describe "$SECRET"; then
  log "Secret"
  gc secrets delete "$SECRET"
fi

log "Done"
cat >&2 <<EOF
Left in place: the enabled APIs, the Firebase project with its web app and sign-in
settings, the Cloud Build images (Artifact Registry repository gcf-artifacts in
$REGION: gcloud artifacts repositories delete gcf-artifacts --location=$REGION)$(
  [ "$delete_secret" = 1 ] || printf ', and the secret %s' "$SECRET").
EOF
