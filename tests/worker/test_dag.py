"""A diamond-shaped workflow runs through the orchestrator and the execution worker (real stack).

Relay, orchestrator and worker run in threads of the test process, on this test's own topics and
event store schema; the agents log to Redis when they start and end.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis

from omium.cli._pipeline import Pipeline
from omium.commands import CommandApplications
from omium.kernel.settings import OmiumSettings
from tests.worker.conftest import start_run, text, wait_for_run

pytestmark = pytest.mark.integration

AGENT = {"entrypoint": "tests.worker.agents:record"}


def diamond(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "agents": {"recorder": AGENT},
        "defaults": {"checkpoint": {"before": True, "after": True}},
        "steps": [
            {"id": "fetch", "agent": "recorder", "input": {"sleep_s": 0.2}},
            {"id": "left", "agent": "recorder", "needs": ["fetch"], "input": {"sleep_s": 0.5}},
            {"id": "right", "agent": "recorder", "needs": ["fetch"], "input": {"sleep_s": 0.5}},
            {"id": "merge", "agent": "recorder", "needs": ["left", "right"]},
        ],
    }


def times(client: redis.Redis, key: str) -> dict[tuple[str, str], float]:
    entries = [text(entry).split() for entry in client.lrange(key, 0, -1)]
    return {(what, step): float(at) for what, step, at in entries}


def test_steps_run_in_dependency_order_and_branches_run_side_by_side(
    worker_settings: OmiumSettings,
    event_schema: str,
    test_apps: CommandApplications,
    redis_log: tuple[redis.Redis, str],
) -> None:
    client, key = redis_log
    parts = ("relay", "orchestrator", "worker")
    with Pipeline(worker_settings, schema=event_schema, parts=parts, concurrency=4) as pipeline:
        tenant, run = start_run(test_apps, diamond("diamond"), {"log_key": key})
        view = wait_for_run(test_apps, tenant, run, timeout_s=90, check=pipeline.check)

    assert view.state == "completed", view.outcome
    assert view.outcome["output"] == {"merge": {"step": "merge", "saw": ["left", "right"]}}
    t = times(client, key)
    assert t[("start", "left")] >= t[("end", "fetch")]
    assert t[("start", "right")] >= t[("end", "fetch")]
    assert t[("start", "merge")] >= max(t[("end", "left")], t[("end", "right")])
    # The branches overlap: the worker ran them at the same time.
    assert t[("start", "right")] < t[("end", "left")] and t[("start", "left")] < t[("end", "right")]
    # One attempt each, every step checkpointed before and after.
    assert {s.step_id: s.attempts for s in view.steps} == dict.fromkeys(
        ("fetch", "left", "right", "merge"), 1
    )
    positions = sorted((c.step_id, c.position) for c in view.checkpoints)
    assert ("left", "before") in positions and ("merge", "after") in positions
