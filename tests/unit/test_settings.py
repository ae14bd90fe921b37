"""SPEC §4 timing rules and §6 configuration: ``shared.settings.Settings``."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from shared.settings import EMULATOR_VARIABLES, MIB, Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting comes from the caller's environment."""
    for name in EMULATOR_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for field in Settings.model_fields:
        monkeypatch.delenv(field.upper(), raising=False)
        monkeypatch.delenv(field, raising=False)


# ------------------------------------------------------------------ defaults


def test_defaults_are_valid_and_match_the_spec() -> None:
    settings = Settings()
    assert settings.google_cloud_project == "demo-tinkerbell"
    assert settings.tasks_collection == "tasks"
    assert settings.tasks_topic == "tinkerbell-tasks"
    assert settings.max_brief_chars == 20_000
    assert settings.max_urls == 20
    assert settings.max_url_chars == 2_048
    assert settings.max_pdf_bytes == 30 * MIB
    assert settings.max_pdf_bytes <= settings.max_request_bytes < 32 * MIB
    assert settings.ack_deadline_seconds <= 600
    assert settings.attempt_worst_case_s() <= settings.lease_seconds
    assert settings.lease_seconds <= settings.ack_deadline_seconds
    assert settings.status_base_url == "http://127.0.0.1:8003"
    assert settings.gemini_api_key is None
    assert settings.gemini_base_url is None


def test_bucket_name_defaults_to_project_uploads() -> None:
    assert Settings().bucket_name == "demo-tinkerbell-uploads"
    assert Settings(google_cloud_project="demo-x").bucket_name == "demo-x-uploads"
    assert Settings(uploads_bucket="my-bucket").bucket_name == "my-bucket"


def test_is_demo_project() -> None:
    assert Settings().is_demo_project
    assert not Settings(google_cloud_project="real-project").is_demo_project


# ------------------------------------------------------------------ worst case arithmetic


def test_default_models_are_served_current_ids() -> None:
    # docs/gemini.md: the newest stable Flash and the current Nano Banana image model.
    settings = Settings()
    assert settings.gemini_text_model == "gemini-3.8-flash"
    assert settings.gemini_image_model == "gemini-nano-banana-2.1"
    assert settings.gemini_image_aspect_ratio == "16:9"


def test_default_worst_case_arithmetic() -> None:
    settings = Settings()
    # The strategy: one try of 180 s (a retryable failure ends the attempt).
    assert settings.strategy_call_worst_case_s() == pytest.approx(180)
    # The image: 2 tries of 60 s, and one delay between them (2 + 1 s).
    assert settings.image_call_worst_case_s() == pytest.approx(2 * 60 + 3)
    # File API upload of the largest PDF (50 MiB: 7 chunks of 8 MiB, 20 s each),
    # 45 s until ACTIVE.
    assert settings.pdf_upload_worst_case_s() == pytest.approx(7 * 20 + 45)
    # Then 5 progress writes of up to 2 s, and up to 5 s of retries for each of the two
    # checkpoints, leaving the shared PDF's record and the outcome.
    assert settings.attempt_worst_case_s() == pytest.approx(185 + 180 + 123 + 10 + 20)
    assert settings.attempt_worst_case_s() <= settings.lease_seconds <= 540


@pytest.mark.parametrize(
    ("kwargs", "call", "attempt"),
    [
        pytest.param(
            {
                "gemini_image_timeout_s": 10,
                "gemini_max_attempts": 1,
                "gemini_retry_initial_delay_s": 5,
                "gemini_retry_jitter_s": 3,
            },
            10,
            185 + 180 + 10 + 10 + 20,
            id="one-attempt-no-delay",
        ),
        pytest.param(
            {
                "gemini_image_timeout_s": 10,
                "gemini_max_attempts": 2,
                "gemini_retry_initial_delay_s": 1,
                "gemini_retry_max_delay_s": 1,
                "gemini_retry_jitter_s": 0.5,
            },
            2 * 10 + 1.5,
            185 + 180 + 21.5 + 10 + 20,
            id="two-attempts",
        ),
        pytest.param(
            {
                "gemini_image_timeout_s": 10,
                "gemini_max_attempts": 5,
                "gemini_retry_initial_delay_s": 2,
                "gemini_retry_max_delay_s": 5,
                "gemini_retry_jitter_s": 0,
            },
            5 * 10 + (2 + 4 + 5 + 5),
            185 + 180 + 66 + 10 + 20,
            id="delay-capped",
        ),
    ],
)
def test_worst_case_arithmetic(kwargs: dict[str, float], call: float, attempt: float) -> None:
    settings = Settings(lease_seconds=520, **kwargs)
    assert settings.image_call_worst_case_s() == pytest.approx(call)
    assert settings.attempt_worst_case_s() == pytest.approx(attempt)


def test_strategy_tries_multiply_its_deadline() -> None:
    settings = Settings(
        gemini_strategy_timeout_s=30,
        gemini_strategy_max_attempts=3,
        gemini_retry_initial_delay_s=1,
        gemini_retry_jitter_s=0,
    )
    assert settings.strategy_call_worst_case_s() == pytest.approx(3 * 30 + 1 + 2)


# ------------------------------------------------------------------ budget validators


def test_lease_shorter_than_attempt_worst_case_is_refused() -> None:
    with pytest.raises(ValidationError, match="LEASE_SECONDS"):
        Settings(lease_seconds=515)  # defaults need 518 s


def test_lease_equal_to_worst_case_is_accepted() -> None:
    worst = Settings().attempt_worst_case_s()
    assert Settings(lease_seconds=int(worst)).lease_seconds == 518


def test_longer_deadlines_need_a_longer_lease() -> None:
    with pytest.raises(ValidationError, match="LEASE_SECONDS"):
        Settings(gemini_strategy_timeout_s=240)
    with pytest.raises(ValidationError, match="LEASE_SECONDS"):
        Settings(gemini_image_timeout_s=120)
    with pytest.raises(ValidationError, match="LEASE_SECONDS"):
        Settings(gemini_strategy_max_attempts=2)
    with pytest.raises(ValidationError, match="LEASE_SECONDS"):
        Settings(gemini_upload_timeout_s=30)


DEPLOYED = dict(google_cloud_project="my-project", status_base_url="https://api.example.com")


def test_a_deployed_worker_refuses_a_lease_above_540_s(monkeypatch: pytest.MonkeyPatch) -> None:
    roomy = dict(lease_seconds=560, ack_deadline_seconds=600)
    Settings(**roomy)  # locally nothing forbids it
    monkeypatch.setenv("K_SERVICE", "process-task")
    with pytest.raises(ValidationError, match="exceeds 540 s"):
        Settings(**roomy, **DEPLOYED)
    assert Settings(lease_seconds=540, ack_deadline_seconds=600, **DEPLOYED).lease_seconds == 540
    assert Settings(**DEPLOYED).lease_seconds == 520


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({}, "GOOGLE_CLOUD_PROJECT and STATUS_BASE_URL must be set"),
        ({"google_cloud_project": "my-project"}, "STATUS_BASE_URL must be set"),
        ({"status_base_url": "https://api.example.com"}, "GOOGLE_CLOUD_PROJECT must be set"),
    ],
)
def test_a_deployed_function_needs_its_project_and_url_given(
    monkeypatch: pytest.MonkeyPatch, given: dict[str, str], missing: str
) -> None:
    Settings(**given)  # the local stack's defaults are fine locally
    monkeypatch.setenv("K_SERVICE", "submit-strategy")
    with pytest.raises(ValidationError, match=missing):
        Settings(**given)


def test_a_deployed_function_is_production_whatever_its_project(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("K_SERVICE", "submit-strategy")
    with pytest.raises(ValidationError, match="emulator-only"):
        Settings(google_cloud_project="demo-x", status_base_url="https://api.example.com")
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9099")
    with pytest.raises(ValidationError, match="set in a deployed function"):
        Settings(**DEPLOYED)
    with pytest.raises(ValidationError, match="set in a deployed function"):
        Settings(google_cloud_project="demo-x", status_base_url="https://api.example.com")


def test_lease_above_ack_deadline_is_refused() -> None:
    with pytest.raises(ValidationError, match="ACK_DEADLINE_SECONDS"):
        Settings(lease_seconds=550, ack_deadline_seconds=500)


def test_lease_equal_to_ack_deadline_is_accepted() -> None:
    Settings(lease_seconds=535, ack_deadline_seconds=535)


@pytest.mark.parametrize("ack", [601, 900, 5])
def test_ack_deadline_outside_pubsub_range_is_refused(ack: int) -> None:
    with pytest.raises(ValidationError):
        Settings(ack_deadline_seconds=ack)


# The test stack's timing (Makefile TEST_SETTINGS): one attempt's worst case 52.35 s.
FAST = dict(
    gemini_strategy_timeout_s=6,
    gemini_image_timeout_s=6,
    gemini_strategy_max_attempts=2,
    gemini_max_attempts=3,
    gemini_retry_initial_delay_s=0.05,
    gemini_retry_max_delay_s=0.2,
    gemini_retry_jitter_s=0.05,
    gemini_upload_timeout_s=1,
    file_active_timeout_s=2,
    outcome_write_timeout_s=2,
    progress_write_timeout_s=1,
    lease_seconds=53,
    ack_deadline_seconds=60,
    retry_min_backoff_s=1,
    retry_max_backoff_s=5,
    max_task_attempts=3,
)


def test_redelivery_span_arithmetic() -> None:
    settings = Settings(**FAST, max_delivery_attempts=24)
    # 1, 2, 4, then 5 s (the cap) for the remaining 20 gaps.
    assert settings.redelivery_span_s() == 1 + 2 + 4 + 5 * 20
    assert settings.redelivery_span_s(3) == 1 + 2
    assert settings.redelivery_span_s(1) == 0
    assert Settings().redelivery_span_s() == 10 + 20 + 40 + 80 + 160 + 320 + 600 * 13


def test_dead_lettering_before_a_takeover_could_finish_is_refused() -> None:
    # 23 deliveries span 102 s of backoff; a takeover needs the lease (53 s) and one
    # whole attempt (52.35 s) after a crash.
    with pytest.raises(ValidationError, match="Pub/Sub gives up after 102 s"):
        Settings(**FAST, max_delivery_attempts=23)
    Settings(**FAST, max_delivery_attempts=24)  # 107 s > 105.35 s


def test_the_default_retry_policy_outlasts_a_takeover() -> None:
    settings = Settings()
    assert settings.redelivery_span_s() > settings.lease_seconds + settings.attempt_worst_case_s()


@pytest.mark.parametrize("task_attempts", [24, 30])
def test_fewer_deliveries_than_task_attempts_are_refused(task_attempts: int) -> None:
    with pytest.raises(ValidationError, match="MAX_DELIVERY_ATTEMPTS=24 must exceed"):
        Settings(**{**FAST, "max_task_attempts": task_attempts}, max_delivery_attempts=24)
    Settings(**{**FAST, "max_task_attempts": 23}, max_delivery_attempts=24)


def test_pdf_limit_above_request_limit_is_refused() -> None:
    with pytest.raises(ValidationError, match="MAX_PDF_BYTES"):
        Settings(max_pdf_bytes=33 * MIB)
    with pytest.raises(ValidationError, match="MAX_PDF_BYTES"):
        Settings(max_pdf_bytes=10 * MIB, max_request_bytes=10 * MIB - 1)


def test_pdf_limit_equal_to_request_limit_is_accepted() -> None:
    Settings(max_pdf_bytes=10 * MIB, max_request_bytes=10 * MIB)


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"gemini_strategy_timeout_s": 0}, id="timeout-zero"),
        pytest.param({"gemini_image_timeout_s": -1}, id="image-timeout-negative"),
        pytest.param({"gemini_image_aspect_ratio": "2:1"}, id="aspect-ratio-unknown"),
        pytest.param({"gemini_max_attempts": 0}, id="attempts-zero"),
        pytest.param({"gemini_max_attempts": 11}, id="attempts-too-many"),
        pytest.param({"max_brief_chars": 0}, id="brief-zero"),
        pytest.param({"max_urls": -1}, id="urls-negative"),
        pytest.param({"max_delivery_attempts": 4}, id="delivery-below-pubsub-min"),
        pytest.param({"max_delivery_attempts": 101}, id="delivery-above-pubsub-max"),
    ],
)
def test_out_of_range_values_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValidationError):
        Settings(**kwargs)


# ------------------------------------------------------------------ environment


def test_values_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "demo-env")
    monkeypatch.setenv("TASKS_COLLECTION", "tasks_env")
    monkeypatch.setenv("TASKS_TOPIC", "topic-env")
    monkeypatch.setenv("UPLOADS_BUCKET", "bucket-env")
    monkeypatch.setenv("GEMINI_BASE_URL", "http://127.0.0.1:8090")
    monkeypatch.setenv("GEMINI_TEXT_MODEL", "text-model-env")
    monkeypatch.setenv("GEMINI_IMAGE_MODEL", "image-model-env")
    monkeypatch.setenv("GEMINI_STRATEGY_TIMEOUT_S", "20.5")
    monkeypatch.setenv("GEMINI_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("MAX_PDF_BYTES", "1048576")
    monkeypatch.setenv("MAX_BRIEF_CHARS", "1000")
    monkeypatch.setenv("LEASE_SECONDS", "500")
    monkeypatch.setenv("STATUS_BASE_URL", "https://api.example.com")
    settings = Settings()
    assert settings.google_cloud_project == "demo-env"
    assert settings.tasks_collection == "tasks_env"
    assert settings.tasks_topic == "topic-env"
    assert settings.bucket_name == "bucket-env"
    assert settings.gemini_base_url == "http://127.0.0.1:8090"
    assert settings.gemini_text_model == "text-model-env"
    assert settings.gemini_image_model == "image-model-env"
    assert settings.gemini_strategy_timeout_s == 20.5
    assert settings.gemini_max_attempts == 2
    assert settings.max_pdf_bytes == 1_048_576
    assert settings.max_brief_chars == 1000
    assert settings.lease_seconds == 500
    assert settings.status_base_url == "https://api.example.com"


def test_lowercase_environment_names_also_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("gemini_image_timeout_s", "30")
    assert Settings().gemini_image_timeout_s == 30


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("GEMINI_STRATEGY_TIMEOUT_S", "abc", id="timeout-not-number"),
        pytest.param("GEMINI_IMAGE_TIMEOUT_S", "-1", id="timeout-negative"),
        pytest.param("GEMINI_IMAGE_ASPECT_RATIO", "wide", id="aspect-ratio-unknown"),
        pytest.param("GEMINI_MAX_ATTEMPTS", "2.5", id="attempts-not-int"),
        pytest.param("LEASE_SECONDS", "60", id="lease-too-short"),
        pytest.param("ACK_DEADLINE_SECONDS", "601", id="ack-too-long"),
        pytest.param("MAX_PDF_BYTES", str(64 * MIB), id="pdf-above-request"),
    ],
)
def test_bad_environment_values_are_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_environment_budget_is_checked_together(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_STRATEGY_TIMEOUT_S", "300")
    with pytest.raises(ValidationError, match="LEASE_SECONDS"):
        Settings()
    monkeypatch.setenv("GEMINI_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("GEMINI_IMAGE_TIMEOUT_S", "200")
    monkeypatch.setenv("GEMINI_UPLOAD_TIMEOUT_S", "5")
    monkeypatch.setenv("FILE_ACTIVE_TIMEOUT_S", "10")
    monkeypatch.setenv("LEASE_SECONDS", "600")
    # 7 chunks x 5 s + 10 s, a single 300 s strategy and 200 s image, 5 progress writes
    # of 2 s, two checkpoints, the shared PDF's record and the outcome of 5 s.
    assert Settings().attempt_worst_case_s() == pytest.approx(45 + 500 + 10 + 20)


# ------------------------------------------------------------------ emulators


@pytest.mark.parametrize("variable", EMULATOR_VARIABLES)
def test_emulator_variables_refused_for_a_real_project(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "127.0.0.1:9099")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "real-project")
    with pytest.raises(ValidationError, match=variable):
        Settings()


def test_auth_emulator_refused_for_a_real_project_given_explicitly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9099")
    with pytest.raises(ValidationError, match="FIREBASE_AUTH_EMULATOR_HOST"):
        Settings(google_cloud_project="real-project")


@pytest.mark.parametrize("variable", EMULATOR_VARIABLES)
def test_emulator_variables_accepted_for_a_demo_project(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "127.0.0.1:9099")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "demo-tinkerbell")
    assert Settings().google_cloud_project == "demo-tinkerbell"


def test_real_project_without_emulators_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "real-project")
    assert Settings().google_cloud_project == "real-project"


def test_empty_emulator_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "real-project")
    Settings()


# ------------------------------------------------------------------ secrets


def test_gemini_api_key_is_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    key = "fake-unit-test-secret-key"
    monkeypatch.setenv("GEMINI_API_KEY", key)
    settings = Settings()
    assert isinstance(settings.gemini_api_key, SecretStr)
    assert settings.gemini_api_key.get_secret_value() == key
    assert key not in repr(settings)
    assert key not in str(settings)
    assert key not in repr(settings.gemini_api_key)
    assert key not in settings.model_dump_json()
    assert key not in str(settings.model_dump())


def test_gemini_api_key_given_explicitly_is_secret() -> None:
    settings = Settings(gemini_api_key="explicit-secret")
    assert isinstance(settings.gemini_api_key, SecretStr)
    assert "explicit-secret" not in repr(settings)
