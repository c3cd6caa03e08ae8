"""One entry point per processor: build it from settings, and run it until told to stop."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from omium.kernel.serde import AvroSerde, SchemaCatalog
from omium.kernel.settings import OmiumSettings
from streams.base import Processor, ProcessorConfig, StreamRuntime


def _consensus(settings: OmiumSettings, serde: AvroSerde, stack: ExitStack) -> Processor:
    from streams.consensus import ConsensusProcessor

    return ConsensusProcessor()


def _commands(settings: OmiumSettings, serde: AvroSerde, stack: ExitStack) -> Processor:
    from commands import CommandApplications, event_store_env
    from streams.command_worker import CommandWorker

    apps = stack.enter_context(CommandApplications.create(event_store_env(settings)))
    return CommandWorker(apps)


def _policy(settings: OmiumSettings, serde: AvroSerde, stack: ExitStack) -> Processor:
    from streams.policy import PolicyFeed, PolicyProcessor

    return PolicyProcessor(PolicyFeed(settings.kafka, serde))


def _recovery(settings: OmiumSettings, serde: AvroSerde, stack: ExitStack) -> Processor:
    from streams.recovery import RecoveryProcessor

    return RecoveryProcessor()


PROCESSORS: dict[str, Callable[[OmiumSettings, AvroSerde, ExitStack], Processor]] = {
    "consensus": _consensus,
    "commands": _commands,
    "policy": _policy,
    "recovery": _recovery,
}
"""Processor name -> builder; ``omium worker <name>`` runs one."""


def run_processor(
    name: str,
    settings: OmiumSettings,
    *,
    stop: threading.Event,
    **config_overrides: Any,
) -> dict[str, int]:
    """Run processor ``name`` until ``stop`` is set; return its counters.

    Args:
        name: A key of :data:`PROCESSORS`.
        settings: Omium settings (Kafka, PostgreSQL, schemas folder, data folder).
        stop: Set it (e.g. from a signal handler) to leave the group cleanly.
        config_overrides: :class:`ProcessorConfig` fields, e.g. ``instance_id``.

    Raises:
        KeyError: Unknown processor name.
        StreamsError: Kafka refused to go on (fenced, fatal error).
    """
    build = PROCESSORS[name]
    serde = AvroSerde(SchemaCatalog.from_directory(settings.schemas_dir))
    config = ProcessorConfig.from_settings(name, settings, **config_overrides)
    with ExitStack() as stack:
        runtime = StreamRuntime(build(settings, serde, stack), config, serde=serde)
        runtime.run(stop)
        return dict(runtime.stats)
