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
    # Tests create many short-lived topics; 512m runs out of heap after ~10k partitions.
    kafka_heap: str = "1g"
    # The broker's listener comes from ``kafka.bootstrap_servers``; KRaft needs a second port.
    kafka_controller_port: int = Field(default=9093, gt=0, lt=65536)
    # How long ``omium down`` waits after SIGTERM before it sends SIGKILL.
    stop_timeout_s: float = Field(default=30.0, gt=0)


class AuthSettings(BaseModel):
    """How the gateway authenticates callers: bearer JWTs (HS256 or RS256/JWKS) and API keys."""

    # HS256 signing secret. Unset means the development secret, which only ``local``/``test``
    # environments accept; production refuses to start on it (see ``gateway.resolve_jwt_secret``).
    jwt_secret: SecretStr | None = None
    # RS256: the identity provider's JWKS document; keys are cached for ``jwks_cache_s``.
    jwks_url: str | None = None
    jwks_cache_s: int = Field(default=300, ge=0)
    jwks_timeout_s: float = Field(default=3.0, gt=0)
    audience: str = "omium"
    # Checked only when set, so a local token minted without ``iss`` still works.
    issuer: str | None = None
    # Clock skew tolerated on ``exp``/``nbf``/``iat``.
    leeway_s: int = Field(default=30, ge=0)
    # Upper bound on the lifetime of a token ``omium token`` mints.
    max_dev_token_ttl_s: int = Field(default=7 * 24 * 3600, gt=0)


class BucketSettings(BaseModel):
    """One token bucket: ``capacity`` requests in a burst, refilled at ``refill_per_s``."""

    capacity: int = Field(gt=0)
    refill_per_s: float = Field(gt=0)


class TierSettings(BaseModel):
    """The limits of one tier: a bucket per tenant and a bucket per API key."""

    tenant: BucketSettings
    api_key: BucketSettings


def _default_tiers() -> dict[str, TierSettings]:
    return {
        "standard": TierSettings(
            tenant=BucketSettings(capacity=200, refill_per_s=100),
            api_key=BucketSettings(capacity=100, refill_per_s=50),
        ),
        "premium": TierSettings(
            tenant=BucketSettings(capacity=2000, refill_per_s=1000),
            api_key=BucketSettings(capacity=1000, refill_per_s=500),
        ),
    }


class RateLimitSettings(BaseModel):
    """Token-bucket limits kept in Redis; tenants are on ``default_tier`` unless listed."""

    enabled: bool = True
    default_tier: str = "standard"
    tiers: dict[str, TierSettings] = Field(default_factory=_default_tiers)
    # tenant id -> tier name; a tenant not listed is on ``default_tier``.
    tenant_tiers: dict[str, str] = Field(default_factory=dict)
    key_prefix: str = "omium:ratelimit"
    # Short on purpose: a slow Redis must not hold requests; the gateway fails closed instead.
    redis_timeout_s: float = Field(default=0.5, gt=0)


class GatewaySettings(BaseModel):
    """The FastAPI gateway: where it listens, request limits, probes, auth and rate limits."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, gt=0, lt=65536)
    # Bodies above this are refused with 413 before anything parses them.
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    # Each dependency checked by ``/ready`` gets this long before it counts as down.
    ready_timeout_s: float = Field(default=2.0, gt=0)
    # When set, ``/metrics`` needs ``Authorization: Bearer <metrics_token>``; else it is open.
    metrics_token: SecretStr | None = None
    # Problem ``type`` URIs are this prefix plus a slug (``...:rate-limited``).
    problem_type_base: str = "urn:omium:problem:"
    # "kafka" publishes CommandRecorded events to omium.audit; "log" writes them to the log.
    audit_sink: Literal["kafka", "log"] = "kafka"
    auth: AuthSettings = AuthSettings()
    rate_limit: RateLimitSettings = RateLimitSettings()


class LLMSettings(BaseModel):
    """LLM providers: the OpenAI-compatible endpoint and the prices every call is charged at."""

    # Any server speaking the chat-completions API (OpenAI, vLLM, Ollama, LiteLLM ...).
    base_url: str = "https://api.openai.com/v1"
    api_key: SecretStr | None = None
    # For agents whose definition names no model.
    default_model: str = "gpt-4o-mini"
    timeout_s: float = Field(default=60.0, gt=0)
    # Model -> (input, output) USD per million tokens; wins over the built-in price table.
    prices: dict[str, tuple[float, float]] = Field(default_factory=dict)
    # The scripted provider's rules (YAML); without one it answers nothing and calls fail.
    script_path: Path | None = None


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
    gateway: GatewaySettings = GatewaySettings()
    llm: LLMSettings = LLMSettings()

    def masked_dump(self) -> dict[str, Any]:
        """Settings as a dict with every secret replaced by ``**********``, safe to print."""
        return self.model_dump(mode="json")


def load_settings(**overrides: Any) -> OmiumSettings:
    """Build settings: class defaults, then environment, then ``overrides`` (which win)."""
    return OmiumSettings(**overrides)
