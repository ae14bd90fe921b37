#!/usr/bin/env bash
# Deploy Tinkerbell to a Google Cloud project with billing, from nothing to a working
# system (docs/deploy.md):
#
#   PROJECT=my-project [REGION=europe-west1] [FIRESTORE_LOCATION=eur3] infra/deploy.sh
#
# Safe to run again, also after a partial failure: it creates only what is missing,
# updates the rest in place, and a second run creates nothing. Every value the functions
# read comes from shared/settings.py and the operator's overrides in this shell's
# environment (e.g. GEMINI_TEXT_MODEL=..., LOG_LEVEL=DEBUG), through infra/deploy_env.py;
# they reach the functions in one env file (--env-vars-file replaces the whole
# environment, so a run never inherits a previous run's variables).
#
# stdout carries only machine-readable lines for the next tools (make smoke):
#   GOOGLE_CLOUD_PROJECT=... SUBMIT_URL=... STATUS_URL=... WEB_URL=... FIREBASE_API_KEY=...
# Progress and the tools' own output go to stderr.
#
# Needs: gcloud (authenticated, or a Cloud Build service account; with Vertex AI its beta
# commands), python3 with pydantic-settings (pip install -r requirements.txt, or the pins
# of pydantic and pydantic-settings alone), Node >= 20 with node_modules (npm ci) for the
# web build and firebase-tools.
#
# Gemini (docs/deploy.md, "Gemini: Developer API or Vertex AI"): by default the worker
# calls the Gemini Developer API with the key in Secret Manager (GEMINI_API_KEY), never
# here. With GEMINI_BACKEND=vertex it calls Vertex AI as its own service account: no
# secret; the script enables aiplatform.googleapis.com, lets the worker call models
# (roles/aiplatform.user) and lets the Vertex AI service agent read the bucket's PDFs.
set -euo pipefail

: "${PROJECT:?set PROJECT to the Google Cloud project id}"
REGION=${REGION:-europe-west1}
case "$REGION" in
  europe-*) default_firestore_location=eur3 ;;
  us-*) default_firestore_location=nam5 ;;
  *) default_firestore_location=$REGION ;;
esac
# Permanent once created: Firestore cannot move a database.
FIRESTORE_LOCATION=${FIRESTORE_LOCATION:-$default_firestore_location}
WEB_APP_NAME=${WEB_APP_NAME:-Tinkerbell web}
# How long to wait for Firestore's composite indexes before deploying the functions.
INDEX_WAIT_S=${INDEX_WAIT_S:-1200}
PYTHON=${PYTHON:-python3}
NODE=${NODE:-node}
# A new project answers some calls with "not yet" for a few minutes (infra/gcloud.sh):
# DEPLOY_RETRY_PAUSE_S (15) before the first retry, growing each time, at most 60 s;
# DEPLOY_RETRY_ATTEMPTS (10) tries in all.

RUNTIME=python311
SECRET=GEMINI_API_KEY
SWEEP_JOB=tinkerbell-sweep
SWEEP_SCHEDULE="*/5 * * * *"
# Webhook deliveries every retry failed for are kept here for an operator to read
# (`gcloud pubsub subscriptions pull`): a pull subscription on the webhook dead-letter
# topic, named after it, keeping each message 7 days and never expiring for want of use.
WEBHOOK_INSPECT_SUFFIX=-inspect
WEBHOOK_INSPECT_RETENTION=7d
DATABASE="(default)"
# What deploy.sh creates carries this label; teardown.sh deletes only what carries it.
LABEL_KEY=app
LABEL_VALUE=tinkerbell
# The deploy record: labels on the bucket deploy.sh created, saying which of the
# resources that take no label of ours it created (teardown.sh reads them back).
RECORD_DATABASE=tinkerbell-created-database
RECORD_SITE=tinkerbell-created-site
# Every API this script (and what it deploys) uses; the Gemini backend adds its own below.
APIS=(
  artifactregistry.googleapis.com cloudbuild.googleapis.com cloudfunctions.googleapis.com
  cloudresourcemanager.googleapis.com cloudscheduler.googleapis.com eventarc.googleapis.com
  firebase.googleapis.com firebasehosting.googleapis.com firebaserules.googleapis.com
  firestore.googleapis.com iam.googleapis.com iamcredentials.googleapis.com
  identitytoolkit.googleapis.com logging.googleapis.com pubsub.googleapis.com
  run.googleapis.com securetoken.googleapis.com storage.googleapis.com
)
# Service agents made as soon as their APIs are on, so that their roles have propagated
# by the time the functions' triggers need them (Eventarc provisions its agent lazily,
# on first use: https://cloud.google.com/eventarc/docs/access-control, "Eventarc
# service agent").
AGENT_SERVICES=(eventarc.googleapis.com pubsub.googleapis.com)

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

log() { printf '\n==> %s\n' "$*" >&2; }
die() {
  printf '\ninfra/deploy.sh: %s\n' "$*" >&2
  exit 1
}
# gc: gcloud on this project, waiting out a new project's "not yet" answers.
GCLOUD_ERR="$work/gcloud.err"
# shellcheck source=infra/gcloud.sh
. infra/gcloud.sh
# One identity per role (docs/deploy.md, "Service accounts"): sa_email, create_account.
# shellcheck source=infra/accounts.sh
. infra/accounts.sh
API_SA=$(sa_email api)             # submit_strategy, task_status (public HTTP, no secret)
WORKER_SA=$(sa_email worker)       # process_task (the only one that reads the key)
RECOVERY_SA=$(sa_email recovery)   # dead_letter_task, sweep_tasks
WEBHOOKS_SA=$(sa_email webhooks)   # deliver_webhook (Firestore and its dead letters only)
TRIGGER_SA=$(sa_email trigger)     # Eventarc's push identity: invokes the three Pub/Sub functions
SCHEDULER_SA=$(sa_email scheduler) # Cloud Scheduler's identity: invokes sweep_tasks
BUILDER_SA=$(sa_email builder)     # Cloud Build, when it builds the functions' images
# True when the resource exists (a describe that fails for any reason counts as
# missing: the create that follows then fails loudly if it was something else).
exists() { "$@" >/dev/null 2>&1; }
# An IAM binding (gcloud prints the whole policy: not needed).
bind() { "$@" >/dev/null; }

# firebase-tools: the pinned copy in node_modules (npm ci), unless FIREBASE_CLI says otherwise.
if [ -n "${FIREBASE_CLI:-}" ]; then
  read -r -a FIREBASE <<<"$FIREBASE_CLI"
elif [ -x node_modules/.bin/firebase ]; then
  FIREBASE=(node_modules/.bin/firebase)
else
  FIREBASE=(npx --yes firebase-tools@15.34.2)
fi
export NO_UPDATE_NOTIFIER=1 # firebase-tools' update notice, never mixed into --json output
# With application-default credentials, firebase-tools bills the ADC file's quota
# project unless GOOGLE_CLOUD_QUOTA_PROJECT names another: it sends that as
# x-goog-user-project on every request (firebase-tools 15.34 lib/apiv2.js,
# Client.addRequestHeaders). Bill this project, which has the Firebase APIs on.
# Its debug log goes to $work (FIREBASE_DEBUG_PATH, lib/logger.js resolveLogTarget),
# never into the repo.
FIREBASE_LOG="$work/firebase-debug.log"
FIREBASE_OUT="$work/firebase.out"
fb_once() {
  GOOGLE_CLOUD_QUOTA_PROJECT="$PROJECT" FIREBASE_DEBUG_PATH="$FIREBASE_LOG" \
    "${FIREBASE[@]}" "$@" --project="$PROJECT" --non-interactive
}
# With --json, stdout is one JSON document: only the last try's is passed on.
fb_json_once() { fb_once "$@" >"$FIREBASE_OUT"; }
# firebase-tools on this project, waiting out a new project's "not yet" answers as gc
# does (infra/gcloud.sh). A just-enabled API's SERVICE_DISABLED is often only in what
# firebase-tools keeps aside: a command that wraps the error (projects:list: "Failed to
# list Firebase projects. See firebase-debug.log") prints the API's answer in its debug
# log alone, and with --json nothing goes to stderr but the message goes to stdout.
fb() {
  local status=0
  case " $* " in
    *" --json "*)
      NOT_YET_FILES="$FIREBASE_LOG $FIREBASE_OUT" \
        retry_not_yet "firebase $1" fb_json_once "$@" || status=$?
      cat "$FIREBASE_OUT"
      return "$status"
      ;;
  esac
  NOT_YET_FILES=$FIREBASE_LOG retry_not_yet "firebase $1" fb_once "$@"
}
# Reads firebase --json output on stdin; prints one field of the result.
#   json_field PATH                     e.g. result.sdkConfig.apiKey
#   json_field LIST_PATH KEY VALUE FIELD  FIELD of the first item of the list whose KEY is VALUE
json_field() {
  "$PYTHON" -c '
import json, sys

def walk(node, path):
    for key in filter(None, path.split(".")):
        node = node.get(key) if isinstance(node, dict) else None
    return node

def firebase_json(text):
    # The JSON document is the output; skip anything printed before it.
    for start in [i for i, c in enumerate(text) if c == "{" and (i == 0 or text[i - 1] == "\n")]:
        try:
            return json.JSONDecoder().raw_decode(text, start)[0]
        except ValueError:
            continue
    sys.exit("not the JSON output of firebase --json: " + text[:200])

args = sys.argv[1:]
node = walk(firebase_json(sys.stdin.read()), args[0])
if len(args) == 4:
    match = [item for item in node or [] if str(walk(item, args[1])) == args[2]]
    node = walk(match[0], args[3]) if match else None
print("" if node is None else node if isinstance(node, str) else json.dumps(node))
' "$@"
}

# The settings first: a configuration they refuse stops here, before any change.
settings_values() {
  "$PYTHON" infra/deploy_env.py --project="$PROJECT" "$@" ||
    die "fix the configuration above (shared/settings.py and your environment's overrides)"
}
values=$(settings_values)
eval "$values"
vertex=0
[ "$GEMINI_BACKEND" = vertex ] && vertex=1
if [ "$vertex" = 0 ]; then
  APIS+=(secretmanager.googleapis.com)
else
  APIS+=(aiplatform.googleapis.com)
  [ "$VERTEX_PROJECT" = "$PROJECT" ] ||
    die "GEMINI_VERTEX_PROJECT=$VERTEX_PROJECT: this script sets Vertex AI up in the project it
deploys ($PROJECT) only. Leave GEMINI_VERTEX_PROJECT unset, or grant the worker and the
Vertex AI service agent of $VERTEX_PROJECT by hand (docs/deploy.md) and deploy without it."
fi

command -v gcloud >/dev/null || die "gcloud is not on PATH"
# Non-interactive, firebase-tools' apps:create makes the default Hosting site itself,
# named after the project (lib/commands/apps-create.js: pickHostingSiteName offers the
# project id), so a site name of our own was never used: refuse it rather than ignore it.
[ -z "${HOSTING_SITE:-}" ] ||
  die "HOSTING_SITE is no longer read: the web app is served from the project's default
Hosting site (https://$PROJECT.web.app, or the name Firebase picked if that was taken).
Unset HOSTING_SITE and run again."
[ -f node_modules/esbuild/package.json ] || die "node_modules is missing: run npm ci (or make deps)"

log "APIs"
enabled=$(gc services list --enabled --format='value(config.name)')
missing=()
for api in "${APIS[@]}"; do
  grep -qxF "$api" <<<"$enabled" || missing+=("$api")
done
if [ ${#missing[@]} -gt 0 ]; then
  gc services enable "${missing[@]}"
fi
log "Service agents: ${AGENT_SERVICES[*]}"
for service in "${AGENT_SERVICES[@]}"; do
  # Idempotent: it answers the existing agent.
  gc beta services identity create --service="$service" --format='value(email)' >/dev/null
done
PROJECT_NUMBER=$(gc projects describe "$PROJECT" --format='value(projectNumber)')
[ -n "$PROJECT_NUMBER" ] || die "cannot read the project number of $PROJECT"
PUBSUB_AGENT="serviceAccount:service-$PROJECT_NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com"

# The Developer API's key, in Secret Manager (the worker reads it; nothing else does).
check_secret() {
  if ! exists gc secrets describe "$SECRET"; then
    die "the Secret Manager secret $SECRET does not exist. Create it once, with the key in \$KEY
(read -rs KEY keeps it out of your shell history), then run this script again:

  printf %s \"\$KEY\" | gcloud secrets create $SECRET --data-file=- --replication-policy=automatic --project=$PROJECT
"
  fi
  local enabled
  enabled=$(gc secrets versions list "$SECRET" --filter=state:ENABLED --limit=1 \
    --format='value(name)') || die "could not list the versions of the secret $SECRET (above)"
  if [ -z "$enabled" ]; then
    die "the secret $SECRET has no enabled version. Add one:

  printf %s \"\$KEY\" | gcloud secrets versions add $SECRET --data-file=- --project=$PROJECT
"
  fi
}
if [ "$vertex" = 1 ]; then
  log "Gemini through Vertex AI: no secret"
else
  log "Secret $SECRET"
  check_secret
fi

log "Pub/Sub topics"
for topic in "$TASKS_TOPIC" "$DEAD_LETTER_TOPIC" "$WEBHOOKS_TOPIC" "$WEBHOOK_DEAD_LETTER_TOPIC"; do
  exists gc pubsub topics describe "$topic" ||
    gc pubsub topics create "$topic" --labels="$LABEL_KEY=$LABEL_VALUE"
done
# A message published to a topic with no subscription is lost: the webhook dead letters
# get theirs from the start. Unused pull subscriptions expire after 31 days by default.
WEBHOOK_INSPECT=$WEBHOOK_DEAD_LETTER_TOPIC$WEBHOOK_INSPECT_SUFFIX
inspect_flags=(--message-retention-duration="$WEBHOOK_INSPECT_RETENTION" --expiration-period=never)
if exists gc pubsub subscriptions describe "$WEBHOOK_INSPECT"; then
  gc pubsub subscriptions update "$WEBHOOK_INSPECT" "${inspect_flags[@]}" >&2
else
  gc pubsub subscriptions create "$WEBHOOK_INSPECT" --topic="$WEBHOOK_DEAD_LETTER_TOPIC" \
    "${inspect_flags[@]}" --labels="$LABEL_KEY=$LABEL_VALUE" >&2
fi

log "Bucket gs://$BUCKET"
# Abandoned uploads and task sources (uploads/), then previews (results/), age out.
cat >"$work/lifecycle.json" <<EOF
{
  "rule": [
    {"action": {"type": "Delete"},
     "condition": {"age": $UPLOAD_RETENTION_DAYS, "matchesPrefix": ["uploads/"]}},
    {"action": {"type": "Delete"},
     "condition": {"age": $PREVIEW_RETENTION_DAYS, "matchesPrefix": ["results/"]}}
  ]
}
EOF
# No soft delete: a PDF deleted (by the lifecycle, the sweeper, teardown) is gone, not
# kept 7 days (the default for new buckets). --soft-delete-duration=0 on create and
# --clear-soft-delete (retention 0) on update: gcloud 528, surface/storage/buckets/
# create.py and update.py, api_lib/storage/gcs_json/metadata_field_converters.py.
if ! exists gc storage buckets describe "gs://$BUCKET"; then
  gc storage buckets create "gs://$BUCKET" --location="$REGION" \
    --uniform-bucket-level-access --public-access-prevention --soft-delete-duration=0
  gc storage buckets update "gs://$BUCKET" --update-labels="$LABEL_KEY=$LABEL_VALUE"
fi
gc storage buckets update "gs://$BUCKET" --uniform-bucket-level-access \
  --public-access-prevention --clear-soft-delete --lifecycle-file="$work/lifecycle.json"
bucket_label() {
  gc storage buckets describe "gs://$BUCKET" --format="value(labels.$1)"
}
# The deploy record is kept only on a bucket deploy.sh created (labelled): a bucket
# that was there before is not ours to label, and teardown leaves it alone.
BUCKET_IS_OURS=0
[ "$(bucket_label "$LABEL_KEY")" = "$LABEL_VALUE" ] && BUCKET_IS_OURS=1
record() {
  if [ "$BUCKET_IS_OURS" = 1 ]; then
    gc storage buckets update "gs://$BUCKET" --update-labels="$1=$2"
  else
    printf 'note: gs://%s was not created by deploy.sh, so it keeps no record that %s;\n' \
      "$BUCKET" "$1" >&2
    printf 'teardown.sh will leave that in place.\n' >&2
  fi
}

log "Firestore database $DATABASE ($FIRESTORE_LOCATION)"
if exists gc firestore databases describe --database="$DATABASE"; then
  read -r db_type db_location < <(gc firestore databases describe --database="$DATABASE" \
    --format='value(type,locationId)')
  [ "$db_type" = FIRESTORE_NATIVE ] ||
    die "the $DATABASE database is $db_type; Tinkerbell needs Firestore in native mode"
  [ "$db_location" = "$FIRESTORE_LOCATION" ] ||
    printf 'note: the database is in %s, not %s (a location is permanent)\n' \
      "$db_location" "$FIRESTORE_LOCATION" >&2
else
  gc firestore databases create --database="$DATABASE" --location="$FIRESTORE_LOCATION" \
    --type=firestore-native
  # Firestore databases take no labels: the record says teardown may delete it.
  record "$RECORD_DATABASE" true
fi

log "Service accounts"
# infra/build_accounts.sh makes them first when the deployer identity runs this script:
# it may act as these accounts only, so it cannot use one it made itself.
for role in "${RUNTIME_ACCOUNTS[@]}"; do
  create_account "$role"
done

log "IAM bindings"
for sa in "$API_SA" "$WORKER_SA" "$RECOVERY_SA" "$WEBHOOKS_SA"; do
  bind gc projects add-iam-policy-binding "$PROJECT" --member="serviceAccount:$sa" \
    --role=roles/datastore.user --condition=None
done
# The HTTP functions refuse revoked tokens (check_revoked reads the user record), and
# DELETE /v1/me deletes the user (firebaseauth.users.delete): no narrower predefined
# role has it (firebaseauth.viewer reads only).
bind gc projects add-iam-policy-binding "$PROJECT" --member="serviceAccount:$API_SA" \
  --role=roles/firebaseauth.admin --condition=None
# The sweeper (recovery) deletes expired upload objects (shared/upload_sessions.py).
# roles/storage.objectUser is the narrowest predefined role with objects get, list and
# delete: objectViewer cannot delete, objectAdmin adds the objects' IAM policies, and
# legacyBucketWriter lacks objects.get (and is a legacy role).
for sa in "$API_SA" "$WORKER_SA" "$RECOVERY_SA"; do
  bind gc storage buckets add-iam-policy-binding "gs://$BUCKET" --member="serviceAccount:$sa" \
    --role=roles/storage.objectUser
done
# Submissions (API) and the sweeper (recovery) publish tasks; the worker publishes
# the tasks it gives up on to the dead-letter topic (docs/decisions/0005).
for sa in "$API_SA" "$RECOVERY_SA"; do
  bind gc pubsub topics add-iam-policy-binding "$TASKS_TOPIC" --member="serviceAccount:$sa" \
    --role=roles/pubsub.publisher
done
bind gc pubsub topics add-iam-policy-binding "$DEAD_LETTER_TOPIC" \
  --member="serviceAccount:$WORKER_SA" --role=roles/pubsub.publisher
# Whoever ends a task announces it to deliver_webhook: the worker, the API (a cancel) and
# recovery (tasks failed as abandoned; the sweeper republishes stalled deliveries).
for sa in "$WORKER_SA" "$API_SA" "$RECOVERY_SA"; do
  bind gc pubsub topics add-iam-policy-binding "$WEBHOOKS_TOPIC" --member="serviceAccount:$sa" \
    --role=roles/pubsub.publisher
done
# deliver_webhook gives up to the webhook dead-letter topic. It holds nothing else: no
# bucket, no Gemini key (a webhook's receiver is any user's URL).
bind gc pubsub topics add-iam-policy-binding "$WEBHOOK_DEAD_LETTER_TOPIC" \
  --member="serviceAccount:$WEBHOOKS_SA" --role=roles/pubsub.publisher
if [ "$vertex" = 1 ]; then
  # The worker calls Gemini models on Vertex AI as itself (Vertex AI User: predict, and
  # the publisher models check-gemini reads).
  bind gc projects add-iam-policy-binding "$PROJECT" --member="serviceAccount:$WORKER_SA" \
    --role=roles/aiplatform.user --condition=None
  # Vertex AI reads the PDFs' gs:// URIs as its service agent, which exists once the
  # service identity is made (idempotent: it answers the existing one).
  VERTEX_AGENT=$(gc beta services identity create --service=aiplatform.googleapis.com \
    --format='value(email)')
  [ -n "$VERTEX_AGENT" ] || die "no Vertex AI service agent for $PROJECT"
  bind gc storage buckets add-iam-policy-binding "gs://$BUCKET" \
    --member="serviceAccount:$VERTEX_AGENT" --role=roles/storage.objectViewer
else
  bind gc secrets add-iam-policy-binding "$SECRET" --member="serviceAccount:$WORKER_SA" \
    --role=roles/secretmanager.secretAccessor
fi
# What Cloud Build needs to build a function from source (functions docs, "build
# service account"): write logs, push the image, read the uploaded source. The source
# sits in the gcf-v2-sources-*/gcf-v2-uploads-* buckets: storage.objectAdmin only there,
# never on the uploads bucket with users' PDFs (an IAM condition on the bucket's name).
for role in roles/logging.logWriter roles/artifactregistry.writer; do
  bind gc projects add-iam-policy-binding "$PROJECT" --member="serviceAccount:$BUILDER_SA" \
    --role="$role" --condition=None
done
bind gc projects add-iam-policy-binding "$PROJECT" --member="serviceAccount:$BUILDER_SA" \
  --role=roles/storage.objectAdmin \
  --condition="expression=resource.name.startsWith(\"projects/_/buckets/gcf-v2-\"),title=gcf-v2-buckets-only,description=Function sources only"

log "Firebase"
# Each answer is read on its own line: inside `[ -z "$(...)" ]` a failed command reads
# as an empty answer (set -e does not reach it), and a denied list would look like "no
# Firebase yet".
firebase_projects=$(fb projects:list --json) ||
  die "firebase projects:list failed (above): cannot tell whether $PROJECT has Firebase"
if [ -z "$(json_field result projectId "$PROJECT" projectId <<<"$firebase_projects")" ]; then
  fb projects:addfirebase "$PROJECT" >&2
fi
site_before=$(fb hosting:sites:list --json | json_field result.sites type DEFAULT_SITE name)
APP_ID=$(fb apps:list WEB --json | json_field result displayName "$WEB_APP_NAME" appId)
if [ -z "$APP_ID" ]; then
  APP_ID=$(fb apps:create WEB "$WEB_APP_NAME" --json | json_field result.appId)
fi
[ -n "$APP_ID" ] || die "could not register the web app $WEB_APP_NAME"
site_of() { fb hosting:sites:list --json | json_field result.sites type DEFAULT_SITE "$1"; }
# A project with a web app of its own but no site yet: the site apps:create would make.
default_site=$(site_of name) || die "firebase hosting:sites:list failed (above)"
if [ -z "$default_site" ]; then
  fb hosting:sites:create "$PROJECT" --app="$APP_ID" >&2
fi
WEB_URL=$(site_of defaultUrl)
[ -n "$WEB_URL" ] || die "the project has no default Hosting site"
SITE=$(site_of name)
SITE=${SITE##*/}
if [ -z "$site_before" ]; then
  # Made by this run (apps:create, or the line above): teardown may stop it.
  record "$RECORD_SITE" "$SITE"
fi
WEB_ORIGINS="https://$SITE.web.app,https://$SITE.firebaseapp.com"

log "Firestore rules, indexes and TTL policies; anonymous sign-in"
# firebase.json: firestore.rules, firestore.indexes.json, and auth.providers.anonymous
# (the web app signs in anonymously).
fb deploy --only=firestore:rules,firestore:indexes,auth --config=firebase.json >&2
for policy in $TTL_POLICIES; do
  collection=${policy%/*}
  field=${policy#*/}
  ttl_state=$(gc firestore indexes fields describe "$field" --database="$DATABASE" \
    --collection-group="$collection" --format='value(ttlConfig.state)')
  if [ -z "$ttl_state" ]; then
    gc firestore fields ttls update "$field" --database="$DATABASE" \
      --collection-group="$collection" --enable-ttl --async
  fi
done
# The functions' queries need the composite indexes: wait until they are built.
waited=0
while :; do
  states=$(gc firestore indexes composite list --database="$DATABASE" --format='value(state)')
  pending=0
  for state in $states; do
    [ "$state" = READY ] || pending=$((pending + 1))
  done
  [ "$pending" = 0 ] && break
  [ "$waited" -ge "$INDEX_WAIT_S" ] &&
    die "$pending Firestore indexes are still building after ${INDEX_WAIT_S}s; run again later"
  printf '%s indexes building...\n' "$pending" >&2
  sleep 20
  waited=$((waited + 20))
done

log "Functions"
# task_status's URL is known before it exists (the cloudfunctions.net form), unless
# the operator fronts it with a domain of their own (STATUS_BASE_URL).
status_default=https://$REGION-$PROJECT.cloudfunctions.net/task_status
STATUS_BASE_URL=${STATUS_BASE_URL:-$status_default}
values=$(settings_values --status-base-url="$STATUS_BASE_URL" --cors-origins="$WEB_ORIGINS" \
  --env-file="$work/env.yaml")
eval "$values"
deploy_function() {
  local name=$1 sa=$2
  shift 2
  gc functions deploy "$name" --gen2 --region="$REGION" --runtime="$RUNTIME" --source=. \
    --entry-point="$name" --service-account="$sa" \
    --build-service-account="projects/$PROJECT/serviceAccounts/$BUILDER_SA" \
    --update-labels="$LABEL_KEY=$LABEL_VALUE" --env-vars-file="$work/env.yaml" "$@" >&2
}
# The two public HTTP functions: browsers call them (they check Firebase ID tokens).
# Under domain restricted sharing (iam.allowedPolicyMemberDomains) the allUsers binding
# is refused, and on the 2nd gen path gcloud 528 then fails the whole deploy: the
# binding (command_lib/functions/run_util.AddOrRemoveInvokerBinding, called at the end
# of command_lib/functions/v2/deploy/command.Run) has no try/except, unlike the 1st gen
# path's warning ("Setting IAM policy failed", v1/deploy/command.py).
deploy_public_function() {
  deploy_function "$@" --trigger-http --allow-unauthenticated && return 0
  if grep -qi "permitted customer" "$GCLOUD_ERR"; then
    die "the organisation policy refuses allUsers as an invoker of $1 (domain restricted
sharing, constraints/iam.allowedPolicyMemberDomains). The function is deployed but
private: browsers would get 403. Ask an organisation policy admin for an exception for
this project (docs/deploy.md, Prerequisites), e.g. a project policy that allows all:

  printf '%s\\n' 'name: projects/$PROJECT/policies/iam.allowedPolicyMemberDomains' \\
    'spec: {rules: [{allowAll: true}]}' >drs.yaml
  gcloud org-policies set-policy drs.yaml

then run this script again."
  fi
  exit 1
}
url_of() {
  local url
  url=$(gc functions describe "$1" --region="$REGION" --v2 --format='value(url)')
  [ -n "$url" ] || url=$(gc functions describe "$1" --region="$REGION" --v2 \
    --format='value(serviceConfig.uri)')
  [ -n "$url" ] || die "no URL for the function $1"
  printf '%s' "$url"
}
invoker() { bind gc functions add-invoker-policy-binding "$1" --region="$REGION" --member="$2"; }

deploy_public_function task_status "$API_SA" --memory=256Mi --timeout=30s
status_url=$(url_of task_status)
if [ "$STATUS_BASE_URL" = "$status_default" ] && [ "$status_url" != "$status_default" ]; then
  die "task_status is at $status_url: run again with STATUS_BASE_URL=$status_url"
fi
STATUS_URL=$STATUS_BASE_URL
deploy_public_function submit_strategy "$API_SA" --memory=512Mi --timeout=60s
SUBMIT_URL=$(url_of submit_strategy)

# The worker: its timeout is the lease (shared/settings.py keeps it within 540 s). Only the
# Developer API needs the key; on Vertex AI a previous deployment's secret is dropped.
if [ "$vertex" = 1 ]; then
  worker_secrets=(--clear-secrets)
else
  worker_secrets=(--set-secrets="$SECRET=$SECRET:latest")
fi
deploy_function process_task "$WORKER_SA" --trigger-topic="$TASKS_TOPIC" --retry \
  --trigger-service-account="$TRIGGER_SA" --memory="$WORKER_MEMORY" --cpu=1 \
  --concurrency="$WORKER_CONCURRENCY" --max-instances="$WORKER_MAX_INSTANCES" \
  --timeout="${LEASE_SECONDS}s" "${worker_secrets[@]}"
invoker process_task "serviceAccount:$TRIGGER_SA"
deploy_function dead_letter_task "$RECOVERY_SA" --trigger-topic="$DEAD_LETTER_TOPIC" --retry \
  --trigger-service-account="$TRIGGER_SA" --memory=256Mi --timeout=60s
invoker dead_letter_task "serviceAccount:$TRIGGER_SA"
# One sweep at a time.
deploy_function sweep_tasks "$RECOVERY_SA" --trigger-http --no-allow-unauthenticated \
  --memory=256Mi --timeout="${SWEEP_TIMEOUT_S}s" --max-instances=1
invoker sweep_tasks "serviceAccount:$SCHEDULER_SA"
# One attempt per message; 503 until the next is due (WEBHOOK_RETRY_SCHEDULE_S).
deploy_function deliver_webhook "$WEBHOOKS_SA" --trigger-topic="$WEBHOOKS_TOPIC" --retry \
  --trigger-service-account="$TRIGGER_SA" --memory=256Mi \
  --timeout="${WEBHOOK_FUNCTION_TIMEOUT_S}s"
invoker deliver_webhook "serviceAccount:$TRIGGER_SA"

log "Worker subscription: delivery policy (SPEC §4)"
# The documented path: the function's Eventarc trigger, then the trigger's subscription.
subscription_of() {
  local trigger subscription
  trigger=$(gc functions describe "$1" --region="$REGION" --v2 \
    --format='value(eventTrigger.trigger)')
  [ -n "$trigger" ] || die "$1 has no Eventarc trigger"
  subscription=$(gc eventarc triggers describe "$trigger" --location="$REGION" \
    --format='value(transport.pubsub.subscription)')
  [ -n "$subscription" ] || die "the trigger $trigger has no Pub/Sub subscription"
  printf '%s' "$subscription"
}
SUBSCRIPTION=$(subscription_of process_task)
gc pubsub subscriptions update "$SUBSCRIPTION" --ack-deadline="$ACK_DEADLINE_SECONDS" \
  --min-retry-delay="${RETRY_MIN_BACKOFF_S}s" --max-retry-delay="${RETRY_MAX_BACKOFF_S}s" \
  --dead-letter-topic="$DEAD_LETTER_TOPIC" --max-delivery-attempts="$MAX_DELIVERY_ATTEMPTS" >&2
# Pub/Sub's own agent forwards dead letters: it must publish there and ack here.
bind gc pubsub topics add-iam-policy-binding "$DEAD_LETTER_TOPIC" --member="$PUBSUB_AGENT" \
  --role=roles/pubsub.publisher
bind gc pubsub subscriptions add-iam-policy-binding "$SUBSCRIPTION" --member="$PUBSUB_AGENT" \
  --role=roles/pubsub.subscriber

log "Webhook subscription: delivery policy"
# The tasks' backoff brings a refused message back (503: not due yet, or failed with
# retries left). No Pub/Sub dead-letter policy, on purpose: deliver_webhook dead-letters
# a delivery itself once WEBHOOK_RETRY_SCHEDULE_S is spent (about a day), while Pub/Sub
# gives up after 100 deliveries at most, which at the 600 s backoff is about 16 h.
# Eventarc keeps a message 24 hours (https://cloud.google.com/eventarc/docs/retry-events);
# this retention outlasts the schedule (infra/deploy_env.py). The ack deadline is the
# function's timeout: no second push while an attempt may be running.
WEBHOOK_SUBSCRIPTION=$(subscription_of deliver_webhook)
gc pubsub subscriptions update "$WEBHOOK_SUBSCRIPTION" \
  --ack-deadline="$WEBHOOK_FUNCTION_TIMEOUT_S" \
  --min-retry-delay="${RETRY_MIN_BACKOFF_S}s" --max-retry-delay="${RETRY_MAX_BACKOFF_S}s" \
  --message-retention-duration="${WEBHOOK_MESSAGE_RETENTION_S}s" --clear-dead-letter-policy >&2

log "Scheduler job $SWEEP_JOB"
SWEEP_URI=$(gc functions describe sweep_tasks --region="$REGION" --v2 \
  --format='value(serviceConfig.uri)')
[ -n "$SWEEP_URI" ] || die "no URL for sweep_tasks"
job_flags=(--location="$REGION" --schedule="$SWEEP_SCHEDULE" --uri="$SWEEP_URI"
  --http-method=POST --attempt-deadline="${SWEEP_TIMEOUT_S}s"
  --oidc-service-account-email="$SCHEDULER_SA" --oidc-token-audience="$SWEEP_URI")
if exists gc scheduler jobs describe "$SWEEP_JOB" --location="$REGION"; then
  gc scheduler jobs update http "$SWEEP_JOB" "${job_flags[@]}" >&2
else
  gc scheduler jobs create http "$SWEEP_JOB" "${job_flags[@]}" >&2
fi

log "Web app on Firebase Hosting"
sdk_config=$(fb apps:sdkconfig WEB "$APP_ID" --json)
FIREBASE_API_KEY=$(json_field result.sdkConfig.apiKey <<<"$sdk_config")
FIREBASE_AUTH_DOMAIN=$(json_field result.sdkConfig.authDomain <<<"$sdk_config")
[ -n "$FIREBASE_API_KEY" ] || die "no API key in the web app's config"
env -u FIRESTORE_EMULATOR_HOST -u AUTH_EMULATOR_URL \
  SUBMIT_URL="$SUBMIT_URL" STATUS_URL="$STATUS_URL" GOOGLE_CLOUD_PROJECT="$PROJECT" \
  FIREBASE_API_KEY="$FIREBASE_API_KEY" FIREBASE_AUTH_DOMAIN="$FIREBASE_AUTH_DOMAIN" \
  FIREBASE_APP_ID="$APP_ID" "$NODE" web/build.mjs >&2
# Hosting's config: firebase.json's headers plus the Content-Security-Policy that names
# these functions (and reCAPTCHA when the app has a site key), from infra/hosting.py.
hosting_args=(--submit-url="$SUBMIT_URL" --status-url="$STATUS_URL"
  --out="$work/firebase.hosting.json")
if [ -n "${APP_CHECK_SITE_KEY:-}" ]; then
  hosting_args+=(--app-check)
fi
"$PYTHON" infra/hosting.py "${hosting_args[@]}" || die "could not write the Hosting config"
fb deploy --only=hosting --config="$work/firebase.hosting.json" >&2

log "Deployed $PROJECT"
cat >&2 <<EOF
  web app      $WEB_URL
  submit       $SUBMIT_URL
  status       $STATUS_URL
  subscription $SUBSCRIPTION
  webhooks     $WEBHOOK_SUBSCRIPTION
  given up     gcloud pubsub subscriptions pull $WEBHOOK_INSPECT --project=$PROJECT
EOF
cat <<EOF
GOOGLE_CLOUD_PROJECT=$PROJECT
REGION=$REGION
SUBMIT_URL=$SUBMIT_URL
STATUS_URL=$STATUS_URL
WEB_URL=$WEB_URL
FIREBASE_API_KEY=$FIREBASE_API_KEY
FIREBASE_AUTH_DOMAIN=$FIREBASE_AUTH_DOMAIN
FIREBASE_APP_ID=$APP_ID
EOF
