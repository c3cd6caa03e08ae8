"""Omium's moving parts in one process, one thread each: what ``omium demo`` runs.

In production each part is its own Deployment (``omium relay``, ``omium worker <processor>``,
``omium worker orchestrator``, ``omium worker execute``); here they share a process so the demo
and the end-to-end tests start in seconds and stop cleanly. Each part still has its own Kafka
clients, consumer group and transactions, exactly as in its own process.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Self

import structlog

from omium.cli._health import ProjectionBeat, RelayBeat, beacon
from omium.commands import CommandApplications, event_store_env
from omium.commands.relay import OutboxRelay, RelayOptions
from omium.kernel.serde import AvroSerde, SchemaCatalog
from omium.kernel.settings import OmiumSettings
from omium.sdk.providers import LLMProvider
from omium.streams.approvals import ApprovalDeadlineProcessor
from omium.streams.base import Processor, ProcessorConfig, StreamRuntime
from omium.streams.command_worker import CommandWorker
from omium.streams.consensus import ConsensusProcessor
from omium.streams.policy import PolicyFeed, PolicyProcessor
from omium.streams.recovery import RecoveryProcessor
from omium.worker import build_services, orchestrator_runtime, run_execution_worker

log = structlog.get_logger(__name__)

PARTS = (
    "relay",
    "commands",
    "consensus",
    "policy",
    "recovery",
    "approvals",
    "orchestrator",
    "worker",
)
"""Every part, in start order."""


class Pipeline:
    """Starts the parts in threads and stops them all on exit.

    Args:
        settings: Omium settings (topic prefix, stores).
        schema: The event store schema (relay, command worker, orchestrator and worker).
        parts: Which parts to run (default: all of :data:`PARTS`).
        instance_id: Instance name of the stream processors (their transactional ids).
        providers: LLM providers for the worker (default: from ``settings.llm``).
        concurrency: Steps the worker runs at the same time.
        state_dir: Folder for the processors' local state (default: a temporary one).
        projections: Read models to keep up to date as well (``postgres``, ``redis`` ...);
            their errors are reported in :attr:`warnings`, they never stop the pipeline.
    """

    def __init__(
        self,
        settings: OmiumSettings,
        *,
        schema: str = "event_store",
        parts: Sequence[str] = PARTS,
        instance_id: str = "pipeline",
        providers: Mapping[str, LLMProvider] | None = None,
        concurrency: int = 4,
        state_dir: Path | None = None,
        projections: Sequence[str] = (),
    ) -> None:
        """Prepare; :meth:`start` starts the threads."""
        unknown = set(parts) - set(PARTS)
        if unknown:
            raise ValueError(f"unknown parts {sorted(unknown)} (known: {', '.join(PARTS)})")
        self.settings = settings
        self.schema = schema
        self.parts = [part for part in PARTS if part in parts]
        self._instance = instance_id
        self._providers = providers
        self._concurrency = concurrency
        self._own_state_dir = state_dir is None
        self.state_dir = state_dir or Path(tempfile.mkdtemp(prefix="omium-pipeline-"))
        self._stop = threading.Event()
        self._stack = ExitStack()
        self._threads: list[threading.Thread] = []
        self._relay: OutboxRelay | None = None
        self.projections = list(projections)
        self.errors: dict[str, BaseException] = {}
        self.warnings: dict[str, BaseException] = {}
        self.apps: CommandApplications | None = None

    def start(self) -> Self:
        """Start every part; return at once (parts join their groups in the background)."""
        env = event_store_env(self.settings, schema=self.schema, pool_size=4, max_overflow=12)
        self.apps = self._stack.enter_context(CommandApplications.create(env))
        serde = AvroSerde(SchemaCatalog.from_directory(self.settings.schemas_dir))
        for part in self.parts:
            self._spawn(part, self._target(part, self.apps, serde))
        for name in self.projections:
            self._spawn(f"projection {name}", partial(self._project, name, serde), fatal=False)
        return self

    def stop(self) -> None:
        """Stop every part and wait for it (running steps finish first)."""
        self._stop.set()
        if self._relay is not None:
            self._relay.stop()
        for thread in self._threads:
            thread.join(60)
        self._stack.close()
        if self._own_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        """Start on entry."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop on exit."""
        self.stop()

    # ------------------------------------------------------------------ the parts

    def _target(
        self, part: str, apps: CommandApplications, serde: AvroSerde
    ) -> Callable[[], object]:
        if part == "relay":
            return self._run_relay
        if part == "worker":
            services = build_services(self.settings, apps, serde=serde, providers=self._providers)
            health = beacon(self.settings, "worker", "execute", instance_id=services.worker_id)
            return lambda: run_execution_worker(
                self.settings,
                apps,
                stop=self._stop,
                concurrency=self._concurrency,
                services=services,
                health=health,
            )
        if part == "orchestrator":
            runtime = orchestrator_runtime(
                self.settings,
                apps,
                serde=serde,
                instance_id=self._instance,
                state_dir=self.state_dir,
            )
        else:
            processor = self._processor(part, apps, serde)
            config = ProcessorConfig.from_settings(
                part, self.settings, instance_id=self._instance, state_dir=self.state_dir
            )
            runtime = StreamRuntime(processor, config, serde=serde)
        runtime.health = beacon(self.settings, "processor", part, instance_id=self._instance)
        return lambda: runtime.run(self._stop)

    def _processor(self, part: str, apps: CommandApplications, serde: AvroSerde) -> Processor:
        if part == "commands":
            return CommandWorker(apps)
        if part == "consensus":
            return ConsensusProcessor()
        if part == "policy":
            return PolicyProcessor(PolicyFeed(self.settings.kafka, serde))
        if part == "approvals":
            return ApprovalDeadlineProcessor()
        return RecoveryProcessor()

    def _run_relay(self) -> None:
        # Progress reports are the relay's heartbeats.
        options = RelayOptions(poll_interval_s=0.25, progress_interval_s=5.0)
        beat = RelayBeat(beacon(self.settings, "relay", "relay", instance_id=self._instance))
        self._relay = OutboxRelay.create(
            self.settings, schema=self.schema, options=options, on_progress=beat
        )
        if self._stop.is_set():
            self._relay.stop()
        with self._relay:
            self._relay.run()
            beat.stopped(self._relay.progress)

    def _project(self, name: str, serde: AvroSerde) -> None:
        from omium.projections import live_runner, open_projection

        runner = live_runner(open_projection(name, self.settings), self.settings.kafka, serde)
        beat = ProjectionBeat(
            beacon(self.settings, "projection", name, instance_id=self._instance), runner
        )
        try:
            runner.run(stop=self._stop, on_batch=beat)
            beat.stopped()
        finally:
            runner.close()

    def _spawn(self, part: str, target: Callable[[], object], *, fatal: bool = True) -> None:
        def run() -> None:
            try:
                target()
            except BaseException as exc:  # reported by check(), the demo says which part died
                log.exception("pipeline.part_failed", part=part)
                (self.errors if fatal else self.warnings)[part] = exc

        thread = threading.Thread(target=run, name=f"omium-{part}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def check(self) -> None:
        """Raise the first error a part stopped with.

        Raises:
            RuntimeError: Naming the part, from its error.
        """
        for part, error in self.errors.items():
            raise RuntimeError(f"{part} stopped: {type(error).__name__}: {error}") from error
