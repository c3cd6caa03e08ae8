"""One entry point per processor: build it from settings, and run it until told to stop."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from omium.kernel.health import HealthBeacon
from omium.kernel.serde import AvroSerde, SchemaCatalog
from omium.kernel.settings import OmiumSettings
from omium.streams.base import Processor, ProcessorConfig, StreamRuntime


def _consensus(settings: OmiumSettings, serde: AvroSerde, stack: ExitStack) -> Processor:
    from omium.streams.consensus import ConsensusProcessor

    return ConsensusProcessor()


def _commands(settings: OmiumSettings, serde: AvroSerde, stack: ExitStack) -> Processor:
    from omium.commands import CommandApplications, event_store_env
    from omium.streams.command_worker import CommandWorker

    apps = stack.enter_context(CommandApplications.create(event_store_env(settings)))
    return CommandWorker(apps)


def _policy(settings: OmiumSettings, serde: AvroSerde, stack: ExitStack) -> Processor:
    from omium.streams.policy import PolicyFeed, PolicyProcessor

    return PolicyProcessor(PolicyFeed(settings.kafka, serde))


def _recovery(settings: OmiumSettings, serde: AvroSerde, stack: ExitStack) -> Processor:
    from omium.streams.recovery import RecoveryProcessor

    return RecoveryProcessor()


def _diagnosis(settings: OmiumSettings, serde: AvroSerde, stack: ExitStack) -> Processor:
    from omium.commands import CommandApplications, event_store_env
    from omium.sdk.providers import providers_from_settings
    from omium.streams.recovery import DiagnosisProcessor

    apps = stack.enter_context(CommandApplications.create(event_store_env(settings)))
    return DiagnosisProcessor(apps, providers_from_settings(settings.llm), settings.llm)


def _approvals(settings: OmiumSettings, serde: AvroSerde, stack: ExitStack) -> Processor:
    from omium.streams.approvals import ApprovalDeadlineProcessor

    return ApprovalDeadlineProcessor()


PROCESSORS: dict[str, Callable[[OmiumSettings, AvroSerde, ExitStack], Processor]] = {
    "consensus": _consensus,
    "commands": _commands,
    "policy": _policy,
    "recovery": _recovery,
    "diagnosis": _diagnosis,
    "approvals": _approvals,
}
"""Processor name -> builder; ``omium worker <name>`` runs one."""


def run_processor(
    name: str,
    settings: OmiumSettings,
    *,
    stop: threading.Event,
    health: HealthBeacon | None = None,
    **config_overrides: Any,
) -> dict[str, int]:
    """Run processor ``name`` until ``stop`` is set; return its counters.

    Args:
        name: A key of :data:`PROCESSORS`.
        settings: Omium settings (Kafka, PostgreSQL, schemas folder, data folder).
        stop: Set it (e.g. from a signal handler) to leave the group cleanly.
        health: Where the instance's heartbeat goes (none: no heartbeat).
        config_overrides: :class:`ProcessorConfig` fields, e.g. ``instance_id``.

    Raises:
        KeyError: Unknown processor name.
        StreamsError: Kafka refused to go on (fenced, fatal error).
    """
    build = PROCESSORS[name]
    serde = AvroSerde(SchemaCatalog.from_directory(settings.schemas_dir))
    config = ProcessorConfig.from_settings(name, settings, **config_overrides)
    with ExitStack() as stack:
        runtime = StreamRuntime(build(settings, serde, stack), config, serde=serde, health=health)
        runtime.run(stop)
        return dict(runtime.stats)
