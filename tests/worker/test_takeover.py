"""kill -9 a worker in the middle of a step: another worker takes the step over and the run
completes, with no step's effect applied twice (real stack, worker subprocesses)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis

from omium.cli._pipeline import Pipeline
from omium.commands import CommandApplications
from omium.kernel.settings import OmiumSettings
from tests.worker.conftest import get_text, start_run, wait_for_run

T = TypeVar("T")

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OMIUM = Path(sys.executable).with_name("omium")
EFFECT = {"entrypoint": "tests.worker.agents:effect"}


def three_steps() -> dict[str, object]:
    return {
        "name": "takeover",
        "agents": {"effector": EFFECT},
        "defaults": {"checkpoint": {"before": True, "after": True}, "timeout_s": 60},
        "steps": [
            {"id": "prepare", "agent": "effector", "input": {"sleep_s": 0.1}},
            {"id": "long", "agent": "effector", "input": {"sleep_s": 4}},
            {"id": "finish", "agent": "effector", "input": {"sleep_s": 0.1}},
        ],
    }


@pytest.fixture
def worker_processes(
    worker_settings: OmiumSettings, event_schema: str, tmp_path: Path
) -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    """Starts ``omium worker execute`` processes on this test's topics and schema."""
    started: list[subprocess.Popen[bytes]] = []
    env = {
        **os.environ,
        "OMIUM_KAFKA__TOPIC_PREFIX": worker_settings.kafka.topic_prefix,
        "OMIUM_KAFKA__PARTITIONS": str(worker_settings.kafka.partitions),
        "OMIUM_WORKER__SCHEMA": event_schema,
        "OMIUM_WORKER__HEARTBEAT_TTL_S": "2",
    }

    def start(name: str) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [str(OMIUM), "worker", "execute", "--instance-id", name, "--concurrency", "2"],
            env=env,
            cwd=Path(__file__).resolve().parents[2],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in started:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def wait_until(condition: Callable[[], T | None], timeout_s: float, what: str) -> T:
    """The first true answer of ``condition``, asked every 0.1 s for up to ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def owns_partitions(log: Path) -> bool:
    """Whether the worker's latest assignment (as it logs it) is not empty."""
    lines = [line for line in log.read_text().splitlines() if "worker.partitions_owned" in line]
    return bool(lines) and not lines[-1].endswith("[]")


def test_a_step_of_a_killed_worker_is_taken_over_and_applied_once(
    worker_settings: OmiumSettings,
    event_schema: str,
    test_apps: CommandApplications,
    redis_log: tuple[redis.Redis, str],
    worker_processes: Callable[[str], subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    client, key = redis_log
    workers = {name: worker_processes(name) for name in ("w1", "w2")}
    for name in workers:
        wait_until(partial(owns_partitions, tmp_path / f"{name}.log"), 60, f"{name} to join")
    parts = ("relay", "orchestrator")
    with Pipeline(worker_settings, schema=event_schema, parts=parts) as pipeline:
        tenant, run = start_run(test_apps, three_steps(), {"log_key": key})
        claim = f"{worker_settings.kafka.topic_prefix}:worker:claim:{run}:long"
        holder = wait_until(lambda: get_text(client, claim), 60, "a worker to claim the long step")
        wait_until(lambda: client.get(f"{key}:applied:long"), 30, "the long step's effect")
        victim = workers[holder]
        os.kill(victim.pid, signal.SIGKILL)  # in the middle of the step, after its effect
        victim.wait(10)
        view = wait_for_run(test_apps, tenant, run, timeout_s=90, check=pipeline.check)

    logs = "\n".join((tmp_path / f"{name}.log").read_text()[-3000:] for name in workers)
    assert view.state == "completed", view.outcome
    attempts = {s.step_id: s.attempts for s in view.steps}
    assert attempts == {"prepare": 1, "long": 2, "finish": 1}, logs
    for step in ("prepare", "long", "finish"):
        assert client.get(f"{key}:applied:{step}") == b"1", f"{step}'s effect applied twice"
    assert client.get(f"{key}:attempts:long") == b"2"
    # Events of classes eventsourcing builds from the aggregate's methods: attributes unknown.
    events: list[Any] = list(test_apps.executions.repository.event_store.get(run))
    names = [type(event).__name__ for event in events]
    assert names.count("StepCompleted") == 3  # one completion per step, none twice
    lost = [e for e in events if type(e).__name__ == "StepFailed"]
    assert [(e.step_id, e.error_type) for e in lost] == [("long", "worker_lost")], logs


def test_a_consensus_step_taken_over_after_its_votes_reuses_its_round(
    worker_settings: OmiumSettings,
    event_schema: str,
    test_apps: CommandApplications,
    redis_log: tuple[redis.Redis, str],
    worker_processes: Callable[[str], subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    """The worker is killed once every reviewer voted (no consensus processor runs yet, so its
    step waits on the open round); the processor then decides it. The worker that takes the step
    over finds that round: nobody is asked again and there is one round, one decision."""
    client, key = redis_log
    voters = ("r1", "r2", "r3")
    definition = {
        "name": "review",
        "agents": {v: {"entrypoint": "tests.worker.agents:counted_vote"} for v in voters},
        "defaults": {"timeout_s": 120},
        "steps": [
            {
                "id": "review",
                "consensus": {
                    "subject": "ship it?",
                    "participants": list(voters),
                    "rule": "majority",
                    "choices": ["yes", "no"],
                    "deadline_s": 90,
                },
            }
        ],
    }
    workers = {name: worker_processes(name) for name in ("w1", "w2")}
    for name in workers:
        wait_until(partial(owns_partitions, tmp_path / f"{name}.log"), 60, f"{name} to join")
    with Pipeline(worker_settings, schema=event_schema, parts=("relay", "orchestrator")) as first:
        tenant, run = start_run(test_apps, definition, {"log_key": key})
        claim = f"{worker_settings.kafka.topic_prefix}:worker:claim:{run}:review"
        holder = wait_until(lambda: get_text(client, claim), 60, "a worker to claim the review")
        asked = [f"{key}:asked:{v}" for v in voters]
        wait_until(lambda: all(client.get(k) for k in asked), 60, "every reviewer's vote")
        time.sleep(0.5)  # the last vote's command returns to the worker
        os.kill(workers[holder].pid, signal.SIGKILL)
        workers[holder].wait(10)
        first.check()
    parts = ("relay", "consensus", "orchestrator")
    with Pipeline(worker_settings, schema=event_schema, parts=parts) as pipeline:
        view = wait_for_run(test_apps, tenant, run, timeout_s=120, check=pipeline.check)

    assert view.state == "completed", view.outcome
    assert [client.get(k) for k in asked] == [b"1", b"1", b"1"]  # nobody asked twice
    [step] = view.steps
    assert step.attempts == 2 and step.output is not None
    assert step.output["decision"] == "yes"
    assert step.output["votes"] == dict.fromkeys(voters, "yes")
    consensus = test_apps.consensus
    opened: list[Any] = [
        consensus.mapper.to_domain_event(n)
        for n in consensus.recorder.select_notifications(0, 10_000)
        if n.topic.endswith("ConsensusRoundOpened")
    ]
    assert [e.execution_id for e in opened].count(run) == 1  # no second round was opened
