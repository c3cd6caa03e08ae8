"""Apache Kafka 3.9 as one KRaft node (broker and controller in one JVM)."""

from __future__ import annotations

import base64
import logging
import secrets
import uuid
from pathlib import Path
from typing import Any

import structlog

from omium.infra.localstack._component import (
    INFRA_DIR,
    Component,
    Launch,
    error_text,
    host_port,
    render,
)
from omium.infra.localstack._dist import ensure_kafka_libs, java
from omium.infra.localstack._proc import run_once

log = structlog.get_logger(__name__)

SASL_USER = "omium"
"""The local broker's one SASL/PLAIN user."""

# librdkafka logs every refused connection while a probe waits for the broker; keep them quiet.
_QUIET = logging.getLogger("omium.localstack.kafka-probe")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (Kafka's ``Uuid``)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        # Kafka's own generator skips ids starting with '-': they read like CLI options.
        if not text.startswith("-"):
            return text


class Kafka(Component):
    """Kafka broker+controller; storage is formatted once with a remembered cluster id."""

    name = "kafka"
    marker = "kafka.Kafka"

    @property
    def _listener(self) -> tuple[str, int]:
        first = self.settings.kafka.bootstrap_servers.split(",")[0].strip()
        return host_port(first, 9092)

    @property
    def address(self) -> str:
        """Bootstrap servers clients use."""
        host, port = self._listener
        return f"{host}:{port}"

    def ports(self) -> list[tuple[str, int]]:
        """Broker, controller and SASL listeners."""
        host, port = self._listener
        stack = self.settings.stack
        return [(host, port), (host, stack.kafka_controller_port), (host, stack.kafka_sasl_port)]

    @property
    def sasl_address(self) -> str:
        """Bootstrap servers of the SASL_PLAINTEXT listener."""
        host, _ = self._listener
        return f"{host}:{self.settings.stack.kafka_sasl_port}"

    def sasl_credentials(self) -> tuple[str, str]:
        """The SASL/PLAIN user and its password, generated once with the stack's data."""
        secret = self.home / "sasl.password"
        if not secret.exists():
            secret.parent.mkdir(parents=True, exist_ok=True)
            secret.write_text(secrets.token_urlsafe(24) + "\n")
            secret.chmod(0o600)
        return SASL_USER, secret.read_text().strip()

    @property
    def data_dir(self) -> Path:
        """Kafka's ``log.dirs`` (topic partitions and KRaft metadata)."""
        return self.home / "data"

    def cluster_id(self) -> str:
        """The cluster id this data folder was (or will be) formatted with, created once."""
        id_file = self.home / "cluster.id"
        if id_file.exists():
            return id_file.read_text().strip()
        cluster_id = new_cluster_id()
        id_file.parent.mkdir(parents=True, exist_ok=True)
        id_file.write_text(cluster_id + "\n")
        return cluster_id

    def write_config(self) -> Path:
        """Render ``infra/kafka/server.properties`` into the data folder."""
        host, port = self._listener
        sasl_user, sasl_password = self.sasl_credentials()
        config = render(
            "kafka/server.properties",
            self.home / "server.properties",
            host=host,
            port=port,
            controller_port=self.settings.stack.kafka_controller_port,
            sasl_port=self.settings.stack.kafka_sasl_port,
            sasl_user=sasl_user,
            sasl_password=sasl_password,
            log_dirs=self.data_dir,
            partitions=self.settings.kafka.partitions,
        )
        config.chmod(0o600)  # it holds the SASL password
        return config

    def _jvm(self, libs: Path) -> list[str]:
        return [
            str(java()),
            f"-Dlog4j.configuration=file:{INFRA_DIR / 'kafka' / 'log4j.properties'}",
            "-cp",
            f"{libs}/*",
        ]

    def prepare(self) -> Launch:
        """Fetch jars if missing, write the config, format storage before the first start."""
        libs = ensure_kafka_libs(self.paths)
        self.home.mkdir(parents=True, exist_ok=True)
        config = self.write_config()
        if not (self.data_dir / "meta.properties").exists():
            cluster_id = self.cluster_id()
            log.info("formatting Kafka storage", cluster_id=cluster_id, path=str(self.data_dir))
            run_once(
                [
                    *self._jvm(libs),
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    cluster_id,
                    "-c",
                    str(config),
                    "--ignore-formatted",
                ],
                what="formatting Kafka storage",
                cwd=self.home,
            )
        heap = self.settings.stack.kafka_heap
        # The same flags kafka-run-class.sh uses; G1 with short pauses suits a latency-bound log.
        jvm_flags = [
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:InitiatingHeapOccupancyPercent=35",
            "-XX:+ExplicitGCInvokesConcurrent",
            "-Djava.awt.headless=true",
        ]
        cmd = self._jvm(libs)
        cmd[1:1] = jvm_flags
        return Launch(cmd=[*cmd, "kafka.Kafka", str(config)], cwd=self.home)

    def probe(self, timeout_s: float) -> str | None:
        """Ask for cluster metadata with confluent-kafka's AdminClient."""
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        try:
            config: dict[str, Any] = {
                "bootstrap.servers": self.settings.kafka.bootstrap_servers,
                "socket.timeout.ms": max(100, int(timeout_s * 1000)),
                "logger": _QUIET,
            }
            admin = AdminClient(config)
            metadata = admin.list_topics(timeout=timeout_s)
        except KafkaException as exc:
            return error_text(exc)
        if not metadata.brokers:
            return "metadata lists no brokers"
        return None
