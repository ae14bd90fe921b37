"""The error table (SPEC §2.1): each domain error carries its code and HTTP status."""

from __future__ import annotations

from datetime import datetime
from http import HTTPStatus


class TinkerbellError(Exception):
    """A failure the user can be told about, with the code of SPEC §2.1."""

    code = "internal"
    http_status = HTTPStatus.INTERNAL_SERVER_ERROR

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidArgument(TinkerbellError):
    code = "invalid_argument"
    http_status = HTTPStatus.BAD_REQUEST


class Unauthenticated(TinkerbellError):
    code = "unauthenticated"
    http_status = HTTPStatus.UNAUTHORIZED


class NotFound(TinkerbellError):
    code = "not_found"
    http_status = HTTPStatus.NOT_FOUND


class MethodNotAllowed(TinkerbellError):
    code = "method_not_allowed"
    http_status = HTTPStatus.METHOD_NOT_ALLOWED

    def __init__(self, message: str, *, allowed: tuple[str, ...]) -> None:
        super().__init__(message)
        self.allowed = allowed


class FailedPrecondition(TinkerbellError):
    code = "failed_precondition"
    http_status = HTTPStatus.CONFLICT


class PayloadTooLarge(TinkerbellError):
    code = "payload_too_large"
    http_status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


class UnsupportedMediaType(TinkerbellError):
    code = "unsupported_media_type"
    http_status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE


class RateLimited(TinkerbellError):
    code = "rate_limited"
    http_status = HTTPStatus.TOO_MANY_REQUESTS

    def __init__(
        self, message: str, *, retry_after_s: int, resets_at: datetime | None = None
    ) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.resets_at = resets_at


class BudgetExhausted(RateLimited):
    """A day budget in EUR is spent (or reserved by unfinished tasks) until ``resets_at``."""

    code = "budget_exhausted"


class Internal(TinkerbellError):
    code = "internal"
    http_status = HTTPStatus.INTERNAL_SERVER_ERROR


class Unavailable(TinkerbellError):
    code = "unavailable"
    http_status = HTTPStatus.SERVICE_UNAVAILABLE


class Paused(Unavailable):
    """The operator's kill switch: no new tasks for now; tasks in flight finish."""

    code = "paused"
