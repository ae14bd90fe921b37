# shellcheck shell=bash
# Sourced by infra/deploy.sh and infra/build_accounts.sh: `gc`, gcloud on $PROJECT, and
# `retry_not_yet`, which deploy.sh's firebase-tools calls (`fb`) go through too.
#
# A new project answers some calls "not yet" for a few minutes: Eventarc's service
# agent without its role, a service account IAM does not know yet, an API enabled a
# moment ago. retry_not_yet waits those out (DEPLOY_RETRY_PAUSE_S before the first
# retry, growing each time, at most 60 s; DEPLOY_RETRY_ATTEMPTS tries), saying what it
# waits for; any other failure returns at once. The caller sets GCLOUD_ERR, a file for
# the last stderr.
DEPLOY_RETRY_PAUSE_S=${DEPLOY_RETRY_PAUSE_S:-15}
DEPLOY_RETRY_ATTEMPTS=${DEPLOY_RETRY_ATTEMPTS:-10}

# What a failed gcloud call is waiting for, when its answer is one a new project gives
# for a few minutes; nothing (status 1) for any other failure, which is never retried.
not_yet_reason() {
  local answer=${1,,}
  case "$answer" in
    # Eventarc's agent gets its role lazily ("If you recently started to use Eventarc,
    # it may take a few minutes before all necessary permissions are propagated").
    *"permission denied while using the eventarc service agent"*)
      echo "Eventarc's service agent to get its role" ;;
    # IAM is eventually consistent: a service account made a moment ago is unknown.
    *"service account"*"does not exist"*)
      echo "IAM to know the service account just created" ;;
    # An API enabled a moment ago ("If you enabled this API recently, wait a few
    # minutes for the action to propagate to our systems and retry"): the reason
    # SERVICE_DISABLED, or that sentence alone where a tool keeps only the message.
    *service_disabled* | *"if you enabled this api recently"*)
      echo "the API just enabled to reach every Google system" ;;
    *) return 1 ;;
  esac
}
# Runs COMMAND... (its label, e.g. "gcloud services enable", names it in what is
# printed). stderr is shown as it comes and kept (in $GCLOUD_ERR); a failure whose
# answer not_yet_reason recognises is retried with a growing, bounded pause. The answer
# read is stderr and the files named in NOT_YET_FILES (space-separated; each removed
# before a try): firebase-tools tells a failure's cause only in its --json output and
# its debug log.
retry_not_yet() {
  local label=$1 attempt=1 status pause reason file answer
  shift
  while :; do
    for file in ${NOT_YET_FILES:-}; do rm -f "$file"; done
    status=0
    { "$@" 2>&1 1>&3 3>&- | tee "$GCLOUD_ERR" >&2 || status=$?; } 3>&1
    [ "$status" = 0 ] && return 0
    answer=$(cat "$GCLOUD_ERR")
    for file in ${NOT_YET_FILES:-}; do
      [ ! -f "$file" ] || answer+=$'\n'$(cat "$file")
    done
    reason=$(not_yet_reason "$answer") || return "$status"
    if [ "$attempt" -ge "$DEPLOY_RETRY_ATTEMPTS" ]; then
      printf 'gave up after %s tries waiting for %s: %s\n' "$attempt" "$reason" "$label" >&2
      return "$status"
    fi
    pause=$((DEPLOY_RETRY_PAUSE_S * attempt))
    [ "$pause" -le 60 ] || pause=60
    printf 'waiting %ss for %s (try %s of %s): %s\n' \
      "$pause" "$reason" "$((attempt + 1))" "$DEPLOY_RETRY_ATTEMPTS" "$label" >&2
    sleep "$pause"
    attempt=$((attempt + 1))
  done
}
# gcloud on this project, through retry_not_yet.
gc() {
  retry_not_yet "gcloud $1 $2 $3" gcloud --project="$PROJECT" --quiet "$@"
}
