"""Driving the UI in Chromium with Playwright (sync API): sign-in, accessibility, screenshots."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.sdk.client.fixtures import LiveGateway

__all__ = ["UI", "Browser", "launch"]

# Violations at these levels fail a page's accessibility check.
SERIOUS = frozenset({"serious", "critical"})


@contextmanager
def launch(executable: str) -> Iterator[Browser]:
    """Chromium from ``executable``, headless, without the sandbox (CI runs as root)."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class UI:
    """The UI of one live gateway, seen through Chromium.

    Attributes:
        gateway: The live gateway (its URL, and tokens for any tenant and role).
        browser: The browser.
        axe: axe-core's ``axe.min.js`` (from ``ui/node_modules``).
        screenshots: Where screenshots of the screens go.
    """

    gateway: LiveGateway
    browser: Browser
    axe: Path
    screenshots: Path
    accessibility: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def url(self, path: str = "") -> str:
        """The URL of a UI path (``runs/<id>``)."""
        return f"{self.gateway.url}/ui/{path.lstrip('/')}"

    def open(self, *, downloads: bool = False) -> Page:
        """A fresh page (its own context: no shared session storage)."""
        # bypass_csp: axe-core is injected as an inline script, which the UI's CSP forbids.
        context = self.browser.new_context(
            viewport={"width": 1360, "height": 900}, bypass_csp=True, accept_downloads=downloads
        )
        context.set_default_timeout(15_000)
        return context.new_page()

    def sign_in(
        self, role: str, tenant: str, *, subject: str | None = None, path: str = "runs"
    ) -> Page:
        """A page signed in with a token for ``role`` in ``tenant``, showing ``path``."""
        page = self.open(downloads=True)
        page.goto(self.url(path))
        token = self.gateway.token(role, tenant=tenant, subject=subject or f"{role}-user")
        page.get_by_label("Access token or API key").fill(token)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_test_id("role")).to_have_text(role)
        assert token not in page.url
        return page

    def check_accessibility(self, page: Page, name: str) -> list[dict[str, Any]]:
        """Run axe-core on the page; return its serious and critical violations."""
        page.add_script_tag(path=str(self.axe))
        result: dict[str, Any] = page.evaluate(
            "() => axe.run(document, {resultTypes: ['violations']})"
        )
        serious = [
            {
                "id": v["id"],
                "impact": v["impact"],
                "help": v["help"],
                "targets": [n["target"] for n in v["nodes"]][:5],
            }
            for v in result["violations"]
            if v["impact"] in SERIOUS
        ]
        self.accessibility[name] = serious
        return serious

    def screenshot(self, page: Page, name: str) -> Path:
        """A full-page screenshot of the screen as ``docs/ui/<name>.png``."""
        path = self.screenshots / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


def eventually(check: Callable[[], Any], *, timeout_s: float = 30.0, every_s: float = 0.3) -> Any:
    """Call ``check`` until it returns something truthy (the read models follow the facts)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still {value!r} after {timeout_s:g}s")
        time.sleep(every_s)


def normalise(text: str) -> str:
    """Whitespace collapsed (for comparing rendered text)."""
    return re.sub(r"\s+", " ", text).strip()
