"""Typed settings for every Omium process.

Only an entrypoint builds a settings object (from class defaults, then ``OMIUM_*`` environment
variables, then explicit arguments); it passes the object inward. Defaults point at the local stack
that ``omium up`` starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from omium.kernel.resources import packaged_path, project_dir

ENV_PREFIX = "OMIUM_"


class KafkaSettings(BaseModel):
    """Where the event log is, how Omium's topics are laid out, and how clients authenticate.

    ``security_protocol`` and the ``sasl_*`` / ``ssl_*`` fields are librdkafka's own settings
    (``security.protocol``, ``sasl.mechanism``, ...): TLS to the brokers (``SSL``, with a CA
    bundle and optionally a client certificate for mutual TLS, as Amazon MSK's TLS listener
    takes) and SASL/PLAIN or SASL/SCRAM user names and passwords (``SASL_SSL``, MSK's SCRAM
    listener). Every Omium client (producers, consumers, admin) uses them.
    """

    bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = "omium"
    partitions: int = Field(default=6, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    # Telemetry has no invariants and high volume, so it ages out; domain topics never do.
    telemetry_retention_ms: int = Field(default=7 * 24 * 3600 * 1000, ge=60_000)
    client_id: str = "omium"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: str | None = None
    ssl_certificate_location: str | None = None
    ssl_key_location: str | None = None
    ssl_key_password: SecretStr | None = None
    # "https" checks that the broker's certificate names the host (librdkafka's default).
    ssl_endpoint_identification_algorithm: Literal["https", "none"] = "https"

    @model_validator(mode="after")
    def _sasl_is_complete(self) -> KafkaSettings:
        if self.security_protocol.startswith("SASL_"):
            missing = [
                name
                for name in ("sasl_mechanism", "sasl_username", "sasl_password")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(
                    f"security_protocol {self.security_protocol} needs {', '.join(missing)}"
                )
        return self

    def client_config(self) -> dict[str, str]:
        """``bootstrap.servers`` and the security settings every librdkafka client needs."""
        config = {"bootstrap.servers": self.bootstrap_servers}
        if self.security_protocol == "PLAINTEXT":
            return config
        config["security.protocol"] = self.security_protocol
        if self.security_protocol.startswith("SASL_"):
            assert self.sasl_mechanism and self.sasl_username and self.sasl_password
            config["sasl.mechanism"] = self.sasl_mechanism
            config["sasl.username"] = self.sasl_username
            config["sasl.password"] = self.sasl_password.get_secret_value()
        if self.security_protocol in ("SSL", "SASL_SSL"):
            config["ssl.endpoint.identification.algorithm"] = (
                self.ssl_endpoint_identification_algorithm
            )
            optional = {
                "ssl.ca.location": self.ssl_ca_location,
                "ssl.certificate.location": self.ssl_certificate_location,
                "ssl.key.location": self.ssl_key_location,
            }
            config.update({k: v for k, v in optional.items() if v})
            if self.ssl_key_password is not None:
                config["ssl.key.password"] = self.ssl_key_password.get_secret_value()
        return config


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
    # Connections the gateway's read-model client may open (per process). A live subscriber
    # (SSE for a run, WebSocket for a tenant) holds one while it blocks in XREAD, so this caps
    # the subscribers per gateway process; redis-py's own default, 100, refused the 101st.
    max_connections: int = Field(default=1000, ge=1, le=100_000)


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

    # A checkout keeps its stack beside the code; an installed Omium in the current directory.
    data_dir: Path = Field(default_factory=lambda: project_dir() / ".omium")
    profile: Literal["core", "full", "ha"] = "full"
    service_user: str = "omium"
    start_timeout_s: float = Field(default=120.0, gt=0)
    opensearch_heap: str = "512m"
    # Tests create many short-lived topics; 512m runs out of heap after ~10k partitions.
    kafka_heap: str = "1g"
    # The broker's listener comes from ``kafka.bootstrap_servers``; KRaft needs a second port.
    kafka_controller_port: int = Field(default=9093, gt=0, lt=65536)
    # A SASL_PLAINTEXT (PLAIN) listener too, so authenticated clients can be tried locally; its
    # password is generated with the stack (<data_dir>/kafka/sasl.password), never configured.
    kafka_sasl_port: int = Field(default=9094, gt=0, lt=65536)
    # ``--profile ha``: three KRaft nodes; node n (1..3) listens on kafka_ha_port + n - 1 and
    # its controller on kafka_ha_port + n + 2 (9192-9194 and 9195-9197 by default).
    kafka_ha_port: int = Field(default=9192, gt=0, lt=65530)
    kafka_ha_heap: str = "384m"
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
    # Not shorter: at 0.5 s CI saw a 503 on one lone request with Redis up (a busy process's
    # event loop, not Redis, was late), and an unreachable Redis is refused at once anyway.
    redis_timeout_s: float = Field(default=2.0, gt=0)
    # Requests in flight beyond this wait (up to redis_timeout_s) for a connection of the limiter.
    redis_max_connections: int = Field(default=64, ge=1, le=10_000)


class GatewaySettings(BaseModel):
    """The FastAPI gateway: where it listens, request limits, probes, auth and rate limits."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, gt=0, lt=65536)
    # Bodies above this are refused with 413 before anything parses them.
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    # Headers beyond these answer 431; JSON bodies nested deeper than max_json_depth answer 400
    # (deeper documents could be stored but not served back, nor parsed by every consumer).
    max_header_bytes: int = Field(default=16 * 1024, gt=0)
    max_headers: int = Field(default=100, gt=0)
    max_json_depth: int = Field(default=64, gt=0)
    # Commands (POST, PUT, PATCH, DELETE) one gateway process handles at once; beyond, 503
    # "overloaded" with Retry-After: 1 (the SDK retries it). 0: no limit. One process writes
    # ~50 commands/s, so 32 in flight wait well under a second.
    max_commands_in_flight: int = Field(default=32, ge=0)
    # Each dependency checked by ``/ready`` gets this long before it counts as down.
    ready_timeout_s: float = Field(default=2.0, gt=0)
    # When set, ``/metrics`` needs ``Authorization: Bearer <metrics_token>``; else it is open.
    metrics_token: SecretStr | None = None
    # Problem ``type`` URIs are this prefix plus a slug (``...:rate-limited``).
    problem_type_base: str = "urn:omium:problem:"
    # "kafka" publishes CommandRecorded events to omium.audit; "log" writes them to the log.
    audit_sink: Literal["kafka", "log"] = "kafka"
    # A checked API key is trusted this long; a revocation on another replica waits this long.
    api_key_cache_ttl_s: float = Field(default=5.0, ge=0)
    auth: AuthSettings = AuthSettings()
    rate_limit: RateLimitSettings = RateLimitSettings()
    # The built web UI (``ui/dist``) served under ``/ui``; unset: the checkout's ``ui/dist``
    # when it has been built, else no UI.
    ui_dir: Path | None = None


class AnthropicSettings(BaseModel):
    """The Anthropic provider (Messages API); keys read ``OMIUM_LLM__ANTHROPIC__API_KEY`` etc."""

    base_url: str = "https://api.anthropic.com"
    api_key: SecretStr | None = None
    # Sent as the anthropic-version header: the API version the request and response follow.
    version: str = "2023-06-01"
    timeout_s: float = Field(default=60.0, gt=0)
    # The Messages API requires max_tokens: used when a call gives none.
    max_tokens: int = Field(default=4096, ge=1)
    # Retries of a call on 429, 529, 5xx and dropped connections, within its timeout.
    max_retries: int = Field(default=2, ge=0)


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
    anthropic: AnthropicSettings = AnthropicSettings()
    # Root-cause diagnoses of failures (escalations and on demand): the provider and model
    # asked (default_model when unset), and how long a diagnosis may take.
    diagnosis_provider: str = "scripted"
    diagnosis_model: str | None = None
    diagnosis_timeout_s: float = Field(default=60.0, gt=0)


class OmiumSettings(BaseSettings):
    """All settings of an Omium process; nested keys read ``OMIUM_KAFKA__BOOTSTRAP_SERVERS`` etc."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="ignore",
    )

    environment: Literal["local", "test", "production"] = "local"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    schemas_dir: Path = Field(default_factory=lambda: packaged_path("schemas", "avro"))
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
