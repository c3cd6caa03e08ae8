"""Local-stack machinery that needs no running servers: config, pid files, process control."""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from omium.infra.localstack import PROFILES, ComponentStartError, LocalStack
from omium.infra.localstack._component import Component, Launch
from omium.infra.localstack._kafka import Kafka, new_cluster_id
from omium.infra.localstack._proc import is_alive, read_pid, spawn, stop, tail
from omium.infra.localstack._redis import Redis
from omium.kernel.settings import (
    AwsSettings,
    KafkaSettings,
    OmiumSettings,
    OpenSearchSettings,
    PostgresSettings,
    RedisSettings,
    StackSettings,
    load_settings,
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _free_port_range(count: int) -> int:
    """The first of ``count`` consecutive ports nothing listens on."""
    for base in range(31000, 60000, 97):
        try:
            with contextlib.ExitStack() as stack:
                for port in range(base, base + count):
                    sock = stack.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise AssertionError("no free port range")


@pytest.fixture
def isolated(tmp_path: Path) -> OmiumSettings:
    """Settings with a private data folder and ports nothing listens on."""
    return load_settings(
        stack=StackSettings(
            data_dir=tmp_path / "omium",
            start_timeout_s=10,
            stop_timeout_s=2,
            kafka_controller_port=_free_port(),
            kafka_sasl_port=_free_port(),
            kafka_ha_port=_free_port_range(6),
        ),
        kafka=KafkaSettings(bootstrap_servers=f"127.0.0.1:{_free_port()}"),
        postgres=PostgresSettings(port=_free_port()),
        redis=RedisSettings(url=f"redis://127.0.0.1:{_free_port()}/0"),
        opensearch=OpenSearchSettings(url=f"http://127.0.0.1:{_free_port()}"),
        aws=AwsSettings(endpoint_url=f"http://127.0.0.1:{_free_port()}"),
    )


def _properties(path: Path) -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    return {key.strip(): value.strip() for key, value in pairs}


def is_kafka_uuid(cluster_id: str) -> bool:
    """22 URL-safe base64 characters of 16 bytes, not starting with ``-`` (Kafka's ``Uuid``)."""
    if len(cluster_id) != 22 or cluster_id.startswith("-"):
        return False
    return len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_cluster_id_is_a_kafka_uuid() -> None:
    for _ in range(50):
        cluster_id = new_cluster_id()
        assert is_kafka_uuid(cluster_id), cluster_id


def test_kafka_config_is_single_node_kraft(isolated: OmiumSettings) -> None:
    stack = LocalStack(isolated)
    kafka = Kafka(isolated, stack.paths, None)
    props = _properties(kafka.write_config())
    port = isolated.kafka.bootstrap_servers.split(":")[1]
    controller = isolated.stack.kafka_controller_port
    assert props["process.roles"] == "broker,controller"
    sasl = isolated.stack.kafka_sasl_port
    assert props["listeners"] == (
        f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller},"
        f"SASL_PLAINTEXT://127.0.0.1:{sasl}"
    )
    user, password = kafka.sasl_credentials()
    assert (
        f'user_{user}="{password}"' in props["listener.name.sasl_plaintext.plain.sasl.jaas.config"]
    )
    assert len(password) >= 24 and kafka.sasl_credentials() == (user, password)  # generated once
    assert kafka.write_config().stat().st_mode & 0o077 == 0  # it holds the password
    assert props["controller.quorum.voters"] == f"1@127.0.0.1:{controller}"
    assert props["log.dirs"] == str(stack.paths.root / "kafka" / "data")
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
    ):
        assert props[key] == "1"
    assert props["auto.create.topics.enable"] == "false"


def test_kafka_cluster_id_is_remembered(isolated: OmiumSettings) -> None:
    stack = LocalStack(isolated)
    first = Kafka(isolated, stack.paths, None).cluster_id()
    assert Kafka(isolated, stack.paths, None).cluster_id() == first
    assert (stack.paths.root / "kafka" / "cluster.id").read_text().strip() == first


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A detached ``python -c`` that sleeps, started like a server; killed afterwards."""
    pid_file = tmp_path / "run" / "sleeper.pid"
    pid = spawn(
        [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"],
        log_path=tmp_path / "logs" / "sleeper.log",
        pid_file=pid_file,
        cwd=tmp_path,
    )
    yield pid, pid_file
    stop(pid, "time.sleep", 9, 1.0)


def test_spawn_writes_pid_file_and_stop_ends_the_process(sleeper: tuple[int, Path]) -> None:
    pid, pid_file = sleeper
    assert read_pid(pid_file) == pid
    assert is_alive(pid, "time.sleep"), _what_became_of(pid, pid_file)
    # The marker protects against a recycled pid belonging to another program.
    assert not is_alive(pid, "kafka.Kafka")
    assert stop(pid, "time.sleep", 15, 5.0) == "stopped"
    # Also covers the zombie case: the process is our child and was not waited for.
    assert not is_alive(pid, "time.sleep")
    assert stop(pid, "time.sleep", 15, 5.0) == "not running"


def _what_became_of(pid: int, pid_file: Path) -> str:
    """For a failure message: the process's state and exit status, and its log."""
    try:
        state = Path(f"/proc/{pid}/status").read_text().splitlines()[:3]
    except OSError as exc:
        state = [f"no /proc entry: {exc}"]
    try:
        _, status = os.waitpid(pid, os.WNOHANG)
        ended = f"wait status {status}"
    except ChildProcessError:
        ended = "already reaped"
    log = pid_file.parent.parent / "logs" / "sleeper.log"
    return f"pid {pid}: {state}; {ended}; log: {log.read_text()[-500:]!r}"


def test_stop_escalates_to_sigkill(tmp_path: Path) -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    log_path = tmp_path / "stubborn.log"
    pid = spawn(
        [sys.executable, "-c", code],
        log_path=log_path,
        pid_file=tmp_path / "stubborn.pid",
        cwd=tmp_path,
    )
    for _ in range(200):  # wait until the handler is installed (the log header quotes the code)
        if "ready" in tail(log_path).splitlines():
            break
        time.sleep(0.05)
    assert stop(pid, "SIG_IGN", 15, 0.5) == "killed"
    assert not is_alive(pid)


class _Crashing(Component):
    """A component whose server dies at once, like a broker with a broken config."""

    name = "crashing"
    marker = "crashing"

    @property
    def address(self) -> str:
        return "nowhere"

    def ports(self) -> list[tuple[str, int]]:
        return []

    def prepare(self) -> Launch:
        self.home.mkdir(parents=True, exist_ok=True)
        return Launch(
            cmd=["sh", "-c", "echo 'FATAL: crashing config is broken'; exit 3"], cwd=self.home
        )

    def probe(self, timeout_s: float) -> str | None:
        return "never ready"


def test_failed_start_names_component_and_log(isolated: OmiumSettings) -> None:
    stack = LocalStack(isolated)
    stack.paths.ensure()
    with pytest.raises(ComponentStartError) as caught:
        stack._start(_Crashing(isolated, stack.paths, None))
    error = caught.value
    assert error.component == "crashing"
    assert error.log_path == stack.paths.log("crashing")
    assert "crashing config is broken" in error.log_tail
    assert str(error.log_path) in str(error)
    assert not stack.paths.pid("crashing").exists()


class _Flapping(_Crashing):
    """A server that answers, then briefly does not (a new broker in its peers' metadata first)."""

    name = "flapping"
    marker = "flapping"

    def __init__(self, answers: list[str | None], *args: Any) -> None:
        super().__init__(*args)
        self.answers = answers

    def prepare(self) -> Launch:
        self.home.mkdir(parents=True, exist_ok=True)
        return Launch(cmd=["sh", "-c", "echo flapping; exec sleep 30"], cwd=self.home)

    def probe(self, timeout_s: float) -> str | None:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


@pytest.mark.parametrize(
    ("answers", "started"),
    [
        ([None, "node 2 is not among the cluster's brokers yet", None], True),
        ([None, "no metadata"], False),
    ],
)
def test_a_started_server_is_usable_once_a_check_after_start_passes(
    isolated: OmiumSettings, answers: list[str | None], started: bool
) -> None:
    stack = LocalStack(isolated)
    stack.paths.ensure()
    component = _Flapping(answers, isolated, stack.paths, None)
    try:
        if started:
            assert stack._start(component).action == "started"
        else:
            with pytest.raises(
                ComponentStartError, match=r"started but not usable after \d+s .*no metadata"
            ):
                stack._start(component)
    finally:
        pid = read_pid(stack.paths.pid("flapping"))
        assert pid is not None, "the server is left running with its pid file"
        stop(pid, "sleep", signal.SIGKILL, 5)


def test_up_refuses_a_port_taken_by_someone_else(isolated: OmiumSettings) -> None:
    stack = LocalStack(isolated)
    stack.paths.ensure()
    redis = Redis(isolated, stack.paths, None)
    host, port = redis.ports()[0]
    with socket.socket() as squatter:
        squatter.bind((host, port))
        squatter.listen()
        with pytest.raises(ComponentStartError, match="already in use"):
            stack._start(redis)
        assert {row.name: row.state for row in stack.status()}["redis"] == "foreign"


def test_status_of_an_empty_data_folder_is_all_stopped(isolated: OmiumSettings) -> None:
    rows = LocalStack(isolated).status(timeout_s=0.5)
    assert {row.name for row in rows} == {
        "kafka",
        "kafka-ha-1",
        "kafka-ha-2",
        "kafka-ha-3",
        "postgres",
        "redis",
        "opensearch",
        "moto",
    }
    assert {row.state for row in rows} == {"stopped"}
    assert all(row.pid is None for row in rows)


def test_down_without_pid_files_does_nothing(isolated: OmiumSettings) -> None:
    results = LocalStack(isolated).down()
    assert {result.action for result in results} == {"not running"}


def test_the_ha_profile_renders_three_nodes_of_one_cluster(isolated: OmiumSettings) -> None:
    stack = LocalStack(isolated)
    nodes = [stack.component(f"kafka-ha-{n}") for n in (1, 2, 3)]
    configs = [_properties(node.write_config()) for node in nodes]  # type: ignore[attr-defined]
    base = isolated.stack.kafka_ha_port
    voters = f"1@127.0.0.1:{base + 3},2@127.0.0.1:{base + 4},3@127.0.0.1:{base + 5}"

    for n, config in enumerate(configs, start=1):
        assert config["node.id"] == str(n)
        assert config["controller.quorum.voters"] == voters
        assert config["listeners"] == (
            f"PLAINTEXT://127.0.0.1:{base + n - 1},CONTROLLER://127.0.0.1:{base + n + 2}"
        )
        assert config["log.dirs"] == str(
            isolated.stack.data_dir.resolve() / f"kafka-ha-{n}" / "data"
        )
        assert (config["default.replication.factor"], config["min.insync.replicas"]) == ("3", "2")
        assert config["offsets.topic.replication.factor"] == "3"
        assert config["transaction.state.log.min.isr"] == "2"
        assert config["unclean.leader.election.enable"] == "false"
    cluster_ids = {node.cluster_id() for node in nodes}  # type: ignore[attr-defined]
    assert len(cluster_ids) == 1
    assert set(PROFILES["ha"]) == {"kafka-ha-1", "kafka-ha-2", "kafka-ha-3", "postgres", "redis"}


def test_ha_nodes_preparing_at_once_all_read_one_whole_cluster_id(isolated: OmiumSettings) -> None:
    """CI once formatted a node with an id read half-written: its peers refused its votes."""
    stack = LocalStack(isolated)
    nodes = [stack.component(f"kafka-ha-{n}") for n in (1, 2, 3)] * 20
    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        ids = list(pool.map(lambda node: node.cluster_id(), nodes))

    assert len(set(ids)) == 1 and is_kafka_uuid(ids[0]), set(ids)
    assert sorted(p.name for p in (stack.paths.root / "kafka-ha").iterdir()) == ["cluster.id"]
