"""The web UI's static files under ``/ui``: found through ``gateway.ui_dir``, deep links answer
``index.html``, hashed assets are cached for good, and the UI's pages carry a same-origin CSP.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from omium.gateway import create_app, in_memory_services
from omium.gateway._ui import CONTENT_SECURITY_POLICY, ui_directory
from omium.kernel.errors import ConfigurationError
from omium.kernel.settings import OmiumSettings

SettingsFactory = Callable[..., OmiumSettings]


@pytest.fixture
def built(tmp_path: Path) -> Path:
    """A stand-in for ``ui/dist``: an index page and one hashed asset."""
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text('<!doctype html><div id="root"></div>')
    (tmp_path / "assets" / "index-abc123.js").write_text("console.log(1)")
    return tmp_path


def client(settings: OmiumSettings) -> TestClient:
    return TestClient(create_app(settings, services=in_memory_services(settings)))


def test_the_built_ui_is_served_under_ui(
    gateway_settings_factory: SettingsFactory, built: Path
) -> None:
    http = client(gateway_settings_factory(ui_dir=built))
    page = http.get("/ui/")
    assert page.status_code == 200
    assert 'id="root"' in page.text
    assert page.headers["cache-control"] == "no-cache"
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert page.headers["x-frame-options"] == "DENY"
    assert http.get("/ui", follow_redirects=False).headers["location"].endswith("/ui/")

    # A deep link is the app's route: the same index page.
    deep = http.get("/ui/runs/6c1f0e4e-0000-4000-8000-000000000000")
    assert deep.status_code == 200 and 'id="root"' in deep.text

    asset = http.get("/ui/assets/index-abc123.js")
    assert asset.status_code == 200
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"

    # A file that is not there is a real 404, as a problem.
    missing = http.get("/ui/assets/gone-000.js")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    # The API is untouched.
    assert http.get("/api/v1/whoami").status_code == 401


def test_without_a_built_ui_nothing_is_mounted(
    gateway_settings_factory: SettingsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("omium.gateway._ui.checkout_root", lambda: None)
    settings = gateway_settings_factory()
    assert ui_directory(settings) is None
    assert client(settings).get("/ui/").status_code == 404


def test_a_configured_folder_without_index_is_refused(
    gateway_settings_factory: SettingsFactory, tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError, match=r"no index\.html"):
        create_app(gateway_settings_factory(ui_dir=tmp_path))
