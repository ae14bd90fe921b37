"""Forget it (issue 19) in a real browser: "Delete" on a finished strategy and "Delete my
data" in the account area, each asked first, against the local stack."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import Dialog, Page, expect

from tests.e2e.conftest import OWNER, WebApp, _tasks_url

pytestmark = pytest.mark.e2e

DONE_MS = 20_000


def _submit(page: Page, brief: str) -> str:
    page.fill("#brief", brief)
    page.set_checked("#image", False)
    page.click("#submit")
    expect(page.locator("#task-status")).to_have_attribute(
        "data-status", "COMPLETED", timeout=DONE_MS
    )
    task_id = page.locator("#task-panel").get_attribute("data-task-id")
    assert task_id
    return task_id


def _exists(stack_env: dict[str, str], task_id: str) -> bool:
    answer = httpx.get(f"{_tasks_url(stack_env)}/{task_id}", headers=OWNER)
    return answer.status_code == 200


def test_delete_asks_first_then_removes_the_task(
    web: WebApp, marker: str, stack_env: dict[str, str]
) -> None:
    page = web.open()
    task_id = _submit(page, f"Pottery studio in Timisoara ({marker})")
    delete = page.locator("#delete-task")
    expect(delete).to_be_visible()
    expect(page.locator("#cancel")).to_be_hidden()

    questions: list[str] = []

    def refuse(dialog: Dialog) -> None:
        questions.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", refuse)
    delete.click()
    expect(page.locator("#task-panel")).to_be_visible()
    assert questions and "cannot be undone" in questions[0]
    assert _exists(stack_env, task_id)  # "Cancel" in the dialog: nothing deleted

    page.once("dialog", lambda dialog: dialog.accept())
    delete.click()
    expect(page.locator("#task-panel")).to_be_hidden()
    expect(page.locator(f'.recent-item[data-task-id="{task_id}"]')).to_have_count(0)
    assert not _exists(stack_env, task_id)


def test_delete_my_data_erases_the_user_and_starts_a_new_guest(
    new_web: Callable[..., WebApp], marker: str, stack_env: dict[str, str]
) -> None:
    page = new_web(locale="ro-RO").open()
    task_id = _submit(page, f"Librărie în Cluj ({marker})")
    first_uid = page.evaluate("document.body.dataset.uid")
    forget = page.locator("#forget-me")
    expect(forget).to_have_text("Șterge datele mele")

    questions: list[str] = []

    def accept(dialog: Dialog) -> None:
        questions.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    forget.click()
    message = page.locator("#account-message")
    expect(message).to_contain_text("Datele tale au fost șterse (1 sarcini)", timeout=DONE_MS)
    assert questions and "Nu se poate anula" in questions[0]
    assert not _exists(stack_env, task_id)
    expect(page.locator("#task-panel")).to_be_hidden()
    expect(page.locator(".recent-item")).to_have_count(0)
    # A new guest, able to submit again.
    page.wait_for_function(
        f"document.body.dataset.uid && document.body.dataset.uid !== '{first_uid}'"
    )
    expect(page.locator("#submit")).to_be_enabled()
