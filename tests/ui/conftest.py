"""Fixtures of the web UI's end-to-end tests: the real gateway serving ``ui/dist``, the whole
pipeline behind it, and Debian's Chromium driven by Playwright.

The gateway is the SDK tests' :class:`LiveGateway` (a fresh event store schema and topic prefix
for the session). Behind it run the relay, every stream processor, the orchestrator, a worker
with the demo's scripted LLM provider, and the PostgreSQL, Redis and OpenSearch read models, so
what the browser shows comes from real runs on the real stack.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from omium.cli import _demo as demo
from omium.cli._pipeline import Pipeline
from omium.sdk.providers import providers_from_settings
from tests.sdk.client.fixtures import (  # noqa: F401 - imported to register the fixtures
    LiveGateway,
    live_gateway,
)
from tests.ui.browser import UI, Browser, launch

ROOT = Path(__file__).resolve().parents[2]
UI_DIST = ROOT / "ui" / "dist"
SCREENSHOTS = ROOT / "docs" / "ui"
CHROMIUM = "/usr/bin/chromium"
AXE = ROOT / "ui" / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture(scope="session")
def built_ui() -> Path:
    """The built UI the gateway serves (``make bootstrap`` builds it)."""
    if not (UI_DIST / "index.html").is_file():
        pytest.fail("ui/dist is not built: run `make bootstrap` (npm ci && npm run build in ui/)")
    if not AXE.is_file():
        pytest.fail("ui/node_modules/axe-core is missing: run `make bootstrap` (npm ci in ui/)")
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: run `make bootstrap` (apt-get install chromium)")
    return UI_DIST


@pytest.fixture(scope="session")
def ui_pipeline(live_gateway: LiveGateway, built_ui: Path) -> Iterator[Pipeline]:
    """Every part of the pipeline, with the demo's scripted LLM provider."""
    settings = live_gateway.settings
    providers = providers_from_settings(
        settings.llm.model_copy(update={"script_path": demo.SCRIPT_FILE})
    )
    with Pipeline(
        settings,
        schema=live_gateway.schema,
        providers=dict(providers),
        instance_id=f"ui-tests-{uuid.uuid4().hex[:6]}",
        projections=("postgres", "redis", "opensearch"),
        concurrency=4,
    ) as pipeline:
        yield pipeline


@pytest.fixture(scope="session")
def browser(built_ui: Path) -> Iterator[Browser]:
    """Debian's Chromium, headless (Playwright's own browser downloads are not reachable)."""
    with launch(CHROMIUM) as chromium:
        yield chromium


@pytest.fixture(scope="session")
def ui(live_gateway: LiveGateway, ui_pipeline: Pipeline, browser: Browser) -> UI:
    """Opens signed-in pages of the UI for any tenant and role."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return UI(live_gateway, browser, axe=AXE, screenshots=SCREENSHOTS)
