"""``omium.kernel.logs``: one key-value line per structlog event, levels kept, no credential.

The worker, the processors, the relay and the gateway log through it; what a part logs while it
handles a credential (a DSN with a password, a bearer token, an API key, a traceback whose frames
hold one) never reaches the line.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
import structlog

from omium.kernel.logs import configure_logging

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
API_KEY = "omk_k1_s3cr3tP4rt"


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    saved = structlog.get_config()
    sink = io.StringIO()
    configure_logging("INFO", stream=sink)
    yield sink
    structlog.configure(**saved)


def test_events_are_key_value_lines_at_the_configured_level(lines: io.StringIO) -> None:
    log = structlog.get_logger("omium.worker._worker")
    log.debug("worker.noise", n=1)
    log.info("worker.partitions_owned", partitions=[0, 2])
    [line] = lines.getvalue().splitlines()
    assert line.startswith("timestamp=")
    assert "level='info' event='worker.partitions_owned' partitions=[0, 2]" in line


def test_no_credential_reaches_a_line(lines: io.StringIO) -> None:
    log = structlog.get_logger("omium.worker._worker").bind(step_id="s1")
    log.warning(
        "worker.store_unavailable",
        error="connection to postgresql://omium:hunter2@db:5432/omium failed",
        header=f"Bearer {JWT}",
        key=API_KEY,
    )

    def authenticate(token: str) -> None:
        secret = f"password={token}"  # a frame local that holds the credential
        raise RuntimeError(f"refused {secret}")

    try:
        authenticate(JWT)
    except RuntimeError:
        log.exception("worker.item_failed", dispatch_id="d1")
    text = lines.getvalue()
    for leaked in ("hunter2", JWT, API_KEY, "s3cr3t"):
        assert leaked not in text
    assert "[redacted]" in text
    assert "Traceback (most recent call last)" in text  # a plain traceback, no frame locals
    assert "step_id='s1'" in text and "dispatch_id='d1'" in text
