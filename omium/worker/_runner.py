"""Building the worker from settings, and running the orchestrator and the execution worker."""

from __future__ import annotations

import os
import secrets
import socket
import threading
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import redis

from omium.commands import CommandApplications
from omium.kernel.blobs import CheckpointBlobStore
from omium.kernel.health import HealthBeacon
from omium.kernel.kafka import ensure_topics
from omium.kernel.serde import AvroSerde, SchemaCatalog
from omium.kernel.settings import OmiumSettings
from omium.sdk.providers import LLMProvider, providers_from_settings
from omium.streams.base import ProcessorConfig, StreamRuntime
from omium.streams.policy import PolicyFeed
from omium.worker._definitions import DefinitionCache
from omium.worker._heartbeat import Heartbeats
from omium.worker._orchestrator import Orchestrator
from omium.worker._policy_gate import PolicyGate
from omium.worker._services import WorkerServices
from omium.worker._state import StateStore
from omium.worker._telemetry import Telemetry
from omium.worker._work import ORCHESTRATOR_APP, work_topic_spec
from omium.worker._worker import ExecutionWorker


def new_worker_id() -> str:
    """A worker id unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def build_services(
    settings: OmiumSettings,
    apps: CommandApplications,
    *,
    serde: AvroSerde | None = None,
    providers: Mapping[str, LLMProvider] | None = None,
    worker_id: str | None = None,
    heartbeat_ttl_s: float = 5.0,
    inline_max_bytes: int | None = None,
    pipeline: bool = True,
) -> WorkerServices:
    """Everything an execution worker needs, from settings.

    Args:
        settings: Omium settings (Kafka, Redis, AWS, LLM).
        apps: The command applications on the event store to report to.
        serde: Encodes telemetry (default: the shipped schemas).
        providers: LLM providers by name (default: built from ``settings.llm``).
        worker_id: This worker's id (default: host, pid and a random suffix).
        heartbeat_ttl_s: How long a claim lives without a heartbeat.
        inline_max_bytes: Largest checkpoint state kept inline (default: the blob store's).
        pipeline: Whether the worker goes on to a run's next step itself when nobody else must
            decide (one save, no round trip through the orchestrator).
    """
    serde = serde or AvroSerde(SchemaCatalog.from_directory(settings.schemas_dir))
    worker_id = worker_id or new_worker_id()
    client = redis.Redis.from_url(settings.redis.url)
    blob_options: dict[str, Any] = {"key_prefix": f"{settings.kafka.topic_prefix}/"}
    if inline_max_bytes is not None:
        blob_options["inline_max_bytes"] = inline_max_bytes
    blobs = CheckpointBlobStore.from_settings(settings.aws, **blob_options)
    if providers is None:
        providers = providers_from_settings(settings.llm)
    return WorkerServices(
        apps=apps,
        definitions=DefinitionCache(apps.workflows),
        states=StateStore(apps.executions, blobs),
        telemetry=Telemetry(settings.kafka, serde),
        heartbeats=Heartbeats(
            client, prefix=settings.kafka.topic_prefix, worker_id=worker_id, ttl_s=heartbeat_ttl_s
        ),
        redis=client,
        providers=dict(providers),
        prefix=settings.kafka.topic_prefix,
        worker_id=worker_id,
        default_model=settings.llm.default_model,
        policies=PolicyGate(partial(PolicyFeed, settings.kafka, serde)),
        pipeline=pipeline,
    )


def run_execution_worker(
    settings: OmiumSettings,
    apps: CommandApplications,
    *,
    stop: threading.Event,
    concurrency: int = 4,
    services: WorkerServices | None = None,
    ready: threading.Event | None = None,
    health: HealthBeacon | None = None,
) -> dict[str, int]:
    """Run an execution worker until ``stop`` is set; return its counters."""
    services = services or build_services(settings, apps)
    worker = ExecutionWorker(services, kafka=settings.kafka, concurrency=concurrency, health=health)
    if ready is not None:
        ready.set()
    try:
        worker.run(stop)
    finally:
        services.telemetry.close()
    return {**worker.stats, **{f"pipeline_{k}": v for k, v in worker.pipeline_stats.items()}}


def orchestrator_runtime(
    settings: OmiumSettings,
    apps: CommandApplications,
    *,
    serde: AvroSerde | None = None,
    instance_id: str | None = None,
    state_dir: Path | None = None,
    **config: Any,
) -> StreamRuntime:
    """An orchestrator instance (a stream processor) ready to ``run``.

    Args:
        settings: Omium settings.
        apps: The command applications it schedules and completes with.
        serde: Decodes events (default: the shipped schemas).
        instance_id: Stable instance name (part of its transactional id).
        state_dir: Where its state tables' local copies live.
        config: Other :class:`omium.streams.base.ProcessorConfig` fields.
    """
    serde = serde or AvroSerde(SchemaCatalog.from_directory(settings.schemas_dir))
    # Every step waits for the orchestrator twice (its completion, then its successor's
    # scheduling), and the runtime's poll waits its whole timeout when fewer messages than a
    # batch arrive: a short timeout keeps that wait short.
    overrides: dict[str, Any] = {"poll_timeout_s": 0.02, **config}
    if instance_id is not None:
        overrides["instance_id"] = instance_id
    if state_dir is not None:
        overrides["state_dir"] = state_dir
    processor_config = ProcessorConfig.from_settings(ORCHESTRATOR_APP, settings, **overrides)
    ensure_topics(settings.kafka)
    ensure_topics(settings.kafka, specs=[work_topic_spec(settings.kafka)])
    return StreamRuntime(Orchestrator(apps), processor_config, serde=serde)
