"""How a client is configured: explicit arguments, or a profile from TOML plus environment.

A profile file holds named profiles::

    # ~/.config/omium/client.toml
    [profile.default]
    base_url = "http://127.0.0.1:8000"
    api_key = "omk_..."

    [profile.staging]
    base_url = "https://omium.staging.example"
    token = "eyJ..."

:meth:`ClientConfig.load` reads the file (if any), then the ``OMIUM_*`` variables below, which win
over the file, then explicit overrides, which win over both. Only this loader looks at the
environment, and only when the caller hands it one (``os.environ`` by default).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from omium.kernel.errors import ConfigurationError

# Environment keys (named constants, so docs and code cannot drift apart).
ENV_PROFILE = "OMIUM_PROFILE"
ENV_CONFIG_FILE = "OMIUM_CONFIG_FILE"
ENV_BASE_URL = "OMIUM_BASE_URL"
ENV_TOKEN = "OMIUM_TOKEN"
ENV_API_KEY = "OMIUM_API_KEY"
ENV_TIMEOUT_S = "OMIUM_TIMEOUT_S"

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_PROFILE = "default"
DEFAULT_CONFIG_FILE = Path("~/.config/omium/client.toml")

_ENV_FIELDS = {
    ENV_BASE_URL: "base_url",
    ENV_TOKEN: "token",
    ENV_API_KEY: "api_key",
    ENV_TIMEOUT_S: "timeout_s",
}


class ClientConfig(BaseModel):
    """Everything a client needs to talk to a gateway.

    Attributes:
        base_url: The gateway, e.g. ``http://127.0.0.1:8000`` (no ``/api/v1``).
        token: An OAuth2 access token (JWT), sent as ``Authorization: Bearer``.
        api_key: An API key (``omk_...``), sent as ``X-API-Key``. Give one credential, not both.
        timeout_s: Connect/read timeout of one request.
        max_attempts: Tries per request on 429, 503 and connection failures (1 = no retry).
        backoff_s: First retry delay; doubles per attempt (a ``Retry-After`` overrides it).
        max_backoff_s: Longest delay between two tries.
        max_retry_after_s: A ``Retry-After`` above this is not waited for: the error is raised.
        headers: Extra headers sent with every request.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = DEFAULT_BASE_URL
    token: SecretStr | None = None
    api_key: SecretStr | None = None
    timeout_s: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=4, ge=1, le=20)
    backoff_s: float = Field(default=0.2, ge=0)
    max_backoff_s: float = Field(default=10.0, ge=0)
    max_retry_after_s: float = Field(default=60.0, ge=0)
    headers: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_credential(self) -> Self:
        if self.token is not None and self.api_key is not None:
            raise ValueError("give either token or api_key, not both (the gateway refuses both)")
        return self

    @classmethod
    def load(
        cls,
        profile: str | None = None,
        *,
        path: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> Self:
        """Build a config from a profile file, then the environment, then ``overrides``.

        Args:
            profile: The profile's name; default ``$OMIUM_PROFILE`` or ``"default"``.
            path: The TOML file; default ``$OMIUM_CONFIG_FILE`` or
                ``~/.config/omium/client.toml`` (a missing default file is fine).
            env: The environment to read; default ``os.environ``.
            **overrides: Field values that win over file and environment.

        Raises:
            ConfigurationError: The file cannot be parsed, a named profile or an explicitly
                given file does not exist, or a value is invalid.
        """
        env = os.environ if env is None else env
        name = profile or env.get(ENV_PROFILE) or DEFAULT_PROFILE
        values = _profile_from_file(name, path, env, explicit=profile is not None)
        values.update({field: env[key] for key, field in _ENV_FIELDS.items() if env.get(key)})
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls.model_validate(values)
        except ValueError as exc:
            raise ConfigurationError(f"invalid client configuration: {exc}") from None

    def auth_headers(self) -> dict[str, str]:
        """The credential header for this config (none when it has no credential)."""
        if self.token is not None:
            return {"Authorization": f"Bearer {self.token.get_secret_value()}"}
        if self.api_key is not None:
            return {"X-API-Key": self.api_key.get_secret_value()}
        return {}


def _profile_from_file(
    name: str, path: str | Path | None, env: Mapping[str, str], *, explicit: bool
) -> dict[str, Any]:
    given = path or env.get(ENV_CONFIG_FILE)
    file = Path(given or DEFAULT_CONFIG_FILE).expanduser()
    if not file.exists():
        if given:
            raise ConfigurationError(f"client config file {file} does not exist")
        return {}
    try:
        document = tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read client config {file}: {exc}") from None
    profiles = document.get("profile", {})
    if name not in profiles:
        if explicit or name != DEFAULT_PROFILE:
            raise ConfigurationError(f"client config {file} has no [profile.{name}]")
        return {}
    return dict(profiles[name])


def merge_config(config: ClientConfig | None, **explicit: Any) -> ClientConfig:
    """``config`` (or the defaults) with the explicitly given, non-``None`` arguments on top."""
    base = config or ClientConfig()
    chosen = {k: v for k, v in explicit.items() if v is not None}
    if not chosen:
        return base
    if "token" in chosen or "api_key" in chosen:
        # One credential replaces the other: the gateway refuses requests carrying both.
        base = base.model_copy(update={"token": None, "api_key": None})
    return ClientConfig.model_validate({**base.model_dump(), **chosen})
