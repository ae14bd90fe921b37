"""A token stops opening the API once it is revoked or its user is disabled or deleted
(issue 10, item 11): the functions ask the Auth API (here its emulator)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.integration.conftest import Api, User

pytestmark = pytest.mark.integration


def admin(http: httpx.Client, stack: dict[str, str], action: str, body: dict[str, Any]) -> None:
    """The Auth emulator's admin API (``Bearer owner`` is its admin credential)."""
    project = stack["GOOGLE_CLOUD_PROJECT"]
    answer = http.post(
        f"{stack['AUTH_EMULATOR_URL']}/identitytoolkit.googleapis.com/v1/projects/"
        f"{project}/accounts:{action}",
        headers={"Authorization": "Bearer owner"},
        json=body,
    )
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    ("action", "change"),
    [
        # Tokens issued before validSince are revoked (what revoke_refresh_tokens does).
        ("update", lambda uid: {"localId": uid, "validSince": str(int(time.time()) + 5)}),
        ("update", lambda uid: {"localId": uid, "disableUser": True}),
        ("delete", lambda uid: {"localId": uid}),
    ],
    ids=["revoked", "disabled", "deleted"],
)
def test_a_token_is_refused_once_revoked(
    api: Api,
    http: httpx.Client,
    stack: dict[str, str],
    new_user: Callable[[], User],
    action: str,
    change: Callable[[str], dict[str, Any]],
) -> None:
    user = new_user()
    admin(http, stack, action, change(user.uid))
    answer = api.submit(user, brief="A revoked user's brief")
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthenticated"
    assert api.status(user, "0" * 32).status_code == 401


def test_a_valid_token_still_opens_the_api(api: Api, new_user: Callable[[], User]) -> None:
    user = new_user()
    assert api.status(user, "0" * 32).status_code == 404  # past auth: no such task
    assert api.status(user, "0" * 32).status_code == 404  # the second from the cache
