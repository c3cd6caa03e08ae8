"""Typed settings for every Omium process.

Only an entrypoint builds a settings object (from class defaults, then ``OMIUM_*`` environment
variables, then explicit arguments); it passes the object inward. Defaults point at the local stack
that ``omium up`` starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]

ENV_PREFIX = "OMIUM_"


class KafkaSettings(BaseModel):
    """Where the event log is and how Omium's topics are laid out."""

    bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = "omium"
    partitions: int = Field(default=6, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    # Telemetry has no invariants and high volume, so it ages out; domain topics never do.
    telemetry_retention_ms: int = Field(default=7 * 24 * 3600 * 1000, ge=60_000)
    client_id: str = "omium"


class PostgresSettings(BaseModel):
    """Connection to the event store and relational read models."""

    host: str = "127.0.0.1"
    port: int = 5433
    user: str = "omium"
    password: SecretStr = SecretStr("omium")
    database: str = "omium"

    def dsn(self) -> str:
        """A libpq connection string (contains the password: never log it)."""
        secret = self.password.get_secret_value()
        return f"postgresql://{self.user}:{secret}@{self.host}:{self.port}/{self.database}"


class RedisSettings(BaseModel):
    """Live state, rate limits and fan-out."""

    url: str = "redis://127.0.0.1:6380/0"


class OpenSearchSettings(BaseModel):
    """Search read models."""

    url: str = "http://127.0.0.1:9200"


class AwsSettings(BaseModel):
    """S3 (checkpoint blobs) and Timestream (metrics); the AWS emulator locally."""

    endpoint_url: str | None = "http://127.0.0.1:5050"
    region: str = "us-east-1"
    access_key_id: SecretStr = SecretStr("testing")
    secret_access_key: SecretStr = SecretStr("testing")
    checkpoint_bucket: str = "omium-checkpoints"
    timestream_database: str = "omium"


class StackSettings(BaseModel):
    """Where ``omium up`` keeps the local stack's binaries, data and logs."""

    data_dir: Path = REPO_ROOT / ".omium"
    profile: Literal["core", "full"] = "full"
    service_user: str = "omium"
    start_timeout_s: float = Field(default=120.0, gt=0)
    opensearch_heap: str = "512m"
    kafka_heap: str = "512m"
    # The broker's listener comes from ``kafka.bootstrap_servers``; KRaft needs a second port.
    kafka_controller_port: int = Field(default=9093, gt=0, lt=65536)
    # How long ``omium down`` waits after SIGTERM before it sends SIGKILL.
    stop_timeout_s: float = Field(default=30.0, gt=0)


class OmiumSettings(BaseSettings):
    """All settings of an Omium process; nested keys read ``OMIUM_KAFKA__BOOTSTRAP_SERVERS`` etc."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="ignore",
    )

    environment: Literal["local", "test", "production"] = "local"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    schemas_dir: Path = REPO_ROOT / "schemas" / "avro"
    kafka: KafkaSettings = KafkaSettings()
    postgres: PostgresSettings = PostgresSettings()
    redis: RedisSettings = RedisSettings()
    opensearch: OpenSearchSettings = OpenSearchSettings()
    aws: AwsSettings = AwsSettings()
    stack: StackSettings = StackSettings()

    def masked_dump(self) -> dict[str, Any]:
        """Settings as a dict with every secret replaced by ``**********``, safe to print."""
        return self.model_dump(mode="json")


def load_settings(**overrides: Any) -> OmiumSettings:
    """Build settings: class defaults, then environment, then ``overrides`` (which win)."""
    return OmiumSettings(**overrides)
