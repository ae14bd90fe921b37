"""The Pydantic models of SPEC §3, one per concept, used everywhere.

``MarketingStrategy`` is Gemini's ``response_schema``; ``TaskRecord`` is the
Firestore document; ``TaskPublic`` is what the owner sees over HTTP; the
request models are what a client may send (``extra="forbid"``).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# ---------------------------------------------------------------- strategy


class StrategyStep(BaseModel):
    step_number: int = Field(ge=1, description="Position of the step in the plan, from 1.")
    description: str = Field(description="What to do in this step, concretely.")


class Channel(BaseModel):
    name: str = Field(description="Marketing channel, e.g. 'Instagram', 'SEO', 'Radio'.")
    rationale: str = Field(description="Why this channel reaches the target audience.")
    budget_share: float = Field(
        ge=0, le=1, description="Share of the total budget for this channel, from 0 to 1."
    )


class MarketingStrategy(BaseModel):
    """The strategy Gemini must produce; every description is shown to the model."""

    strategy_name: str = Field(description="Short, memorable name of the strategy.")
    target_audience: str = Field(description="Who the strategy addresses, specifically.")
    required_budget: float = Field(ge=0, description="Total budget needed, in EUR.")
    steps: list[StrategyStep] = Field(
        min_length=1, description="Ordered steps to carry out the strategy."
    )
    summary: str | None = Field(default=None, description="Two or three sentence overview.")
    key_messages: list[str] = Field(
        default_factory=list, description="Core messages the campaign repeats."
    )
    channels: list[Channel] = Field(
        default_factory=list, description="Channels to use, with budget shares summing to 1."
    )
    kpis: list[str] = Field(default_factory=list, description="Measurable success indicators.")
    timeline_weeks: int | None = Field(
        default=None, ge=1, description="Duration of the campaign in weeks."
    )
    visual_brief: str | None = Field(
        default=None,
        description="What a preview image for this campaign should show (no text in the image).",
    )


class StrategyDraft(BaseModel):
    """A strategy still being written (``shared.drafts``): the fields of
    MarketingStrategy that have arrived complete and valid, each optional."""

    strategy_name: str | None = None
    target_audience: str | None = None
    required_budget: float | None = None
    steps: list[StrategyStep] | None = None
    summary: str | None = None
    key_messages: list[str] | None = None
    channels: list[Channel] | None = None
    kpis: list[str] | None = None
    timeline_weeks: int | None = None
    visual_brief: str | None = None


# ---------------------------------------------------------------- requests


class StrategyRequest(BaseModel):
    """What a client may send to POST /v1/strategies (validated in ``shared.validation``)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    brief: str
    urls: list[str] = Field(default_factory=list)
    upload_id: str | None = None
    language: str = "en"
    image: bool = True
    grounding: bool = False
    # POSTed a signed event when the task ends (docs/webhooks.md).
    webhook_url: str | None = None


class PdfRef(BaseModel):
    gcs_uri: str
    size_bytes: int = Field(ge=0)
    sha256: str
    filename: str | None = None


class RevisionRequest(BaseModel):
    """What a client may send to POST /v1/tasks/{task_id}/revisions."""

    model_config = ConfigDict(extra="forbid", strict=True)

    instruction: str
    image: bool = True
    language: str | None = None  # default: the parent's
    webhook_url: str | None = None


class Revision(BaseModel):
    """What makes a task a revision: the strategy it starts from and what to change."""

    parent_task_id: str
    instruction: str
    strategy: MarketingStrategy


class TaskRequest(BaseModel):
    """The validated request, as stored on the task."""

    brief: str
    urls: list[str] = Field(default_factory=list)
    language: str = "en"
    image: bool = True
    grounding: bool = False
    pdf: PdfRef | None = None
    # A revision of an earlier strategy: the same sources, the parent's strategy and
    # the instruction (shared/prompts.py).
    revision: Revision | None = None
    webhook_url: str | None = None


# ---------------------------------------------------------------- task


class TaskStatus(StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED)


class Progress(BaseModel):
    stage: str
    message: str = ""
    percent: int = Field(default=0, ge=0, le=100)


class ImageRef(BaseModel):
    gcs_uri: str
    mime_type: str
    width: int | None = None
    height: int | None = None


class SourceKind(StrEnum):
    URL_CONTEXT = "url_context"  # a URL of the request, read with the URL tool
    SEARCH = "search"  # a web page Google Search found (grounding)


class Source(BaseModel):
    """A web source of the strategy.

    For ``search`` sources Google gives an expiring redirect link (``url``) and the
    site's domain (``domain``), not the page's own address or title.
    """

    url: str
    title: str | None = None
    status: str
    kind: SourceKind = SourceKind.URL_CONTEXT
    domain: str | None = None


class Usage(BaseModel):
    """Billed tokens: ``output_tokens`` includes the model's thinking
    (``thoughts_tokens``, billed as output), so prompt + output = total. Of the prompt,
    ``tool_use_prompt_tokens`` are what the tools read (pages, search results); of the
    output, ``image_tokens`` are the generated images' (priced per image)."""

    prompt_tokens: int = 0
    output_tokens: int = 0
    thoughts_tokens: int = 0
    total_tokens: int = 0
    tool_use_prompt_tokens: int = 0
    image_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            **{name: getattr(self, name) + getattr(other, name) for name in Usage.model_fields}
        )


class ModelPrice(BaseModel):
    """A model's list prices in EUR (settings ``GEMINI_PRICES``, docs/costs.md)."""

    model_config = ConfigDict(extra="forbid")

    input_per_million: float = Field(ge=0)
    # Thinking included: it is billed as output.
    output_per_million: float = Field(ge=0)
    # What the URL and search tools read into the prompt.
    tool_use_per_million: float = Field(ge=0)
    per_image: float = Field(default=0.0, ge=0)
    # Google Search grounding, per request that used it.
    per_grounded_request: float = Field(default=0.0, ge=0)


class Cost(BaseModel):
    """What a task cost, from its real usage and the price table."""

    amount: float = Field(ge=0)
    currency: str = "EUR"


class TaskResult(BaseModel):
    strategy: MarketingStrategy
    image: ImageRef | None = None
    image_error: TaskError | None = None
    sources: list[Source] = Field(default_factory=list)
    # Google Search suggestions as Google renders them (HTML): shown with a grounded
    # strategy, as the Gemini API's terms require.
    search_entry_point: str | None = None
    model: str
    usage: Usage
    # Summed over the task's paid Gemini answers (shared/costs.py).
    cost: Cost | None = None


class TaskError(BaseModel):
    code: str
    message: str
    retryable: bool = False


class WebhookState(StrEnum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"  # every retry failed: given up to the dead-letter topic


class WebhookAttempt(BaseModel):
    """One POST of a task's event: when, the receiver's status code (None: no answer,
    ``error`` says why) and how long it took."""

    at: datetime
    status_code: int | None = None
    latency_ms: int = 0
    error: str | None = None

    @property
    def delivered(self) -> bool:
        """A 2xx: the receiver took the event (a 3xx is not followed, so not one)."""
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookDelivery(BaseModel):
    """The delivery of a task's end to its webhook_url (shared/webhooks.py), set when the
    task ends: one event, whose id every retry sends again."""

    event_id: str
    event_type: str
    state: WebhookState = WebhookState.PENDING
    # The next attempt is not made before this; None once delivered or given up.
    due_at: datetime | None = None
    # An attempt is sending until then: another delivery of the message waits.
    sending_until: datetime | None = None
    attempts: list[WebhookAttempt] = Field(default_factory=list)
    finished_at: datetime | None = None


class TaskPublic(BaseModel):
    """A task as its owner sees it (GET /v1/tasks/{id})."""

    task_id: str
    uid: str
    status: TaskStatus
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    request: TaskRequest
    attempts: int = 0
    progress: Progress | None = None
    # While PROCESSING: the strategy as far as Gemini has written it (about once a
    # second); gone once the task is finished.
    draft: StrategyDraft | None = None
    result: TaskResult | None = None
    error: TaskError | None = None
    # Versions (issue 19): a revision's parent, the first task of its line (itself for
    # a first version; None on tasks made before versions) and its number (root: 1).
    parent_task_id: str | None = None
    root_task_id: str | None = None
    version: int = 1
    # Set when a task with a webhook_url ends: the event's delivery and its attempts.
    webhook: WebhookDelivery | None = None


class TaskRecord(TaskPublic):
    """The Firestore document: the public task plus the worker's bookkeeping."""

    lease_expires_at: datetime | None = None
    # Which processing attempt holds the lease; a late writer with another id loses.
    lease_owner: str | None = None
    # Error codes of the attempts that failed and gave the task back to Pub/Sub.
    attempt_errors: list[str] = Field(default_factory=list)
    # What earlier attempts paid for (the strategy, then the preview): a takeover
    # resumes from here instead of paying again.
    checkpoint: TaskResult | None = None
    # The shard of the project-wide counters this task counts in (shared/quotas.py);
    # None for a task created before they were sharded (it counts in none).
    counter_shard: int | None = None
    # The day budgets' hold (shared/quotas.py): the UTC day it counts in, the worst
    # case reserved at submit (micro-EUR), and what attempts that failed after a paid
    # answer spent; settled with the real cost when the task ends.
    budget_day: int | None = None
    budget_reserved_micros: int = 0
    spent_micros: int = 0
    # Signed in anonymously at submit: the lower per-user day budget applied.
    anonymous_user: bool = False
    # Set when the task finishes: the TTL policy deletes it then (TASK_RETENTION_DAYS).
    expires_at: datetime | None = None

    def public(self) -> TaskPublic:
        return TaskPublic.model_validate(self.model_dump(include=set(TaskPublic.model_fields)))


# ---------------------------------------------------------------- wire


class TaskAccepted(BaseModel):
    """The 202 answer of POST /v1/strategies."""

    task_id: str
    status: TaskStatus
    status_url: str


class VersionSummary(BaseModel):
    """One version of a strategy in GET /v1/tasks/{task_id}/versions."""

    task_id: str
    version: int
    parent_task_id: str | None = None
    status: TaskStatus
    created_at: datetime
    instruction: str | None = None
    strategy_name: str | None = None


class VersionList(BaseModel):
    root_task_id: str
    versions: list[VersionSummary]


class ShareRequest(BaseModel):
    """POST /v1/tasks/{id}/shares: how long the link lives (default 30 days, at most a year)."""

    model_config = ConfigDict(extra="forbid")

    expires_in_days: int = Field(default=30, ge=1, le=365)


class Share(BaseModel):
    """A read-only link to a finished strategy, as its owner sees it."""

    share_id: str
    task_id: str
    url: str
    created_at: datetime
    expires_at: datetime


class ShareList(BaseModel):
    shares: list[Share]


class SharedStrategy(BaseModel):
    """GET /v1/shared/{share_id}, for anyone with the link: the strategy and what it
    stands on, never the brief, the PDF, the uid, usage or cost."""

    strategy: MarketingStrategy
    language: str
    image_url: str | None = None
    sources: list[Source] = Field(default_factory=list)
    version: int = 1
    expires_at: datetime


class Erasure(BaseModel):
    """DELETE /v1/me: what was erased; ``done`` False: time ran out, call again."""

    done: bool
    tasks: int = 0
    objects: int = 0
    upload_sessions: int = 0
    idempotency_keys: int = 0
    counters: int = 0
    shares: int = 0
    webhook_secret: bool = False
    auth_user: bool = False


class WebhookSecret(BaseModel):
    """POST /v1/webhooks/secret: the key the user's events are signed with."""

    secret: str
    created_at: datetime


class WebhookEvent(BaseModel):
    """The body POSTed to a task's webhook_url when it ends (Standard Webhooks headers:
    ``webhook-id`` is ``event_id``). Nothing the receiver could not ask for itself."""

    type: Literal["task.completed", "task.failed", "task.cancelled"]
    event_id: str
    task_id: str
    status: TaskStatus
    created_at: datetime
    completed_at: datetime | None = None
    version: int = 1
    parent_task_id: str | None = None
    root_task_id: str | None = None
    language: str
    status_url: str
    strategy: MarketingStrategy | None = None
    error: TaskError | None = None


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None
    # budget_exhausted: when the day budget starts again (UTC midnight).
    resets_at: datetime | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class TaskMessage(BaseModel):
    """The Pub/Sub message data: everything a worker needs to find its task."""

    model_config = ConfigDict(extra="ignore")

    task_id: str = Field(min_length=1, max_length=128)


TaskResult.model_rebuild()
