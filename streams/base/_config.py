"""How one stream processor instance runs: its group, its transactional id and its state folder."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from omium.kernel.kafka import topic_name
from omium.kernel.settings import KafkaSettings, OmiumSettings

POD_NAME_ENV = "POD_NAME"
"""The pod's name when the deployment passes it (Kubernetes downward API)."""
HOSTNAME_ENV = "HOSTNAME"
"""Set by Kubernetes to the pod's name, and by most shells to the host's."""
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def default_instance_id(environ: Mapping[str, str] | None = None, *, pid: int | None = None) -> str:
    """An instance name unique per process, stable across restarts where the deployment allows.

    ``<pod or host name>-<pid>``: the pod name (``POD_NAME``, else ``HOSTNAME``, else the host
    name) tells instances on different pods or hosts apart, the process id those on one host. In
    a container the processor's pid is the same after every restart of the pod's container, so
    a restarted instance fences its crashed predecessor at once; on a bare host a restarted
    process has a new pid, and the transaction its predecessor left open is aborted by the broker
    after ``transaction_timeout_ms`` instead. Pass ``--instance-id`` for a name stable across
    restarts there.

    Args:
        environ: The environment to read (the entrypoint passes ``os.environ``; none: the host
            name).
        pid: The process id (this process's by default).
    """
    environ = environ or {}
    name = environ.get(POD_NAME_ENV) or environ.get(HOSTNAME_ENV) or socket.gethostname()
    name = _UNSAFE.sub("-", name).strip("-") or "instance"
    return f"{name}-{os.getpid() if pid is None else pid}"


@dataclass(frozen=True)
class ProcessorConfig:
    """Settings of one processor instance.

    Attributes:
        app_id: The processor's name within the deployment (``consensus``, ``policy``, ...); the
            consumer group is ``<topic prefix>.streams.<app_id>``.
        kafka: Where Kafka is and the topic layout.
        instance_id: Name of this instance, unique among running instances (two sharing one
            would share a transactional id and fence each other); see
            :func:`default_instance_id`. It is part of the transactional id, so an instance
            restarted under the same name fences its crashed predecessor and aborts the
            transaction it left open at once instead of after ``transaction_timeout_ms``.
        state_dir: Folder for the local RocksDB copies of the state tables (a cache: it is
            rebuilt from the changelog topics whenever partitions are assigned).
        transaction_timeout_ms: How long a transaction left open by a dead instance blocks
            ``read_committed`` readers of its partitions before the broker aborts it.
        session_timeout_ms: How long the group waits for a silent instance before rebalancing.
        max_batch: Messages processed per transaction at most.
        poll_timeout_s: How long one poll waits for messages; also the timer resolution.
        tick_interval_s: How often timers (``Processor.on_tick``) run per owned partition.
        restore_buffer_bytes: Changelog bytes a state restore holds in memory at most (its write
            batch, and the changelog reader's fetch queue); restores stream, so state larger
            than memory restores.
    """

    app_id: str
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    instance_id: str = field(default_factory=default_instance_id)
    state_dir: Path = Path(".omium/streams")
    transaction_timeout_ms: int = 10_000
    session_timeout_ms: int = 10_000
    max_batch: int = 500
    poll_timeout_s: float = 0.2
    tick_interval_s: float = 0.25
    restore_buffer_bytes: int = 4 * 1024 * 1024

    @classmethod
    def from_settings(
        cls, app_id: str, settings: OmiumSettings, **overrides: object
    ) -> ProcessorConfig:
        """Build the config of ``app_id`` from Omium settings; ``overrides`` win."""
        values: dict[str, object] = {
            "app_id": app_id,
            "kafka": settings.kafka,
            "state_dir": settings.stack.data_dir / "streams",
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    @property
    def group_id(self) -> str:
        """The consumer group shared by every instance of this processor."""
        return f"{self.kafka.topic_prefix}.streams.{self.app_id}"

    @property
    def transactional_id(self) -> str:
        """The producer's transactional id: one per instance, stable across restarts."""
        return f"{self.group_id}.{self.instance_id}"

    def topic(self, area: str) -> str:
        """The full name of an Omium topic (``<prefix>.<area>``)."""
        return topic_name(self.kafka, area)

    def internal_topic(self, suffix: str) -> str:
        """A topic private to this processor, e.g. a state table's changelog."""
        return f"{self.group_id}.{suffix}"

    def table_dir(self, table: str) -> Path:
        """Where one table's local RocksDB copies live (one folder per partition)."""
        return self.state_dir / self.group_id / self.instance_id / table
