"""gcloud: Firestore databases, fields and indexes; Pub/Sub topics and subscriptions;
Cloud Storage buckets and objects."""

from __future__ import annotations

from pathlib import Path

from tests.infra import fixtures as fx

from .calls import Call, command, short
from .common import FIRESTORE_LOCATIONS, Json, ask_parser, event, fail


def database_of(call: Call) -> Json:
    database_id = call.arg("--database", "(default)")
    database: Json | None = call.state["databases"].get(database_id)
    if database is None:
        fail(
            "NOT_FOUND",
            f"The database {database_id} does not exist for project {call.project}",
        )
    return database


@command("gcloud.firestore.databases.describe")
def databases_describe(call: Call) -> Json:
    return database_of(call)


@command("gcloud.firestore.databases.create")
def databases_create(call: Call) -> None:
    database_id = call.arg("--database", "(default)")
    location = call.arg("--location")
    if database_id in call.state["databases"]:
        fail("ALREADY_EXISTS", f"Database {database_id} already exists.")
    if location not in FIRESTORE_LOCATIONS:
        fail("INVALID_ARGUMENT", f"Invalid locationId: {location}")
    database_type = call.arg("--type", "firestore-native")
    call.state["databases"][database_id] = fx.database(
        call.project, database_id, location, database_type
    )
    event("create", "database", database_id)


@command("gcloud.firestore.databases.delete")
def databases_delete(call: Call) -> None:
    database_of(call)
    database_id = call.arg("--database")
    del call.state["databases"][database_id]
    call.state["indexes"].pop(database_id, None)
    call.state["fields"].pop(database_id, None)
    call.state.pop("rules", None)
    event("delete", "database", database_id)


@command("gcloud.firestore.indexes.fields.describe")
def fields_describe(call: Call) -> Json:
    database_of(call)
    database_id = call.arg("--database", "(default)")
    group, path = call.arg("--collection-group"), call.positional("FIELD")
    state = call.state["fields"].get(database_id, {}).get(f"{group}/{path}")
    override = call.state.get("field_indexes", {}).get(database_id, {}).get(f"{group}/{path}")
    return fx.field(call.project, database_id, group, path, state, override)


@command("gcloud.firestore.fields.ttls.update")
def ttls_update(call: Call) -> None:
    database_of(call)
    database_id = call.arg("--database", "(default)")
    key = f"{call.arg('--collection-group')}/{call.positional('FIELD')}"
    fields = call.state["fields"].setdefault(database_id, {})
    if call.arg("--enable-ttl"):
        if fields.get(key) is None:
            event("create", "ttl", key)
        fields[key] = "ACTIVE"
    else:
        fields.pop(key, None)
        event("delete", "ttl", key)


@command("gcloud.firestore.indexes.composite.list")
def indexes_list(call: Call) -> list[Json]:
    database_of(call)
    specs = call.state["indexes"].get(call.arg("--database", "(default)"), [])
    return [
        fx.composite_index(call.project, call.arg("--database", "(default)"), n, spec)
        for n, spec in enumerate(specs)
    ]


# -- Pub/Sub


def topic_of(call: Call, name: str) -> str:
    name = short(name)
    if name not in call.state["topics"]:
        fail("NOT_FOUND", f"Resource not found (resource={name}).")
    return name


@command("gcloud.pubsub.topics.describe")
def topics_describe(call: Call) -> Json:
    return fx.topic(call.project, topic_of(call, call.positional("TOPIC")))


@command("gcloud.pubsub.topics.create")
def topics_create(call: Call) -> None:
    for name in call.positional("TOPIC"):
        if name in call.state["topics"]:
            fail("ALREADY_EXISTS", "Resource already exists in the project (resource=" + name)
        topic = fx.topic(call.project, name)
        if call.arg("--labels"):
            topic["labels"] = dict(call.arg("--labels"))
        call.state["topics"][name] = topic
        event("create", "topic", name)


@command("gcloud.pubsub.topics.list")
def topics_list(call: Call) -> list[Json]:
    return [call.state["topics"][name] for name in sorted(call.state["topics"])]


@command("gcloud.pubsub.topics.delete")
def topics_delete(call: Call) -> None:
    for given in call.positional("TOPIC"):
        name = topic_of(call, given)
        del call.state["topics"][name]
        call.state["iam"].pop(f"topic:{name}", None)
        event("delete", "topic", name)


@command("gcloud.pubsub.topics.add-iam-policy-binding")
def topics_add_binding(call: Call) -> Json:
    name = topic_of(call, call.positional("TOPIC"))
    return call.add_binding(f"topic:{name}", "topic")


def subscription_of(call: Call) -> Json:
    name = short(call.positional("SUBSCRIPTION"))
    subscription: Json | None = call.state["subscriptions"].get(name)
    if subscription is None:
        fail("NOT_FOUND", f"Resource not found (resource={name}).")
    return subscription


@command("gcloud.pubsub.subscriptions.describe")
def subscriptions_describe(call: Call) -> Json:
    return subscription_of(call)


def seconds(value: int | str) -> int:
    """A duration as gcloud's parser hands it over: 604800, or "604800s" (update's flags
    are formatted for the API: command_lib/pubsub/flags.py, ParseSubscriptionRetention...)."""
    return value if isinstance(value, int) else int(str(value).removesuffix("s"))


def apply_subscription_flags(call: Call, subscription: Json) -> None:
    """What create and update both set. Ranges:
    https://cloud.google.com/pubsub/docs/reference/rest/v1/projects.subscriptions"""
    ack = call.arg("--ack-deadline")
    if ack is not None:
        if not 10 <= ack <= 600:
            fail("INVALID_ARGUMENT", f"Invalid ack deadline: {ack} (10 to 600 seconds)")
        subscription["ackDeadlineSeconds"] = ack
    retention = call.arg("--message-retention-duration")
    if retention is not None:
        subscription["messageRetentionDuration"] = f"{seconds(retention)}s"
    expiration = call.arg("--expiration-period")
    if expiration == "never":
        subscription["expirationPolicy"] = {}  # no ttl: never expires
    elif expiration is not None:
        ttl = seconds(expiration)
        if ttl < 86400:
            fail("INVALID_ARGUMENT", "expiration period must be at least 1 day")
        subscription["expirationPolicy"] = {"ttl": f"{ttl}s"}


@command("gcloud.pubsub.subscriptions.create")
def subscriptions_create(call: Call) -> None:
    topic_name = topic_of(call, call.arg("--topic"))
    for given in call.positional("SUBSCRIPTION"):
        name = short(given)
        if name in call.state["subscriptions"]:
            fail("ALREADY_EXISTS", f"Resource already exists in the project (resource={name}).")
        subscription = fx.pull_subscription(call.project, name, topic_name)
        if call.arg("--labels"):
            subscription["labels"] = dict(call.arg("--labels"))
        apply_subscription_flags(call, subscription)
        call.state["subscriptions"][name] = subscription
        event("create", "subscription", name)


@command("gcloud.pubsub.subscriptions.list")
def subscriptions_list(call: Call) -> list[Json]:
    return [call.state["subscriptions"][name] for name in sorted(call.state["subscriptions"])]


@command("gcloud.pubsub.subscriptions.delete")
def subscriptions_delete(call: Call) -> None:
    for given in call.positional("SUBSCRIPTION"):
        name = short(given)
        if name not in call.state["subscriptions"]:
            fail("NOT_FOUND", f"Resource not found (resource={name}).")
        del call.state["subscriptions"][name]
        call.state["iam"].pop(f"subscription:{name}", None)
        event("delete", "subscription", name)


@command("gcloud.pubsub.subscriptions.update")
def subscriptions_update(call: Call) -> None:
    subscription = subscription_of(call)
    apply_subscription_flags(call, subscription)
    low, high = call.arg("--min-retry-delay"), call.arg("--max-retry-delay")
    if low is not None or high is not None:
        low, high = low if low is not None else 10, high if high is not None else 600
        if not 0 <= low <= high <= 600:
            fail("INVALID_ARGUMENT", "retry delays must satisfy 0 <= min <= max <= 600s")
        subscription["retryPolicy"] = {"minimumBackoff": f"{low}s", "maximumBackoff": f"{high}s"}
    dead = call.arg("--dead-letter-topic")
    if dead is not None:
        attempts = call.arg("--max-delivery-attempts", 5)
        if not 5 <= attempts <= 100:
            fail("INVALID_ARGUMENT", "max delivery attempts must be between 5 and 100")
        topic_of(call, dead)
        subscription["deadLetterPolicy"] = {
            "deadLetterTopic": f"projects/{call.project}/topics/{short(dead)}",
            "maxDeliveryAttempts": attempts,
        }
    if call.arg("--clear-dead-letter-policy"):
        subscription.pop("deadLetterPolicy", None)
    event("update", "subscription", short(subscription["name"]))


@command("gcloud.pubsub.subscriptions.add-iam-policy-binding")
def subscriptions_add_binding(call: Call) -> Json:
    subscription = subscription_of(call)
    return call.add_binding(f"subscription:{short(subscription['name'])}", "subscription")


# -- Cloud Storage


def bucket_of(call: Call, url: str) -> Json:
    name = url.removeprefix("gs://").rstrip("/")
    bucket: Json | None = call.state["buckets"].get(name)
    if bucket is None:
        fail("NOT_FOUND", f"gs://{name} not found: 404.")
    return bucket


def apply_bucket_flags(call: Call, bucket: Json) -> None:
    # Labels and soft delete: gcloud 528 surface/storage/buckets/create.py and update.py.
    labels = bucket.get("labels") or {}
    for key in call.arg("--remove-labels") or []:
        labels.pop(key, None)
    labels.update(call.arg("--update-labels") or {})
    if labels:
        bucket["labels"] = labels
    else:
        bucket.pop("labels", None)
    duration = call.arg("--soft-delete-duration")
    if call.arg("--clear-soft-delete"):
        duration = 0
    if duration is not None:
        bucket["soft_delete_policy"] = {"retentionDurationSeconds": str(int(duration))}
    if call.arg("--uniform-bucket-level-access") is not None:
        bucket["uniform_bucket_level_access"] = bool(call.arg("--uniform-bucket-level-access"))
    if call.arg("--public-access-prevention") is not None:
        enforced = call.arg("--public-access-prevention")
        bucket["public_access_prevention"] = "enforced" if enforced else "inherited"
    lifecycle_file = call.arg("--lifecycle-file")
    if lifecycle_file is not None:
        # Read and checked by gcloud's own code (metadata_field_converters.process_lifecycle).
        answer = ask_parser({"op": "lifecycle", "path": str(Path(lifecycle_file).resolve())})
        if not answer["ok"]:
            fail("INVALID_ARGUMENT", answer["error"])
        bucket["lifecycle_config"] = answer["lifecycle"]


@command("gcloud.storage.buckets.describe")
def buckets_describe(call: Call) -> Json:
    return bucket_of(call, call.positional("URL"))


@command("gcloud.storage.buckets.list")
def buckets_list(call: Call) -> list[Json]:
    return [call.state["buckets"][name] for name in sorted(call.state["buckets"])]


@command("gcloud.storage.buckets.create")
def buckets_create(call: Call) -> None:
    for url in call.positional("URL"):
        name = url.removeprefix("gs://").rstrip("/")
        if name in call.state["buckets"]:
            fail("CONFLICT", f"HTTPError 409: The requested bucket name {name} is not available.")
        bucket = fx.bucket(name, call.arg("--location", "US"))
        apply_bucket_flags(call, bucket)
        call.state["buckets"][name] = bucket
        event("create", "bucket", name)


@command("gcloud.storage.buckets.update")
def buckets_update(call: Call) -> None:
    for url in call.positional("URL"):
        bucket = bucket_of(call, url)
        apply_bucket_flags(call, bucket)
        event("update", "bucket", bucket["name"])


@command("gcloud.storage.buckets.add-iam-policy-binding")
def buckets_add_binding(call: Call) -> Json:
    bucket = bucket_of(call, call.positional("URL"))
    return call.add_binding(f"bucket:{bucket['name']}", "bucket")


@command("gcloud.storage.rm")
def storage_rm(call: Call) -> None:
    for url in call.positional("URLS"):
        bucket = bucket_of(call, url)
        if not call.arg("--recursive") or url.removeprefix("gs://").strip("/") != bucket["name"]:
            fail("INVALID_ARGUMENT", "the rehearsal only removes whole buckets (rm --recursive)")
        del call.state["buckets"][bucket["name"]]
        call.state["iam"].pop(f"bucket:{bucket['name']}", None)
        event("delete", "bucket", bucket["name"])


# -- IAM service accounts
