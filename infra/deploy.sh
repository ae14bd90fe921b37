#!/usr/bin/env bash
# Deploy Tinkerbell to a real Google Cloud project with gcloud.
#
#   PROJECT=my-project REGION=europe-west1 infra/deploy.sh
#
# Idempotent: creates what is missing, redeploys the three functions, and sets
# the delivery policy of SPEC §4 on the subscription Eventarc made for the
# worker. The Gemini key comes from Secret Manager (secret GEMINI_API_KEY),
# never from this repo.
set -euo pipefail

: "${PROJECT:?set PROJECT}"
REGION=${REGION:-europe-west1}
RUNTIME=python311
TOPIC=${TASKS_TOPIC:-tinkerbell-tasks}
DEAD_TOPIC=${DEAD_LETTER_TOPIC:-tinkerbell-tasks-dead}
BUCKET=${UPLOADS_BUCKET:-$PROJECT-uploads}
SERVICE_ACCOUNT=${SERVICE_ACCOUNT:-tinkerbell-functions@$PROJECT.iam.gserviceaccount.com}
# Keep these in step with shared/settings.py: the worker's timeout is the
# lease, and the subscription's ack deadline is above it.
LEASE_SECONDS=${LEASE_SECONDS:-540}
ACK_DEADLINE_SECONDS=${ACK_DEADLINE_SECONDS:-600}
MAX_DELIVERY_ATTEMPTS=${MAX_DELIVERY_ATTEMPTS:-20}
RETRY_MIN_BACKOFF_S=${RETRY_MIN_BACKOFF_S:-10}
RETRY_MAX_BACKOFF_S=${RETRY_MAX_BACKOFF_S:-600}

gc() { gcloud --project="$PROJECT" --quiet "$@"; }
here=$(cd "$(dirname "$0")/.." && pwd)

gc services enable cloudfunctions.googleapis.com run.googleapis.com eventarc.googleapis.com \
  pubsub.googleapis.com firestore.googleapis.com storage.googleapis.com \
  secretmanager.googleapis.com cloudbuild.googleapis.com cloudscheduler.googleapis.com

gc pubsub topics describe "$TOPIC" >/dev/null 2>&1 || gc pubsub topics create "$TOPIC"
gc pubsub topics describe "$DEAD_TOPIC" >/dev/null 2>&1 || gc pubsub topics create "$DEAD_TOPIC"
gc storage buckets describe "gs://$BUCKET" >/dev/null 2>&1 ||
  gc storage buckets create "gs://$BUCKET" --location="$REGION" --uniform-bucket-level-access
gc iam service-accounts describe "$SERVICE_ACCOUNT" >/dev/null 2>&1 ||
  gc iam service-accounts create "${SERVICE_ACCOUNT%%@*}" --display-name="Tinkerbell functions"

# What the functions' identity may do: tasks in Firestore, objects in the bucket,
# publishing tasks (submit, sweeper) and dead letters (worker), reading the key.
gc projects add-iam-policy-binding "$PROJECT" --member="serviceAccount:$SERVICE_ACCOUNT" \
  --role=roles/datastore.user --condition=None >/dev/null
gc storage buckets add-iam-policy-binding "gs://$BUCKET" \
  --member="serviceAccount:$SERVICE_ACCOUNT" --role=roles/storage.objectAdmin >/dev/null
for topic in "$TOPIC" "$DEAD_TOPIC"; do
  gc pubsub topics add-iam-policy-binding "$topic" \
    --member="serviceAccount:$SERVICE_ACCOUNT" --role=roles/pubsub.publisher >/dev/null
done
gc secrets add-iam-policy-binding GEMINI_API_KEY \
  --member="serviceAccount:$SERVICE_ACCOUNT" --role=roles/secretmanager.secretAccessor >/dev/null
# Eventarc delivers to the worker and the dead-letter handler as this identity.
gc projects add-iam-policy-binding "$PROJECT" --member="serviceAccount:$SERVICE_ACCOUNT" \
  --role=roles/run.invoker --condition=None >/dev/null
gc projects add-iam-policy-binding "$PROJECT" --member="serviceAccount:$SERVICE_ACCOUNT" \
  --role=roles/eventarc.eventReceiver --condition=None >/dev/null

# The settings check these together (shared/settings.py), so every function gets them.
common_env="GOOGLE_CLOUD_PROJECT=$PROJECT,UPLOADS_BUCKET=$BUCKET,TASKS_TOPIC=$TOPIC,DEAD_LETTER_TOPIC=$DEAD_TOPIC"
common_env+=",LEASE_SECONDS=$LEASE_SECONDS,ACK_DEADLINE_SECONDS=$ACK_DEADLINE_SECONDS"
common_env+=",MAX_DELIVERY_ATTEMPTS=$MAX_DELIVERY_ATTEMPTS,RETRY_MIN_BACKOFF_S=$RETRY_MIN_BACKOFF_S"
common_env+=",RETRY_MAX_BACKOFF_S=$RETRY_MAX_BACKOFF_S"
deploy() {
  local name=$1; shift
  gc functions deploy "$name" --gen2 --region="$REGION" --runtime="$RUNTIME" \
    --source="$here" --entry-point="$name" --service-account="$SERVICE_ACCOUNT" "$@"
}

deploy task_status --trigger-http --allow-unauthenticated --memory=256Mi --timeout=30s \
  --set-env-vars="$common_env"
STATUS_URL=$(gc functions describe task_status --gen2 --region="$REGION" --format='value(serviceConfig.uri)')

deploy submit_strategy --trigger-http --allow-unauthenticated --memory=512Mi --timeout=60s \
  --set-env-vars="$common_env,STATUS_BASE_URL=$STATUS_URL"

deploy process_task --trigger-topic="$TOPIC" --retry --memory=1Gi --timeout="${LEASE_SECONDS}s" \
  --concurrency=8 --cpu=1 --max-instances=100 \
  --set-env-vars="$common_env" --set-secrets="GEMINI_API_KEY=GEMINI_API_KEY:latest"

# Eventarc made the push subscription; give it the delivery policy of SPEC §4.
SUBSCRIPTION=$(gc eventarc triggers list --location="$REGION" \
  --filter="destination.cloudRun.service~process-task" --format='value(transport.pubsub.subscription)' | head -n1)
gc pubsub subscriptions update "$SUBSCRIPTION" \
  --ack-deadline="$ACK_DEADLINE_SECONDS" \
  --min-retry-delay="${RETRY_MIN_BACKOFF_S}s" --max-retry-delay="${RETRY_MAX_BACKOFF_S}s" \
  --dead-letter-topic="$DEAD_TOPIC" --max-delivery-attempts="$MAX_DELIVERY_ATTEMPTS"
# Pub/Sub's own agent forwards dead letters: it must publish there and ack here.
PUBSUB_AGENT="serviceAccount:service-$(gc projects describe "$PROJECT" --format='value(projectNumber)')@gcp-sa-pubsub.iam.gserviceaccount.com"
gc pubsub topics add-iam-policy-binding "$DEAD_TOPIC" --member="$PUBSUB_AGENT" \
  --role=roles/pubsub.publisher >/dev/null
gc pubsub subscriptions add-iam-policy-binding "$SUBSCRIPTION" --member="$PUBSUB_AGENT" \
  --role=roles/pubsub.subscriber >/dev/null

# Dead letters fail their task (unless a live lease may still finish it); the
# sweeper republishes tasks whose lease expired, every 5 minutes.
deploy dead_letter_task --trigger-topic="$DEAD_TOPIC" --retry --memory=256Mi --timeout=60s \
  --set-env-vars="$common_env"
deploy sweep_tasks --trigger-http --no-allow-unauthenticated --memory=256Mi --timeout=300s \
  --set-env-vars="$common_env"
SWEEP_URL=$(gc functions describe sweep_tasks --gen2 --region="$REGION" --format='value(serviceConfig.uri)')
gc functions add-invoker-policy-binding sweep_tasks --region="$REGION" \
  --member="serviceAccount:$SERVICE_ACCOUNT"
gc scheduler jobs describe tinkerbell-sweep --location="$REGION" >/dev/null 2>&1 ||
  gc scheduler jobs create http tinkerbell-sweep --location="$REGION" --schedule="*/5 * * * *" \
    --uri="$SWEEP_URL" --http-method=POST --oidc-service-account-email="$SERVICE_ACCOUNT"

# Firestore security rules (clients read only their own tasks; no client writes),
# the indexes of the per-user limits and the TTL policy of idempotency keys.
# Needs Node; Cloud Build's gcloud image has none, so cloudbuild.yaml runs it as a
# step of its own (SKIP_FIRESTORE_RULES=1 here).
if [ "${SKIP_FIRESTORE_RULES:-0}" != 1 ]; then
  npx --yes firebase-tools@15.34.2 deploy --only firestore:rules,firestore:indexes \
    --project "$PROJECT" --config "$here/infra/firebase.json"
fi

echo "submit: $(gc functions describe submit_strategy --gen2 --region="$REGION" --format='value(serviceConfig.uri)')"
echo "status: $STATUS_URL"
