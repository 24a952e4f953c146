"""The player app under test: the suite's node with its web app registered, players who sign
in through the built-in provider in a real browser (``tests/browser.py`` drives Chromium)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import Env, Node
from tests.test_auth import PASSWORD, WEB, provider_for

WEB_CLIENT = "oneheart-web"


@dataclass
class Web:
    env: Env
    node: Node

    @property
    def url(self) -> str:
        return self.node.url

    def player(self, prefix: str = "player", display_name: str | None = None) -> str:
        """A new account at the built-in provider (password :data:`PASSWORD`); its username."""
        name = f"{prefix}{uuid.uuid4().hex[:8]}"
        self.env.cli(
            "user",
            "add",
            name,
            "--display-name",
            display_name or name.title(),
            "--password-stdin",
            stdin=PASSWORD + "\n",
        )
        return name


def web_redirect_uris(node: Node) -> list[str]:
    """The web app's redirect URIs: the player app's and the one test_auth logs in with."""
    return [f"{node.url}/app/callback", WEB[1]]


@pytest.fixture(scope="session")
def web(env: Env, node: Node) -> Web:
    for territory in ("dk", "sami"):
        provider_for(env, node, territory, node)
    uris = [arg for uri in web_redirect_uris(node) for arg in ("--redirect-uri", uri)]
    env.cli("auth", "add-app", WEB_CLIENT, "--name", "OneHeart web", *uris)
    return Web(env, node)


async def sign_in(page: Any, web: Web, username: str, territory: str = "dk", password: str = PASSWORD) -> None:
    """Sign in as a person would: the app's "Sign in", the territory, the provider's form."""
    await page.goto(f"{web.url}/app/signin")
    radio = page.locator(f'input[name="territory"][value="{territory}"]')
    if await radio.count():
        await radio.check()
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{web.url}/app**")
