"""The web UI (``ui/``, built with ``npm run build``) served as static files under ``/ui``.

Same origin as the API, so the browser needs no CORS and sends the credential in a header of
its own requests. The built files are found through ``gateway.ui_dir``
(``OMIUM_GATEWAY__UI_DIR``); unset, the checkout's ``ui/dist`` is used when it has been built,
and without either the UI is simply not mounted (the API does not need it).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from omium.kernel.errors import ConfigurationError
from omium.kernel.resources import checkout_root
from omium.kernel.settings import OmiumSettings

UI_PATH = "/ui"

# The UI reads only its own origin; nothing may frame it.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
# A path whose last segment has an extension names a file: a missing one is a real 404.
_FILE_LIKE = re.compile(r"(^|/)[^/]+\.[A-Za-z0-9]+$")


def ui_directory(settings: OmiumSettings) -> Path | None:
    """The folder of the built UI (holding ``index.html``), or ``None`` when there is none.

    Raises:
        ConfigurationError: ``gateway.ui_dir`` is set but holds no ``index.html``.
    """
    configured = settings.gateway.ui_dir
    if configured is not None:
        if not (configured / "index.html").is_file():
            raise ConfigurationError(
                f"gateway.ui_dir {configured} holds no index.html "
                "(build the UI with `npm ci && npm run build` in ui/)"
            )
        return configured
    root = checkout_root()
    if root is not None and (root / "ui" / "dist" / "index.html").is_file():
        return root / "ui" / "dist"
    return None


class SinglePageApp(StaticFiles):
    """Static files with the single-page app's rules.

    A path that names no file (``/ui/runs/<id>``, a deep link) answers ``index.html`` so the
    app's router can show it; hashed assets are cached for good, everything else revalidated.
    """

    async def get_response(self, path: str, scope: Scope) -> Response:
        """The file, or ``index.html`` for an app route; with cache and security headers."""
        try:
            response = await super().get_response(path, scope)
        except HTTPException as exc:
            if exc.status_code != 404 or _FILE_LIKE.search(path):
                raise
            response = await super().get_response("index.html", scope)
        immutable = path.startswith("assets/") and response.status_code == 200
        response.headers["Cache-Control"] = (
            "public, max-age=31536000, immutable" if immutable else "no-cache"
        )
        response.headers.update(SECURITY_HEADERS)
        return response


def mount_ui(app: FastAPI, settings: OmiumSettings) -> Path | None:
    """Serve the built UI under ``/ui`` when there is one; its folder, or ``None``."""
    directory = ui_directory(settings)
    if directory is None:
        return None
    spa: Any = SinglePageApp(directory=directory, html=True)
    app.mount(UI_PATH, spa, name="ui")
    return directory
