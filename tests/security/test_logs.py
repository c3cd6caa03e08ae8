"""No token, API key or secret in any log line of a gateway run.

The gateway is served by uvicorn over HTTP on 127.0.0.1 with the logging its entrypoint sets up
(``serve``: uvicorn's configuration with the redacting filter; ``app_from_env``:
``configure_logging``), at DEBUG. Requests carry every kind of credential (bearer JWTs, API keys,
a WebSocket ``?access_token=``, bad and revoked ones) and one route fails with a 500 while a
token is in its frames; then everything the process wrote is scanned.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
import structlog
import uvicorn
from fastapi import APIRouter, FastAPI
from websockets.sync.client import connect as ws_connect

from omium.gateway import DEV_JWT_SECRET, Principal, Role, create_app, requires
from omium.gateway._logging import configure_logging, uvicorn_log_config
from omium.gateway.api import discover_routers
from omium.kernel.settings import OmiumSettings
from tests.security.fixtures import API, TokenFactory

pytestmark = pytest.mark.integration

TEST_CLIENT_LOGGERS = ("httpx", "httpcore", "websockets.client")
"""This test's own clients log what they send; they are not the gateway."""

failing = APIRouter(prefix="/failing", tags=["test"])


@failing.get("")
async def fail_with_credentials_in_scope(
    principal: Annotated[Principal, requires(Role.VIEWER)],
) -> dict[str, str]:
    """A bug: raises while the request's credentials are local variables of the frames."""
    secret_in_scope = DEV_JWT_SECRET
    raise RuntimeError(f"bug while serving {principal.subject} ({len(secret_in_scope)})")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    """Where the run's log lines go."""
    return tmp_path / "gateway.log"


@pytest.fixture
def served(
    security_settings: OmiumSettings, security_schema: str, log_file: Path
) -> Iterator[Callable[[], str]]:
    """Serves the gateway (plus a failing route) under uvicorn; yields its base URL getter.

    Logging is the entrypoint's, with every stream redirected to ``log_file``: structlog,
    uvicorn's handlers (their redacting filter kept), and a root handler for every other
    library (without one: what they write must be clean by itself).
    """
    saved = structlog.get_config()
    sink = log_file.open("a", encoding="utf-8")
    configure_logging("DEBUG", stream=sink)
    log_config = uvicorn_log_config()
    for handler in log_config["handlers"].values():
        handler.pop("stream", None)
        handler.update({"class": "logging.FileHandler", "filename": str(log_file)})
    root = logging.FileHandler(log_file)
    root.addFilter(lambda record: not record.name.startswith(TEST_CLIENT_LOGGERS))
    logging.getLogger().addHandler(root)
    previous_level = logging.getLogger().level
    logging.getLogger().setLevel(logging.DEBUG)
    app: FastAPI = create_app(
        security_settings,
        event_store_schema=security_schema,
        routers=[*discover_routers(), failing],
    )
    port = _free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="debug", log_config=log_config
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="logs-gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "gateway did not start"
        time.sleep(0.05)
    try:
        yield lambda: f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        structlog.configure(**saved)
        logging.getLogger().removeHandler(root)
        logging.getLogger().setLevel(previous_level)
        root.close()
        sink.close()


def test_no_credential_appears_in_any_log_line(
    served: Callable[[], str],
    tokens: TokenFactory,
    security_settings: OmiumSettings,
    log_file: Path,
) -> None:
    url, tenant = served(), "t-logs"
    admin = tokens.rs256(tokens.claims(tenant, "admin"))
    hs256 = tokens.hs256(tokens.claims(tenant, "viewer"))
    expired = tokens.rs256(tokens.claims(tenant, exp=int(time.time()) - 3600))
    forged = tokens.hs256(tokens.claims(tenant, "admin"), secret="s" * 40)
    secrets: list[str] = [admin, hs256, expired, forged, DEV_JWT_SECRET]
    with httpx.Client(base_url=url + API, timeout=30) as http:

        def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
            return http.request(method, path, **kwargs)

        bearer = {"Authorization": f"Bearer {admin}"}
        assert call("GET", "/whoami", headers=bearer).status_code == 200
        assert call("GET", "/whoami", headers={"Authorization": f"Bearer {hs256}"}).is_success
        for bad in (expired, forged, "garbage.token.here"):
            assert call("GET", "/whoami", headers={"Authorization": f"Bearer {bad}"}).is_error
        issued = call("POST", "/api-keys", headers=bearer, json={"name": "w", "role": "viewer"})
        assert issued.status_code == 201, issued.text
        key, key_id = issued.json()["key"], issued.json()["key_id"]
        secrets += [key, key.split("_", 2)[2]]
        assert call("GET", "/whoami", headers={"X-API-Key": key}).status_code == 200
        assert call("GET", f"/whoami?api_key={key}", headers=bearer).status_code == 200
        assert call("DELETE", f"/api-keys/{key_id}", headers=bearer).status_code == 204
        assert call("GET", "/whoami", headers={"X-API-Key": key}).status_code == 401
        headers = {**bearer, "Idempotency-Key": "idem-1"}
        body = {"name": "logged", "definition": {"steps": [{"id": "a", "agent": "agents.a:run"}]}}
        assert call("POST", "/workflows", headers=headers, json=body).status_code == 201
        assert call("GET", "/failing", headers=bearer).status_code == 500
        ws_url = url.replace("http://", "ws://") + f"{API}/events/ws?access_token={admin}"
        with ws_connect(ws_url, open_timeout=10) as socket_:
            socket_.close()
    time.sleep(0.5)  # let the access log of the last request be written

    logs = log_file.read_text(encoding="utf-8")
    assert '"WebSocket ' in logs and "[accepted]" in logs, logs[-2000:]
    assert "request failed" in logs and "RuntimeError" in logs
    assert "/whoami" in logs  # the access log was captured
    leaked = [secret[:12] + "..." for secret in secrets if secret in logs]
    assert leaked == [], f"credentials in the logs: {leaked}"
    password = security_settings.postgres.password.get_secret_value()
    assert f":{password}@" not in logs
