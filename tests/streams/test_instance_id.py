"""Default instance ids: unique per process, stable where the deployment names the pod.

Two instances sharing an id share a transactional id, and each one's ``init_transactions``
fences the other: that happened to two ``omium worker`` processes on one host, whose default
was the host name.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from omium.kernel.kafka import admin_client
from omium.kernel.settings import KafkaSettings
from omium.streams.base import ProcessorConfig, default_instance_id
from tests.streams.events import round_opened, vote


def test_the_pod_name_wins_then_hostname_then_the_host() -> None:
    assert default_instance_id({"POD_NAME": "consensus-7d9f-abcde"}, pid=1) == (
        "consensus-7d9f-abcde-1"
    )
    assert default_instance_id({"HOSTNAME": "node-a"}, pid=42) == "node-a-42"
    assert default_instance_id({"POD_NAME": "p", "HOSTNAME": "h"}, pid=3) == "p-3"
    assert default_instance_id({}, pid=9).endswith("-9")


def test_two_processes_on_one_host_differ_and_a_container_restart_keeps_its_id() -> None:
    environ = {"HOSTNAME": "worker-host"}
    assert default_instance_id(environ, pid=100) != default_instance_id(environ, pid=101)
    # In a container the entrypoint's pid is the same after a restart: so is the id.
    assert default_instance_id({"POD_NAME": "pod-0"}, pid=1) == default_instance_id(
        {"POD_NAME": "pod-0"}, pid=1
    )


def test_unsafe_characters_are_replaced() -> None:
    assert default_instance_id({"POD_NAME": "a b/c:d"}, pid=1) == "a-b-c-d-1"
    assert default_instance_id({"POD_NAME": "///"}, pid=1) == "instance-1"


def test_configs_built_in_one_process_default_to_this_process() -> None:
    config = ProcessorConfig(app_id="consensus")
    assert config.instance_id.endswith(f"-{os.getpid()}")
    assert config.transactional_id.endswith(config.instance_id)


@pytest.fixture
def unnamed_worker_factory(
    kafka: KafkaSettings, tmp_path: Path
) -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    """Starts ``omium worker <name>`` without ``--instance-id`` on this test's topics."""
    started: list[subprocess.Popen[bytes]] = []
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if k not in ("POD_NAME", "OMIUM_STREAMS_INSTANCE_ID")
        },
        "OMIUM_KAFKA__TOPIC_PREFIX": kafka.topic_prefix,
        "OMIUM_KAFKA__PARTITIONS": str(kafka.partitions),
        "OMIUM_LOG_LEVEL": "INFO",
    }

    def start(name: str) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"{name}-{len(started)}.log").open("wb")
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "omium"), "worker", name, "--state-dir",
             str(tmp_path / "state")],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


@pytest.mark.integration
def test_two_unnamed_instances_on_one_host_share_the_work_without_fencing(
    unnamed_worker_factory: Callable[[str], subprocess.Popen[bytes]],
    publish: Callable[..., None],
    read_events: Callable[..., list[dict[str, Any]]],
    kafka: KafkaSettings,
    tmp_path: Path,
) -> None:
    first, second = unnamed_worker_factory("consensus"), unnamed_worker_factory("consensus")
    rounds = [uuid.uuid4() for _ in range(12)]
    group = f"{kafka.topic_prefix}.streams.consensus"
    deadline = time.monotonic() + 60
    # The group has settled with both instances owning partitions (as Kafka describes it).
    while _members_owning_partitions(kafka, group) != 2:
        assert time.monotonic() < deadline, "the instances never shared the partitions"
        time.sleep(0.2)

    for round_id in rounds:
        publish(
            round_opened(round_id, ["a", "b"]),
            vote(round_id, "a", "go"),
            vote(round_id, "b", "go"),
        )
    decided = read_events(
        "consensus",
        count=len(rounds),
        timeout_s=90,
        where=lambda e: e["event_type"] == "ConsensusReached",
    )

    assert {e["correlation_id"] for e in decided} == {str(r) for r in rounds}
    # Neither was fenced out: both are still members that own partitions, and still running.
    assert _members_owning_partitions(kafka, group) == 2
    assert first.poll() is None and second.poll() is None, "an instance exited (fenced?)"
    logs = [(tmp_path / f"consensus-{i}.log").read_text(errors="replace") for i in (0, 1)]
    found = [re.search(r"consensus: instance (\S+)", log) for log in logs]
    names = [match.group(1) for match in found if match is not None]
    assert len(names) == 2, logs
    assert names[0].endswith(f"-{first.pid}") and names[1].endswith(f"-{second.pid}")
    assert "fenced" not in "".join(logs).lower(), logs


def _members_owning_partitions(kafka: KafkaSettings, group: str) -> int:
    """How many members of the consumer group are assigned at least one partition now."""
    admin = admin_client(kafka)  # kept until the answer is in: it serves the future
    [future] = admin.describe_consumer_groups([group]).values()
    members = future.result(timeout=10).members
    return sum(1 for member in members if member.assignment.topic_partitions)
