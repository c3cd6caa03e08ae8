"""``omium worker`` as a process: it decides, and leaves cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.streams.events import round_opened, vote

pytestmark = pytest.mark.integration


def test_omium_worker_consensus_decides_and_stops_on_sigterm(
    worker_process_factory: Callable[..., subprocess.Popen[bytes]],
    publish: Callable[..., None],
    read_events: Callable[..., list[dict[str, Any]]],
) -> None:
    round_id = uuid.uuid4()
    process = worker_process_factory("consensus")

    publish(
        round_opened(round_id, ["a", "b"]), vote(round_id, "a", "go"), vote(round_id, "b", "go")
    )

    (decision,) = read_events(
        "consensus", count=1, timeout_s=60, where=lambda e: e["event_type"] == "ConsensusReached"
    )
    assert decision["correlation_id"] == str(round_id)
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
