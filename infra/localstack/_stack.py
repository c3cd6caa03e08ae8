"""Start, stop and inspect the whole local stack (what ``omium up/down/status`` drive)."""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Literal

import structlog

from omium.infra.localstack._component import Component, error_text
from omium.infra.localstack._dist import ensure_kafka_libs, ensure_opensearch, java_home
from omium.infra.localstack._errors import (
    ComponentStartError,
    StackError,
    StackNotRunningError,
    StackStartError,
)
from omium.infra.localstack._kafka import Kafka
from omium.infra.localstack._kafka_ha import KafkaHa1, KafkaHa2, KafkaHa3
from omium.infra.localstack._moto import Moto
from omium.infra.localstack._opensearch import OpenSearch
from omium.infra.localstack._paths import StackPaths
from omium.infra.localstack._postgres import Postgres
from omium.infra.localstack._proc import (
    ensure_traversable,
    is_alive,
    port_open,
    read_pid,
    service_account,
    spawn,
    stop,
    tail,
)
from omium.infra.localstack._redis import Redis
from omium.kernel.settings import OmiumSettings, load_settings

log = structlog.get_logger(__name__)

Profile = Literal["core", "full", "ha"]
State = Literal["running", "not ready", "stopped", "foreign"]

# Slowest first: the pool starts them in this order, so OpenSearch gets its head start.
_TYPES: dict[str, type[Component]] = {
    "opensearch": OpenSearch,
    "kafka": Kafka,
    "kafka-ha-1": KafkaHa1,
    "kafka-ha-2": KafkaHa2,
    "kafka-ha-3": KafkaHa3,
    "postgres": Postgres,
    "redis": Redis,
    "moto": Moto,
}
PROFILES: dict[str, tuple[str, ...]] = {
    "core": ("kafka", "postgres", "redis"),
    "full": ("kafka", "postgres", "redis", "opensearch", "moto"),
    # Three Kafka nodes (RF 3, min.insync.replicas 2) for fault tests; see _kafka_ha.py.
    "ha": ("kafka-ha-1", "kafka-ha-2", "kafka-ha-3", "postgres", "redis"),
}
ALL_COMPONENTS: tuple[str, ...] = PROFILES["full"]


@dataclass(frozen=True)
class StartResult:
    """What ``up`` did for one component.

    Attributes:
        name: Component name.
        action: ``"started"`` or ``"already running"``.
        seconds: Wall time from the start of its work until it answered (includes preparation).
        prepare_seconds: Part of ``seconds`` spent on downloads/initialisation before launch.
        pid: Server pid.
        address: Where clients connect.
    """

    name: str
    action: Literal["started", "already running"]
    seconds: float
    prepare_seconds: float
    pid: int
    address: str


@dataclass(frozen=True)
class StopResult:
    """What ``down`` did for one component (``action``: stopped, killed or not running)."""

    name: str
    action: str
    seconds: float
    pid: int | None


@dataclass(frozen=True)
class ComponentStatus:
    """One row of ``omium status``.

    Attributes:
        name: Component name.
        address: Where clients connect.
        state: ``running`` (our process, answering), ``not ready`` (our process, not answering),
            ``stopped`` (no process of ours, port free) or ``foreign`` (port taken by a process
            omium did not start).
        pid: Our server's pid when it is alive.
        log_path: The component's log file.
        detail: Why it is not ready, when it is not.
    """

    name: str
    address: str
    state: State
    pid: int | None
    log_path: str
    detail: str = ""


class LocalStack:
    """The local stack of one data folder (``settings.stack.data_dir``).

    Args:
        settings: Settings to use; ``load_settings()`` when omitted.
    """

    def __init__(self, settings: OmiumSettings | None = None) -> None:
        self.settings = settings or load_settings()
        self.paths = StackPaths(self.settings.stack.data_dir.resolve())

    def component(self, name: str) -> Component:
        """The component called ``name`` (``kafka``, ``postgres``, ``redis``, ...)."""
        account = None
        if _TYPES[name].needs_service_user:
            account = service_account(self.settings.stack.service_user)
        return _TYPES[name](self.settings, self.paths, account)

    def _components(self, names: Sequence[str]) -> list[Component]:
        return [self.component(name) for name in _TYPES if name in names]

    def _profile(self, profile: str | None) -> tuple[str, ...]:
        chosen = profile or self.settings.stack.profile
        if chosen not in PROFILES:
            raise StackError(f"unknown profile {chosen!r}; choose one of {', '.join(PROFILES)}")
        return PROFILES[chosen]

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # Two `omium up` at once (two terminals, or a test and a developer) would both see
        # "not running" and start a second copy of every server.
        self.paths.ensure()
        with open(self.paths.run / "stack.lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("waiting for another omium up/down on this data folder")
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def fetch(self, profile: str | None = None) -> None:
        """Download what the profile needs (Kafka jars, OpenSearch) without starting anything."""
        names = self._profile(profile)
        self.paths.ensure()
        java_home()
        ensure_kafka_libs(self.paths)
        if "opensearch" in names:
            ensure_opensearch(self.paths)

    def up(
        self,
        profile: str | None = None,
        on_result: Callable[[StartResult], None] | None = None,
        *,
        names: Sequence[str] | None = None,
    ) -> list[StartResult]:
        """Start every component of ``profile`` that is not running, in parallel, and wait.

        Components already running (pid file, live process, answering) are left alone.

        Args:
            profile: ``core``, ``full`` or ``ha``; ``settings.stack.profile`` when None.
            on_result: Called as each component becomes ready (for progress output).
            names: Start these components instead of a profile's (e.g. the ``ha`` nodes with
                OpenSearch, or one node brought back after a fault test).

        Returns:
            One result per component, in start order.

        Raises:
            StackStartError: Some components failed; each failure names its log file.
        """
        if names is None:
            names = self._profile(profile)
        elif unknown := [name for name in names if name not in _TYPES]:
            raise StackError(f"unknown components {', '.join(unknown)}")
        with self._locked():
            components = self._components(names)
            for account in {c.account for c in components if c.account is not None}:
                ensure_traversable(self.paths.root, account)
            results: dict[str, StartResult] = {}
            failures: list[ComponentStartError] = []
            with ThreadPoolExecutor(max_workers=len(components)) as pool:
                futures = {pool.submit(self._start, c): c for c in components}
                for future in as_completed(futures):
                    component = futures[future]
                    try:
                        result = future.result()
                    except ComponentStartError as exc:
                        failures.append(exc)
                        continue
                    except Exception as exc:  # a bug or OS error: still name the component
                        failures.append(
                            ComponentStartError(
                                component.name,
                                error_text(exc),
                                component.log_path,
                                tail(component.log_path, 20),
                            )
                        )
                        continue
                    results[component.name] = result
                    if on_result is not None:
                        on_result(result)
            if failures:
                raise StackStartError(failures)
            return [results[c.name] for c in components]

    def _start(self, component: Component) -> StartResult:
        began = time.monotonic()
        timeout = self.settings.stack.start_timeout_s
        pid = read_pid(component.pid_file)
        if pid is not None and is_alive(pid, component.marker):
            # Ours and alive. Recently launched (a previous `up` that timed out, a concurrent
            # start): give it the rest of its start window. Long running yet not answering
            # (hung, or settings changed since it started): one check, then fail fast.
            age = time.time() - component.pid_file.stat().st_mtime
            deadline = began + max(0.0, timeout - age) if age < timeout else began
            if deadline <= began:
                reason = component.probe(5.0)
                if reason is not None:
                    raise ComponentStartError(
                        component.name,
                        f"pid {pid} has been running {age:.0f}s but does not answer at "
                        f"{component.address}: {reason}. If settings changed since it started, "
                        "run `omium down` then `omium up`",
                        component.log_path,
                        tail(component.log_path),
                    )
            else:
                self._wait_ready(component, pid, deadline, component.probe)
            return StartResult(
                component.name,
                "already running",
                time.monotonic() - began,
                0.0,
                pid,
                component.address,
            )
        component.pid_file.unlink(missing_ok=True)
        busy = [f"{host}:{port}" for host, port in component.ports() if port_open(host, port)]
        if busy:
            raise ComponentStartError(
                component.name,
                f"{', '.join(busy)} already in use by a process omium did not start (another "
                "stack or a system service); stop it or change the port in settings",
                component.log_path,
            )
        try:
            launch = component.prepare()
        except StackError as exc:
            raise ComponentStartError(component.name, str(exc), component.log_path) from exc
        prepared = time.monotonic()
        pid = spawn(
            launch.cmd,
            log_path=component.log_path,
            pid_file=component.pid_file,
            cwd=launch.cwd,
            env=launch.env,
            account=launch.account,
        )
        self._wait_ready(component, pid, prepared + timeout, component.startup_probe)
        component.after_start()
        # Readiness can flap just after start: a new KRaft node is listed by the peers that have
        # replayed its unfencing before its own metadata lists it (CI: "node 2 is not among the
        # cluster's brokers yet" right after the first check passed). Wait for a client's view,
        # for the rest of the start window and at least one more check.
        usable_by = max(prepared + timeout, time.monotonic() + 5.0)
        self._wait_ready(component, pid, usable_by, component.probe, "started but not usable")
        return StartResult(
            component.name,
            "started",
            time.monotonic() - began,
            prepared - began,
            pid,
            component.address,
        )

    def _wait_ready(
        self,
        component: Component,
        pid: int,
        deadline: float,
        probe: Callable[[float], str | None],
        failure: str = "not ready",
    ) -> None:
        reason = "not checked yet"
        began = time.monotonic()
        while True:
            # No marker check: a fresh launch may still be a wrapper script before its exec.
            if not is_alive(pid):
                component.pid_file.unlink(missing_ok=True)
                raise ComponentStartError(
                    component.name,
                    f"process {pid} exited before it was ready",
                    component.log_path,
                    tail(component.log_path),
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ComponentStartError(
                    component.name,
                    f"{failure} after {time.monotonic() - began:.0f}s (last check: "
                    f"{reason}); pid {pid} is left running, `omium down` stops it",
                    component.log_path,
                    tail(component.log_path),
                )
            reason = probe(min(2.0, max(0.5, remaining))) or ""
            if not reason:
                return
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))

    def down(
        self,
        on_result: Callable[[StopResult], None] | None = None,
        *,
        names: Sequence[str] | None = None,
    ) -> list[StopResult]:
        """Stop every component this data folder's pid files name; data stays on disk.

        Args:
            on_result: Called as each component has stopped.
            names: Stop only these components (e.g. the ``ha`` profile's Kafka nodes).

        Returns:
            One result per component (``not running`` for those without a live process).
        """
        chosen = [name for name in _TYPES if names is None or name in names]
        with self._locked():
            components = [_TYPES[name](self.settings, self.paths, None) for name in chosen]
            with ThreadPoolExecutor(max_workers=len(components)) as pool:
                futures = [pool.submit(self._stop, c) for c in components]
                results = []
                for future in futures:
                    results.append(future.result())
                    if on_result is not None:
                        on_result(results[-1])
            return results

    def _stop(self, component: Component) -> StopResult:
        began = time.monotonic()
        pid = read_pid(component.pid_file)
        action = "not running"
        if pid is not None:
            action = stop(
                pid, component.marker, component.stop_signal, self.settings.stack.stop_timeout_s
            )
            component.pid_file.unlink(missing_ok=True)
        return StopResult(
            component.name,
            action,
            time.monotonic() - began,
            pid if action != "not running" else None,
        )

    def status(self, timeout_s: float = 2.0) -> list[ComponentStatus]:
        """Inspect every component (all profiles) without changing anything."""
        components = [_TYPES[name](self.settings, self.paths, None) for name in _TYPES]
        with ThreadPoolExecutor(max_workers=len(components)) as pool:
            return list(pool.map(lambda c: self._status(c, timeout_s), components))

    def _status(self, component: Component, timeout_s: float) -> ComponentStatus:
        pid = read_pid(component.pid_file)
        alive = pid is not None and is_alive(pid, component.marker)
        detail = ""
        if alive:
            detail = component.probe(timeout_s) or ""
            state: State = "not ready" if detail else "running"
        elif any(port_open(host, port) for host, port in component.ports()):
            state, detail = "foreign", "port in use by a process omium did not start"
        else:
            state = "stopped"
        return ComponentStatus(
            component.name,
            component.address,
            state,
            pid if alive else None,
            str(component.log_path),
            detail,
        )

    def check_ready(self, profile: str | None = None, timeout_s: float = 5.0) -> None:
        """Verify every component of ``profile`` answers like a client would see it.

        Unlike :meth:`status` this does not care who started the servers.

        Raises:
            StackNotRunningError: Naming the components that do not answer.
        """
        names = self._profile(profile)
        components = [_TYPES[name](self.settings, self.paths, None) for name in names]
        with ThreadPoolExecutor(max_workers=len(components)) as pool:
            reasons = list(pool.map(lambda c: c.probe(timeout_s), components))
        failed = [
            f"{c.name} ({reason})" for c, reason in zip(components, reasons, strict=True) if reason
        ]
        if failed:
            raise StackNotRunningError(failed, profile or self.settings.stack.profile)
