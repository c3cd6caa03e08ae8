"""The runner's own stack and Omium processes, on their own ports and data folder.

Nothing here touches the shared stack of the default ports: PostgreSQL, Redis, OpenSearch, moto
and the three KRaft brokers of ``--profile ha`` run from ``<data_dir>`` on :class:`Ports`, and
every Omium process (gateway, relay, each stream processor, the orchestrator, an execution worker,
each projection) is a child of the runner started with environment variables pointing there.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from omium.infra.localstack import LocalStack, StackStartError
from omium.infra.localstack._kafka_ha import ha_kafka_env
from omium.kernel.settings import OmiumSettings, load_settings

ROOT = Path(__file__).resolve().parents[2]
OMIUM = str(Path(sys.executable).with_name("omium"))
SCRIPT = ROOT / "examples" / "workflows" / "research_report.script.yaml"

INFRA = ("kafka-ha-1", "kafka-ha-2", "kafka-ha-3", "postgres", "redis", "opensearch", "moto")
"""The components of the runner's stack (the ``ha`` profile plus OpenSearch and moto)."""

PROCESSORS = ("commands", "consensus", "recovery", "policy", "approvals")
PROJECTIONS = ("postgres", "redis", "opensearch")
KINDS: tuple[str, ...] = (
    "gateway",
    "relay",
    *PROCESSORS,
    "orchestrator",
    "execute",
    *(f"project-{name}" for name in PROJECTIONS),
)
"""Every kind of Omium process the runner starts (one instance each)."""


@dataclass(frozen=True)
class Ports:
    """Where the runner's stack listens (all on 127.0.0.1; none of the default ports)."""

    postgres: int = 5533
    redis: int = 6480
    opensearch: int = 9400  # transport on +100
    moto: int = 5150
    kafka_ha: int = 9292  # brokers 9292-9294, controllers 9295-9297
    gateway: int = 8390

    def shifted(self, offset: int) -> Ports:
        """Every port moved by ``offset`` (a second runner beside the first, e.g. the test's)."""
        return Ports(*(port + offset for port in dataclasses.astuple(self)))


def chaos_env(data_dir: Path, ports: Ports) -> dict[str, str]:
    """The ``OMIUM_*`` variables that point every process at the runner's stack."""
    env = {
        "OMIUM_ENVIRONMENT": "local",
        "OMIUM_STACK__DATA_DIR": str(data_dir),
        "OMIUM_STACK__KAFKA_HA_PORT": str(ports.kafka_ha),
        "OMIUM_STACK__START_TIMEOUT_S": "240",
        "OMIUM_POSTGRES__PORT": str(ports.postgres),
        "OMIUM_REDIS__URL": f"redis://127.0.0.1:{ports.redis}/0",
        "OMIUM_OPENSEARCH__URL": f"http://127.0.0.1:{ports.opensearch}",
        "OMIUM_AWS__ENDPOINT_URL": f"http://127.0.0.1:{ports.moto}",
        "OMIUM_GATEWAY__PORT": str(ports.gateway),
        # One tenant sends a steady stream from one process: the premium tier's limits.
        "OMIUM_GATEWAY__RATE_LIMIT__DEFAULT_TIER": "premium",
        "OMIUM_LLM__SCRIPT_PATH": str(SCRIPT),
    }
    settings = _settings_from(env)
    env.update(ha_kafka_env(settings))
    return env


def _settings_from(env: Mapping[str, str]) -> OmiumSettings:
    saved = {k: v for k, v in os.environ.items() if k.startswith("OMIUM_")}
    for key in saved:
        del os.environ[key]
    os.environ.update(env)
    try:
        return load_settings()
    finally:
        for key in env:
            os.environ.pop(key, None)
        os.environ.update(saved)


@dataclass
class OmiumProcess:
    """One Omium process of the runner: how to start it, and the running child."""

    kind: str
    argv: list[str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def pid(self) -> int:
        """The child's pid (it must be running)."""
        assert self.popen is not None
        return self.popen.pid


@dataclass
class ChaosStack:
    """The runner's infrastructure and Omium processes.

    Args:
        data_dir: The stack's data folder (``stack.data_dir``), apart from the shared one.
        ports: Where its servers listen.
    """

    data_dir: Path
    ports: Ports = field(default_factory=Ports)

    def __post_init__(self) -> None:
        """Derive the environment, settings and process table."""
        self.data_dir = self.data_dir.resolve()
        self.env = chaos_env(self.data_dir, self.ports)
        self.settings = _settings_from(self.env)
        self.stack = LocalStack(self.settings)
        self.logs = self.data_dir / "logs"
        self.procs: dict[str, OmiumProcess] = {
            kind: OmiumProcess(kind, _argv(kind), self.logs / f"omium-{kind}.log") for kind in KINDS
        }
        self._log_files: list[IO[bytes]] = []

    @property
    def gateway_url(self) -> str:
        """The gateway's base URL."""
        return f"http://127.0.0.1:{self.ports.gateway}"

    # --- infrastructure -----------------------------------------------------------------------

    def up(self) -> None:
        """Start the infrastructure (reusing the shared stack's downloads) and wait for it."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        shared_dist = ROOT / ".omium" / "dist"
        dist = self.data_dir / "dist"
        if shared_dist.is_dir() and not dist.exists():
            dist.symlink_to(shared_dist)  # Kafka jars and OpenSearch are downloaded once
        try:
            self.stack.up(names=INFRA)
        except StackStartError as first:
            # Four JVMs starting at once on a loaded two-core machine can miss a start window;
            # what did start is left running, the failed components get one more try.
            failed = ", ".join(failure.component for failure in first.failures)
            print(f"retrying the stack start once ({failed} failed)", flush=True)
            self.stack.up(names=INFRA)

    def down(self) -> None:
        """Stop the infrastructure (data stays in ``data_dir``)."""
        self.stack.down(names=INFRA)

    def component_pid(self, name: str) -> int | None:
        """The pid of a running infrastructure component."""
        from omium.infra.localstack._proc import read_pid

        return read_pid(self.stack.component(name).pid_file)

    def start_component(self, name: str) -> None:
        """Start one infrastructure component and wait until it answers."""
        self.stack.up(names=[name])

    def stop_component(self, name: str) -> None:
        """Stop one infrastructure component the way ``omium down`` does."""
        self.stack.down(names=[name])

    # --- Omium processes ----------------------------------------------------------------------

    def start(self, kind: str) -> None:
        """Start (or restart) one Omium process, appending to its log."""
        proc = self.procs[kind]
        proc.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = proc.log_path.open("ab")
        self._log_files.append(log)
        env = {k: v for k, v in os.environ.items() if not k.startswith("OMIUM_")}
        env.update(self.env)
        proc.popen = subprocess.Popen(
            proc.argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        proc.starts += 1
        self._write_pids()

    def _write_pids(self) -> None:
        pids = [str(p.popen.pid) for p in self.procs.values() if p.popen is not None]
        (self.data_dir / "run").mkdir(parents=True, exist_ok=True)
        (self.data_dir / "run" / "omium-procs.pids").write_text("\n".join(pids) + "\n")

    def reap_orphans(self) -> int:
        """Stop Omium processes a killed runner left behind (pids it wrote, this stack's env)."""
        pid_file = self.data_dir / "run" / "omium-procs.pids"
        if not pid_file.exists():
            return 0
        marker = f"OMIUM_STACK__DATA_DIR={self.data_dir}".encode()
        reaped = 0
        for text in pid_file.read_text().split():
            try:
                environ = Path(f"/proc/{int(text)}/environ").read_bytes()
            except (OSError, ValueError):
                continue
            if marker in environ.split(b"\0"):
                os.kill(int(text), signal.SIGKILL)
                reaped += 1
        pid_file.unlink()
        return reaped

    def start_all(self, timeout_s: float = 180.0) -> None:
        """Start every Omium process and wait for the gateway to be ready."""
        for kind in KINDS:
            self.start(kind)
        self.wait_gateway(timeout_s)

    def wait_gateway(self, timeout_s: float) -> None:
        """Wait until the gateway answers ``/ready``."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.check_alive()
            try:
                if httpx.get(f"{self.gateway_url}/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the gateway is not ready after {timeout_s:.0f} s")
            time.sleep(0.5)

    def check_alive(self) -> None:
        """Raise when an Omium process exited on its own (a crash the runner did not cause)."""
        for proc in self.procs.values():
            if proc.popen is not None and proc.popen.poll() is not None:
                raise RuntimeError(
                    f"omium {proc.kind} exited with {proc.popen.returncode}; see {proc.log_path}"
                )

    def kill(self, kind: str) -> None:
        """kill -9 one Omium process and reap it."""
        proc = self.procs[kind]
        assert proc.popen is not None
        proc.popen.send_signal(signal.SIGKILL)
        proc.popen.wait(timeout=30)
        proc.popen = None
        self._write_pids()

    def signal(self, kind: str, signum: signal.Signals) -> None:
        """Send a signal to one Omium process (SIGSTOP/SIGCONT)."""
        os.kill(self.procs[kind].pid, signum)

    def restart_all(self) -> None:
        """kill -9 every Omium process and start them all again."""
        for kind in KINDS:
            if self.procs[kind].popen is not None:
                self.kill(kind)
        self.start_all()

    def stop_all(self) -> None:
        """SIGTERM every Omium process, SIGKILL what is left after 20 s."""
        running = [p for p in self.procs.values() if p.popen is not None]
        for proc in running:
            assert proc.popen is not None
            proc.popen.send_signal(signal.SIGCONT)
            proc.popen.terminate()
        deadline = time.monotonic() + 20
        for proc in running:
            assert proc.popen is not None
            try:
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait()
            proc.popen = None
        for log in self._log_files:
            log.close()
        self._log_files.clear()


def _argv(kind: str) -> list[str]:
    if kind in ("gateway", "relay"):
        return [OMIUM, kind]
    if kind.startswith("project-"):
        return [OMIUM, "project", kind.removeprefix("project-")]
    # A stable instance name, as a pod's: a restart aborts its predecessor's open transaction.
    argv = [OMIUM, "worker", "--instance-id", f"chaos-{kind}", kind]
    if kind == "execute":
        argv += ["--concurrency", "4"]
    return argv
