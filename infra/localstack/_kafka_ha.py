"""Three Kafka 3.9 KRaft nodes on this machine (``omium up --profile ha``), for fault tests.

Each node is broker and controller, with its own ports and data folder
(``<data_dir>/kafka-ha-<n>``); the three form one cluster (one cluster id, formatted once) whose
topics have replication factor 3 and ``min.insync.replicas`` 2. Point Omium at it with
:func:`ha_kafka_env` (``OMIUM_KAFKA__BOOTSTRAP_SERVERS`` = the three brokers,
``OMIUM_KAFKA__REPLICATION_FACTOR=3``).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, ClassVar

import structlog

from omium.infra.localstack._component import Component, Launch, error_text, render
from omium.infra.localstack._dist import ensure_kafka_libs
from omium.infra.localstack._kafka import _QUIET, Kafka, new_cluster_id
from omium.infra.localstack._proc import run_once
from omium.kernel.settings import OmiumSettings

log = structlog.get_logger(__name__)

HA_HOST = "127.0.0.1"
HA_NODES = (1, 2, 3)


def ha_broker_port(settings: OmiumSettings, node: int) -> int:
    """The broker port of node ``node`` (1..3)."""
    return settings.stack.kafka_ha_port + node - 1


def ha_controller_port(settings: OmiumSettings, node: int) -> int:
    """The KRaft controller port of node ``node`` (1..3)."""
    return settings.stack.kafka_ha_port + len(HA_NODES) + node - 1


def ha_bootstrap_servers(settings: OmiumSettings) -> str:
    """``host:port`` of the three brokers, comma-separated."""
    return ",".join(f"{HA_HOST}:{ha_broker_port(settings, n)}" for n in HA_NODES)


def ha_kafka_env(settings: OmiumSettings) -> dict[str, str]:
    """The environment that points every Omium process at the three-node cluster."""
    return {
        "OMIUM_KAFKA__BOOTSTRAP_SERVERS": ha_bootstrap_servers(settings),
        "OMIUM_KAFKA__REPLICATION_FACTOR": str(len(HA_NODES)),
    }


class KafkaHaNode(Kafka):
    """One node of the three-node cluster; subclasses fix ``node``."""

    node: ClassVar[int]

    @property
    def _listener(self) -> tuple[str, int]:
        return HA_HOST, ha_broker_port(self.settings, self.node)

    def ports(self) -> list[tuple[str, int]]:
        """Broker and controller listeners of this node."""
        return [
            (HA_HOST, ha_broker_port(self.settings, self.node)),
            (HA_HOST, ha_controller_port(self.settings, self.node)),
        ]

    def cluster_id(self) -> str:
        """The cluster id all three nodes are formatted with, created once."""
        id_file = self.paths.home("kafka-ha") / "cluster.id"
        if id_file.exists():
            return id_file.read_text().strip()
        id_file.parent.mkdir(parents=True, exist_ok=True)
        cluster_id = new_cluster_id()
        # The three nodes prepare in parallel: the file appears whole (a hard link of a written
        # temporary file) or not at all, so no node reads it half-written and formats its storage
        # with another id (the nodes then refuse each other's votes: INCONSISTENT_CLUSTER_ID).
        draft = id_file.with_name(f"cluster.id.{os.getpid()}.{threading.get_ident()}")
        draft.write_text(cluster_id + "\n")
        try:
            os.link(draft, id_file)
        except FileExistsError:
            return id_file.read_text().strip()
        finally:
            draft.unlink()
        return cluster_id

    def write_config(self) -> Path:
        """Render ``infra/kafka/server-ha.properties`` for this node."""
        voters = ",".join(f"{n}@{HA_HOST}:{ha_controller_port(self.settings, n)}" for n in HA_NODES)
        return render(
            "kafka/server-ha.properties",
            self.home / "server.properties",
            node_id=self.node,
            voters=voters,
            host=HA_HOST,
            port=ha_broker_port(self.settings, self.node),
            controller_port=ha_controller_port(self.settings, self.node),
            log_dirs=self.data_dir,
            partitions=self.settings.kafka.partitions,
        )

    def prepare(self) -> Launch:
        """As the single node, with this node's config and the smaller HA heap."""
        libs = ensure_kafka_libs(self.paths)
        self.home.mkdir(parents=True, exist_ok=True)
        config = self.write_config()
        if not (self.data_dir / "meta.properties").exists():
            cluster_id = self.cluster_id()
            log.info("formatting Kafka storage", node=self.node, cluster_id=cluster_id)
            run_once(
                [*self._jvm(libs), "kafka.tools.StorageTool", "format", "-t", cluster_id,
                 "-c", str(config), "--ignore-formatted"],
                what=f"formatting Kafka HA node {self.node} storage",
                cwd=self.home,
            )  # fmt: skip
        heap = self.settings.stack.kafka_ha_heap
        cmd = self._jvm(libs)
        cmd[1:1] = [f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true"]
        return Launch(cmd=[*cmd, "kafka.Kafka", str(config)], cwd=self.home)

    def probe(self, timeout_s: float) -> str | None:
        """Ready when this node's broker answers and is registered in the cluster's metadata."""
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        try:
            config: dict[str, Any] = {
                "bootstrap.servers": self.address,
                "socket.timeout.ms": max(100, int(timeout_s * 1000)),
                "logger": _QUIET,
            }
            metadata = AdminClient(config).list_topics(timeout=timeout_s)
        except KafkaException as exc:
            return error_text(exc)
        if self.node not in metadata.brokers:
            return f"node {self.node} is not among the cluster's brokers yet"
        return None


class KafkaHa1(KafkaHaNode):
    """Node 1 of the three-node cluster."""

    name = "kafka-ha-1"
    marker = "kafka-ha-1/server.properties"
    node = 1


class KafkaHa2(KafkaHaNode):
    """Node 2 of the three-node cluster."""

    name = "kafka-ha-2"
    marker = "kafka-ha-2/server.properties"
    node = 2


class KafkaHa3(KafkaHaNode):
    """Node 3 of the three-node cluster."""

    name = "kafka-ha-3"
    marker = "kafka-ha-3/server.properties"
    node = 3


HA_COMPONENTS: tuple[type[Component], ...] = (KafkaHa1, KafkaHa2, KafkaHa3)
