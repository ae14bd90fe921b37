# shellcheck shell=bash
# The runtime service accounts, one per role (docs/deploy.md, "Service accounts and
# roles"). Sourced by infra/deploy.sh, which makes any that is missing, and by
# infra/build_accounts.sh, which makes them first so that the deployer can be allowed to
# act as each of them, on the account itself, and as no other account of the project.
# Needs PROJECT, and gc (infra/gcloud.sh).
# shellcheck disable=SC2034 # used by the scripts that source this file
RUNTIME_ACCOUNTS=(api worker recovery webhooks trigger scheduler builder)

sa_email() { printf 'tinkerbell-%s@%s.iam.gserviceaccount.com' "$1" "$PROJECT"; }

account_title() {
  case "$1" in
    api) echo "Tinkerbell HTTP API (submit_strategy, task_status)" ;;
    worker) echo "Tinkerbell worker (process_task)" ;;
    recovery) echo "Tinkerbell recovery (dead_letter_task, sweep_tasks)" ;;
    webhooks) echo "Tinkerbell webhook deliveries (deliver_webhook)" ;;
    trigger) echo "Tinkerbell Eventarc trigger identity" ;;
    scheduler) echo "Tinkerbell Cloud Scheduler identity" ;;
    builder) echo "Tinkerbell function builds" ;;
    *) return 1 ;;
  esac
}

# Makes the account of a role (api, worker...) unless it exists.
create_account() {
  gc iam service-accounts describe "$(sa_email "$1")" >/dev/null 2>&1 ||
    gc iam service-accounts create "tinkerbell-$1" --display-name="$(account_title "$1")"
}
