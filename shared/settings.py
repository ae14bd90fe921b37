"""One settings object, read from the environment (SPEC §6).

Every default (model ids, limits, timeouts, retry counts) lives here and
nowhere else. The validators refuse combinations that would break the
delivery guarantees of SPEC §4: a processing attempt must fit in its lease,
and the lease in the subscription's ack deadline.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.models import ModelPrice

MIB = 1024 * 1024

# Env vars of the Google client libraries that point them at local emulators.
EMULATOR_VARIABLES = (
    "FIRESTORE_EMULATOR_HOST",
    "PUBSUB_EMULATOR_HOST",
    "STORAGE_EMULATOR_HOST",
    "FIREBASE_AUTH_EMULATOR_HOST",
)
# The google-genai SDK uploads files in chunks of this size.
FILE_API_CHUNK_BYTES = 8 * MIB
# Writes of one attempt retried like its outcome (OUTCOME_WRITE_TIMEOUT_S each): the two
# checkpoints (the paid strategy, then the preview) and leaving a shared PDF's record.
CHECKPOINT_WRITES = 3
# Progress writes one attempt may wait for: its four stages, then the last one in flight.
PROGRESS_WAITS = 5
# The longest timeout Cloud Functions allows an event-driven function (the worker).
MAX_EVENT_FUNCTION_TIMEOUT_S = 540
# List prices of the default models (docs/costs.md, dated there): USD list prices of the
# Gemini API at 0.92 EUR a USD. An operator sets GEMINI_PRICES (JSON) for other models or
# prices; while a day budget is on, deploy refuses a model without a price and the
# submit function answers 503 for it (shared/costs.py).
DEFAULT_GEMINI_PRICES = {
    "gemini-3.8-flash": ModelPrice(
        input_per_million=0.69,
        output_per_million=3.45,
        tool_use_per_million=0.69,
        per_grounded_request=0.0322,
    ),
    "gemini-nano-banana-2.1": ModelPrice(
        input_per_million=0.46,
        output_per_million=2.76,
        tool_use_per_million=0.46,
        per_image=0.0617,
    ),
}
# Projects that exist only in emulators carry this prefix (Firebase convention).
DEMO_PROJECT_PREFIX = "demo-"
# Vertex AI's API versions: v1 for GA features (all the worker uses), v1beta1 for previews.
VERTEX_API_VERSIONS = ("v1", "v1beta1")
VERTEX_DEFAULT_API_VERSION = "v1"
# The largest PDF Vertex AI takes from Cloud Storage (its document-understanding limits).
VERTEX_MAX_PDF_BYTES = 50_000_000


class Settings(BaseSettings):
    # hide_input_in_errors: a refused configuration must not print GEMINI_API_KEY.
    model_config = SettingsConfigDict(
        env_prefix="", case_sensitive=False, extra="ignore", hide_input_in_errors=True
    )

    google_cloud_project: str = "demo-tinkerbell"
    tasks_collection: str = "tasks"
    idempotency_collection: str = "idempotency_keys"
    gemini_files_collection: str = "gemini_files"
    upload_sessions_collection: str = "upload_sessions"
    upload_session_ttl_s: int = Field(default=3600, ge=60)
    max_upload_sessions_per_user_per_hour: int = Field(default=20, ge=0)
    # The whole project's, so that free anonymous users cannot hold open sessions (and
    # their objects) without bound; 0 turns it off.
    max_upload_sessions_per_hour: int = Field(default=1000, ge=0)
    tasks_topic: str = "tinkerbell-tasks"
    dead_letter_topic: str = "tinkerbell-tasks-dead"
    uploads_bucket: str = ""  # empty: "<project>-uploads"
    status_base_url: str = "http://127.0.0.1:8003"
    # Browser origins (scheme://host[:port], comma-separated) the HTTP functions answer
    # CORS for; empty: none. The local stack sets its web app's origin.
    cors_origins: str = ""

    gemini_api_key: SecretStr | None = None
    gemini_base_url: str | None = None
    gemini_api_version: str = "v1beta"
    # Which Gemini service the worker calls (docs/gemini.md, "Vertex AI"): "developer",
    # the Gemini Developer API with GEMINI_API_KEY; or "vertex", Vertex AI in the project
    # GEMINI_VERTEX_PROJECT (empty: GOOGLE_CLOUD_PROJECT) at GEMINI_VERTEX_LOCATION, as
    # the function's own identity (Application Default Credentials). On Vertex AI no key
    # is sent (a GEMINI_API_KEY that is set is ignored), PDFs go as gs:// URIs instead of
    # through the File API, and the API version is GEMINI_API_VERSION when set, else v1.
    # GEMINI_BASE_URL still points either backend at another server (the stand-in).
    gemini_backend: Literal["developer", "vertex"] = "developer"
    gemini_vertex_project: str = ""
    # The Gemini 3 models are served at "global" (some also at the "us"/"eu" multi-regions,
    # few or none in single regions): a region narrows where the model may run.
    gemini_vertex_location: str = Field(default="global", pattern=r"^[a-z][a-z0-9-]*[a-z0-9]$")

    @property
    def uses_vertex(self) -> bool:
        return self.gemini_backend == "vertex"

    @property
    def vertex_project(self) -> str:
        return self.gemini_vertex_project or self.google_cloud_project

    @property
    def gemini_version(self) -> str:
        """The API version the SDK calls: GEMINI_API_VERSION, or the backend's default."""
        if self.uses_vertex and "gemini_api_version" not in self.model_fields_set:
            return VERTEX_DEFAULT_API_VERSION
        return self.gemini_api_version

    @model_validator(mode="after")
    def _check_gemini_backend(self) -> Settings:
        if not self.uses_vertex:
            return self
        if not self.vertex_project.strip():
            raise ValueError(
                "GEMINI_BACKEND=vertex needs a project: set GEMINI_VERTEX_PROJECT "
                "(or GOOGLE_CLOUD_PROJECT)"
            )
        if self.gemini_version not in VERTEX_API_VERSIONS:
            raise ValueError(
                f"GEMINI_API_VERSION={self.gemini_api_version} is a Gemini Developer API "
                f"version; Vertex AI serves {' and '.join(VERTEX_API_VERSIONS)} (unset it "
                f"for {VERTEX_DEFAULT_API_VERSION})"
            )
        # Vertex AI reads at most 50 MB (10^6) of a PDF from Cloud Storage: the upload
        # limit follows unless it was set, and one set above is refused.
        for name in ("max_pdf_bytes", "max_upload_pdf_bytes"):
            if getattr(self, name) <= VERTEX_MAX_PDF_BYTES:
                continue
            if name in self.model_fields_set:
                raise ValueError(
                    f"{name.upper()}={getattr(self, name)} exceeds the {VERTEX_MAX_PDF_BYTES} "
                    "bytes of a PDF that Vertex AI reads from Cloud Storage"
                )
            setattr(self, name, VERTEX_MAX_PDF_BYTES)
        return self

    # Served, current ids (docs/gemini.md): the newest stable Flash, and the current
    # Nano Banana image model. `make check-gemini` checks that a key can use them.
    gemini_text_model: str = "gemini-3.8-flash"
    gemini_image_model: str = "gemini-nano-banana-2.1"
    # Whole-request deadlines (the SDK sends them as X-Server-Timeout). A thinking
    # model with a PDF and tools can take minutes: the product brief's client waits 180 s.
    gemini_strategy_timeout_s: float = Field(default=180.0, gt=0)
    gemini_image_timeout_s: float = Field(default=60.0, gt=0)
    # Tries of the strategy call inside one attempt. 1: a retryable failure ends the
    # attempt and Pub/Sub's backoff brings the task back (MAX_TASK_ATTEMPTS), which
    # keeps one attempt short enough for a deployed worker (540 s at most).
    gemini_strategy_max_attempts: int = Field(default=1, ge=1, le=10)
    # Tries of the image call and of File API requests (the SDK's own retries): a
    # failed image cannot come back through Pub/Sub once the strategy is paid.
    gemini_max_attempts: int = Field(default=2, ge=1, le=10)
    gemini_retry_initial_delay_s: float = Field(default=2.0, ge=0)
    gemini_retry_max_delay_s: float = Field(default=16.0, ge=0)
    gemini_retry_jitter_s: float = Field(default=1.0, ge=0)
    # Each 8 MiB chunk of a File API upload has its own deadline; then the File
    # API may take this long to make the PDF ACTIVE.
    gemini_upload_timeout_s: float = Field(default=20.0, gt=0)
    file_active_timeout_s: float = Field(default=45.0, gt=0)
    # A PDF's File API copy is kept this long after its last task ended, so that a revision
    # (or another task with the same PDF) uses it without uploading it again; the next
    # task with a PDF after that deletes it (Gemini does, 48 h after the upload, anyway).
    # 0: deleted as soon as its last task ends (docs/privacy.md: the default).
    gemini_file_keep_s: float = Field(default=0.0, ge=0, le=40 * 3600)
    # The preview's shape: the web app shows it 16:9.
    gemini_image_aspect_ratio: Literal[
        "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"
    ] = "16:9"

    max_brief_chars: int = Field(default=20_000, ge=1)
    max_instruction_chars: int = Field(default=2_000, ge=1)  # a revision's (issue 19)
    max_urls: int = Field(default=20, ge=0)
    max_url_chars: int = Field(default=2_048, ge=16)
    max_pdf_bytes: int = Field(default=30 * MIB, ge=1)
    # Through an upload session (POST /v1/uploads), beyond the request size limit.
    max_upload_pdf_bytes: int = Field(default=50 * MIB, ge=1)
    # The platform refuses HTTP requests above 32 MiB; the multipart body carries
    # the PDF plus a little form overhead.
    max_request_bytes: int = Field(default=32 * MIB - 64 * 1024, ge=1)
    # A JSON body (no PDF: it comes by multipart or an upload session) is refused past
    # this before it is read: parsing costs ~25x its size in memory (issue 18).
    max_json_body_bytes: int = Field(default=256 * 1024, ge=1024)

    idempotency_ttl_hours: int = Field(default=24, ge=1)
    # A key whose task is not made yet (an instance may die in between) frees itself
    # after this long.
    idempotency_pending_s: int = Field(default=60, ge=5)
    # A revoked token (or a disabled user) is refused at most this long after the
    # revocation: the Auth API is asked once per token per interval, not per request.
    token_revocation_recheck_s: float = Field(default=60.0, ge=0)
    # Firebase App Check (shared/app_check.py): when enforced, the HTTP functions refuse a
    # request without a valid X-Firebase-AppCheck token of this project (its number is
    # in the token's issuer). The key set is cached this long, as Firebase advises.
    app_check_enforced: bool = False
    app_check_project_number: str = Field(default="", pattern=r"^[0-9]*$")
    app_check_jwks_url: str = "https://firebaseappcheck.googleapis.com/v1/jwks"
    app_check_jwks_cache_s: float = Field(default=6 * 3600.0, gt=0)
    app_check_jwks_timeout_s: float = Field(default=10.0, gt=0)
    # Replay protection (shared/app_check.py): with App Check enforced, a submit (POST
    # /v1/strategies) needs a limited-use token (one with a ``jti``) and consumes it: a
    # document per token in this collection, deleted by a TTL policy after the token's exp.
    app_check_consume_submits: bool = True
    app_check_tokens_collection: str = "app_check_tokens"
    # Caps on the accept path (shared/quotas.py; 0 turns a cap off): per user, and for
    # the whole project (what Gemini may cost when many users submit at once).
    max_tasks_per_user_per_minute: int = Field(default=30, ge=0)
    max_tasks_in_flight_per_user: int = Field(default=10, ge=0)
    max_tasks_per_minute: int = Field(default=300, ge=0)
    max_tasks_in_flight: int = Field(default=500, ge=0)
    quota_collection: str = "quota_counters"
    # The project-wide counters are sharded (ADR 0009): at 100 tasks a second the
    # in-flight count takes 200 writes a second, under one a second on each of 256.
    quota_shards: int = Field(default=256, ge=1, le=1000)
    quota_shards_collection: str = "quota_shards"
    # An instance that saw the project's in-flight count or day budget refuse a task
    # refuses the like from memory this long, with no write (a minute's count: until the
    # minute ends). 0: ask Firestore every time.
    project_full_memo_s: float = Field(default=1.0, ge=0, le=60)
    # Spend (shared/costs.py, ADR 0010): day budgets in EUR (0 turns one off), reserved
    # at submit with the task's worst case and settled with its real cost. Anonymous
    # users (free to mint with the public web key) get a lower one.
    daily_budget_eur: float = Field(default=100.0, ge=0)
    daily_budget_per_user_eur: float = Field(default=5.0, ge=0)
    daily_budget_per_anonymous_user_eur: float = Field(default=2.0, ge=0)
    gemini_prices: dict[str, ModelPrice] = Field(default_factory=lambda: DEFAULT_GEMINI_PRICES)
    # Sent as max_output_tokens on both calls: it bounds thinking and answer together,
    # and so the worst case of a task's output.
    gemini_max_output_tokens: int = Field(default=32_768, ge=1024)
    # The most input a task with a PDF, URLs or search can bill: the text model's input
    # limit (Gemini refuses a longer prompt, tools' pages included, unbilled).
    gemini_max_input_tokens: int = Field(default=1_048_576, ge=1)
    # Read-only links (shared/shares.py): their documents, the web page they point to
    # (default: the first CORS origin) and the lookups one client address may make a minute.
    shares_collection: str = "shares"
    share_base_url: str = ""
    share_lookups_per_client_per_minute: int = Field(default=60, ge=0)
    # Signed webhooks (shared/webhooks.py, docs/webhooks.md): the end of a task that
    # names a webhook_url is published to WEBHOOKS_TOPIC; deliver_webhook POSTs the event,
    # cut after WEBHOOK_TIMEOUT_S, and retries after each wait of WEBHOOK_RETRY_SCHEDULE_S
    # (JSON list; about a day in all), then gives up to WEBHOOK_DEAD_LETTER_TOPIC.
    webhooks_topic: str = "tinkerbell-webhooks"
    webhook_dead_letter_topic: str = "tinkerbell-webhooks-dead"
    webhook_secrets_collection: str = "webhook_secrets"
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=60)
    webhook_retry_schedule_s: list[float] = Field(
        default_factory=lambda: [
            10.0,
            60.0,
            300.0,
            1800.0,
            3600.0,
            7200.0,
            14400.0,
            28800.0,
            28800.0,
        ],
        max_length=30,
    )
    # A delivery still due this long after its time lost its message (a crash between the
    # task's end and the publish): the sweeper publishes it again.
    webhook_stall_s: float = Field(default=1800.0, ge=1)
    # http://127.0.0.1:PORT receivers, for the local stack only (refused outside demo-*).
    webhook_allow_loopback: bool = False
    # DELETE /v1/me erases this long, then answers done=false (202): call again to go on.
    erasure_budget_s: float = Field(default=20.0, gt=0, le=300)
    # The operator's kill switch: new tasks get 503 paused, tasks in flight finish. Set
    # here (a redeploy) or at once in Firestore: {service_config_collection}/service
    # {paused: true}, read at most every SERVICE_CONFIG_CACHE_S by each instance.
    paused: bool = False
    service_config_collection: str = "service_config"
    service_config_cache_s: float = Field(default=5.0, ge=0)

    # The worker's size (infra/capacity.py, docs/capacity.md): tasks an instance runs
    # at once, and its instances when the Gemini tier is not given; with the tier's
    # requests and tokens a minute, deploy sizes the worker to them and refuses a
    # MAX_TASKS_PER_MINUTE they cannot serve.
    worker_concurrency: int = Field(default=8, ge=1, le=1000)
    worker_max_instances: int = Field(default=100, ge=1, le=1000)
    gemini_requests_per_minute: int = Field(default=0, ge=0)
    gemini_tokens_per_minute: int = Field(default=0, ge=0)

    # The worker's function timeout too; event-driven functions allow at most 540 s.
    lease_seconds: int = Field(default=520, ge=1)
    ack_deadline_seconds: int = Field(default=600, ge=10, le=600)
    max_task_attempts: int = Field(default=6, ge=1)
    # A paid outcome is written with retries (on a contended or aborted transaction)
    # for up to this long before the attempt gives up: part of the lease's budget.
    outcome_write_timeout_s: float = Field(default=5.0, ge=0)
    # Pub/Sub subscription retry policy and dead-lettering (infra and the local
    # stack both read these, so the numbers live in one place).
    retry_min_backoff_s: int = Field(default=10, ge=0, le=600)
    retry_max_backoff_s: int = Field(default=600, ge=0, le=600)
    max_delivery_attempts: int = Field(default=20, ge=5, le=100)
    # A message whose task never appears is retried for this long, then dropped.
    # A PENDING task older than this has lost its message: the sweeper republishes it.
    pending_timeout_s: float = Field(default=900.0, ge=1)
    orphan_message_max_age_s: float = Field(default=300.0, ge=0)
    # Progress is advisory; listeners are billed per write.
    progress_min_interval_s: float = Field(default=1.0, ge=0)
    # A progress write that takes longer is dropped; an attempt waits for at most
    # PROGRESS_WAITS of them (its stages, then the last one in flight): in the budget.
    progress_write_timeout_s: float = Field(default=2.0, gt=0)
    publish_timeout_s: float = Field(default=10.0, gt=0)
    # The scheduled sweeper's function timeout, and so its job's attempt deadline.
    sweep_timeout_s: int = Field(default=300, ge=15, le=1800)
    # Bucket lifecycle (infra/deploy.sh): uploaded PDFs (task sources and abandoned
    # upload sessions) and previews are deleted after this many days.
    upload_retention_days: int = Field(default=7, ge=1)
    preview_retention_days: int = Field(default=30, ge=1)
    # A finished task's document is deleted this long after it finished (a TTL policy on
    # tasks.expires_at; docs/privacy.md).
    task_retention_days: int = Field(default=365, ge=1, le=3650)
    log_level: str = "INFO"

    @property
    def allowed_origins(self) -> frozenset[str]:
        return frozenset(o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip())

    def status_url(self, task_id: str) -> str:
        """Where the owner reads a task (GET /v1/tasks/{task_id})."""
        return f"{self.status_base_url.rstrip('/')}/v1/tasks/{task_id}"

    @property
    def bucket_name(self) -> str:
        return self.uploads_bucket or f"{self.google_cloud_project}-uploads"

    @property
    def is_deployed(self) -> bool:
        """Running as a deployed function (Cloud Run sets K_SERVICE)."""
        return bool(os.environ.get("K_SERVICE"))

    @property
    def is_demo_project(self) -> bool:
        return self.google_cloud_project.startswith(DEMO_PROJECT_PREFIX)

    def gemini_call_worst_case_s(self, timeout_s: float, attempts: int) -> float:
        """Longest one Gemini call can take with all its SDK retries."""
        delays = sum(
            min(self.gemini_retry_initial_delay_s * 2**i, self.gemini_retry_max_delay_s)
            + self.gemini_retry_jitter_s
            for i in range(attempts - 1)
        )
        return attempts * timeout_s + delays

    def strategy_call_worst_case_s(self) -> float:
        return self.gemini_call_worst_case_s(
            self.gemini_strategy_timeout_s, self.gemini_strategy_max_attempts
        )

    def image_call_worst_case_s(self) -> float:
        return self.gemini_call_worst_case_s(self.gemini_image_timeout_s, self.gemini_max_attempts)

    def redelivery_span_s(self, deliveries: int | None = None) -> float:
        """How long Pub/Sub's backoff delays the first ``deliveries`` of a refused
        message (all of them, before it is dead-lettered, by default)."""
        count = self.max_delivery_attempts if deliveries is None else deliveries
        return sum(
            min(self.retry_min_backoff_s * 2**i, self.retry_max_backoff_s) for i in range(count - 1)
        )

    def pdf_upload_worst_case_s(self) -> float:
        """The PDF's File API budget: one timeout per chunk of the largest PDF, then
        processing. Not a sum of every request's worst case (the SDK re-posts a chunk up
        to 3 times with 1/2/4 s sleeps): shared/gemini_files.py holds the whole upload,
        every request in it, to this budget with a timer of its own."""
        chunks = -(-max(self.max_pdf_bytes, self.max_upload_pdf_bytes) // FILE_API_CHUNK_BYTES)
        return chunks * self.gemini_upload_timeout_s + self.file_active_timeout_s

    def attempt_worst_case_s(self) -> float:
        """Longest one processing attempt can take: PDF upload, strategy, image, the
        progress writes it waits for, its checkpoints and writing the outcome."""
        return (
            self.pdf_upload_worst_case_s()
            + self.strategy_call_worst_case_s()
            + self.image_call_worst_case_s()
            + PROGRESS_WAITS * self.progress_write_timeout_s
            + (CHECKPOINT_WRITES + 1) * self.outcome_write_timeout_s
        )

    @model_validator(mode="after")
    def _check_budgets(self) -> Settings:
        worst = self.attempt_worst_case_s()
        if worst > self.lease_seconds:
            raise ValueError(
                f"LEASE_SECONDS={self.lease_seconds} is shorter than the worst case of one "
                f"processing attempt ({worst:.0f} s from the GEMINI_*_TIMEOUT_S deadlines, "
                "the *_MAX_ATTEMPTS tries and the retry delays): a live attempt could lose "
                "its lease"
            )
        if self.is_deployed and self.lease_seconds > MAX_EVENT_FUNCTION_TIMEOUT_S:
            raise ValueError(
                f"LEASE_SECONDS={self.lease_seconds} exceeds {MAX_EVENT_FUNCTION_TIMEOUT_S} s, "
                "the longest timeout of an event-driven function: the platform would end a "
                "live attempt; lower the GEMINI_*_TIMEOUT_S deadlines or tries instead"
            )
        if self.lease_seconds > self.ack_deadline_seconds:
            raise ValueError(
                f"LEASE_SECONDS={self.lease_seconds} exceeds ACK_DEADLINE_SECONDS="
                f"{self.ack_deadline_seconds}: Pub/Sub would redeliver during a live lease"
            )
        # A worker that dies leaves its lease to expire; the takeover then needs one
        # more whole attempt before the message may be given up.
        needed = self.lease_seconds + worst
        if self.redelivery_span_s() <= needed:
            raise ValueError(
                f"Pub/Sub gives up after {self.redelivery_span_s():.0f} s of retries "
                f"(RETRY_MIN/MAX_BACKOFF_S, MAX_DELIVERY_ATTEMPTS), within {needed:.0f} s "
                "(LEASE_SECONDS plus one attempt): a task whose worker died would be "
                "dead-lettered before another attempt could take it over and finish"
            )
        if self.max_delivery_attempts <= self.max_task_attempts:
            raise ValueError(
                f"MAX_DELIVERY_ATTEMPTS={self.max_delivery_attempts} must exceed "
                f"MAX_TASK_ATTEMPTS={self.max_task_attempts}: each attempt that Gemini "
                "fails retryably uses a delivery, so Pub/Sub would dead-letter the "
                "message before the task used its attempts"
            )
        if self.max_pdf_bytes > self.max_request_bytes:
            raise ValueError("MAX_PDF_BYTES must stay below MAX_REQUEST_BYTES")
        self._refuse_emulators_in_production()
        if self.is_deployed:
            self._refuse_development_defaults()
        return self

    @property
    def budgets_on(self) -> bool:
        return bool(
            self.daily_budget_eur
            or self.daily_budget_per_user_eur
            or self.daily_budget_per_anonymous_user_eur
        )

    @model_validator(mode="after")
    def _check_app_check(self) -> Settings:
        if self.app_check_enforced and not self.app_check_project_number:
            raise ValueError(
                "APP_CHECK_ENFORCED needs APP_CHECK_PROJECT_NUMBER (the project number of "
                "the Firebase project, which App Check tokens name as their issuer)"
            )
        return self

    @model_validator(mode="after")
    def _check_webhooks(self) -> Settings:
        if any(wait < 0 for wait in self.webhook_retry_schedule_s):
            raise ValueError("WEBHOOK_RETRY_SCHEDULE_S: every wait must be 0 seconds or more")
        # A loopback receiver is how the local stack tests deliveries; in a real project
        # it would let any user make the function call its own host.
        if self.webhook_allow_loopback and (self.is_deployed or not self.is_demo_project):
            raise ValueError(
                f"WEBHOOK_ALLOW_LOOPBACK is for the local stack: '{DEMO_PROJECT_PREFIX}*' "
                "projects only, never a deployed function"
            )
        return self

    def _refuse_emulators_in_production(self) -> None:
        # The Auth emulator makes firebase-admin accept unsigned tokens: a real
        # project configured with it would let anyone in. A deployed function is
        # production whatever its project is called.
        if self.is_demo_project and not self.is_deployed:
            return
        present = [name for name in EMULATOR_VARIABLES if os.environ.get(name)]
        if present:
            where = (
                "in a deployed function"
                if self.is_deployed
                else f"for the real project {self.google_cloud_project!r}"
            )
            raise ValueError(
                f"{', '.join(present)} set {where}: emulators are for the local stack and "
                f"'{DEMO_PROJECT_PREFIX}*' projects only"
            )

    def _refuse_development_defaults(self) -> None:
        """A deployed function must be told its project and public URL: the defaults
        (an emulator project, a 127.0.0.1 status URL) are for the local stack."""
        missing = [
            name.upper()
            for name in ("google_cloud_project", "status_base_url")
            if name not in self.model_fields_set
        ]
        if missing:
            raise ValueError(
                f"{' and '.join(missing)} must be set in a deployed function "
                "(the defaults are the local stack's)"
            )
        if self.is_demo_project:
            raise ValueError(
                f"GOOGLE_CLOUD_PROJECT={self.google_cloud_project!r} is an emulator-only "
                f"project ('{DEMO_PROJECT_PREFIX}*'), not one a function can be deployed to"
            )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once (tests call ``get_settings.cache_clear()``)."""
    return Settings()
