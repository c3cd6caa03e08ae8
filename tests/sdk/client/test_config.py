"""Client configuration: profiles from TOML, the environment on top, explicit arguments last."""

from __future__ import annotations

from pathlib import Path

import pytest

from omium.kernel.errors import ConfigurationError
from omium.sdk.client import ENV_API_KEY, ENV_BASE_URL, ENV_PROFILE, Client, ClientConfig

PROFILES = """
[profile.default]
base_url = "http://default.test"
token = "default-token"

[profile.staging]
base_url = "http://staging.test"
api_key = "omk_staging"
timeout_s = 5
"""


@pytest.fixture
def profile_file(tmp_path: Path) -> Path:
    """A client config file with two profiles."""
    path = tmp_path / "client.toml"
    path.write_text(PROFILES)
    return path


def test_the_default_profile_then_the_environment(profile_file: Path) -> None:
    config = ClientConfig.load(path=profile_file, env={})
    assert config.base_url == "http://default.test"
    assert config.auth_headers() == {"Authorization": "Bearer default-token"}

    env = {ENV_PROFILE: "staging", ENV_BASE_URL: "http://env.test"}
    staging = ClientConfig.load(path=profile_file, env=env)
    assert staging.base_url == "http://env.test" and staging.timeout_s == 5
    assert staging.auth_headers() == {"X-API-Key": "omk_staging"}


def test_explicit_arguments_win(profile_file: Path) -> None:
    config = ClientConfig.load(
        "staging", path=profile_file, env={ENV_API_KEY: "omk_env"}, base_url="http://explicit.test"
    )
    assert config.base_url == "http://explicit.test" and config.api_key is not None
    assert config.api_key.get_secret_value() == "omk_env"
    with Client(config=config, token="jwt") as omium:
        # A credential given to the client replaces the profile's other kind.
        assert omium.config.api_key is None and omium.config.token is not None


def test_without_a_file_the_defaults_apply(tmp_path: Path) -> None:
    config = ClientConfig.load(env={"HOME": str(tmp_path)}, path=None)
    assert config.base_url.startswith("http://")


def test_mistakes_are_configuration_errors(profile_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"profile\.prod"):
        ClientConfig.load("prod", path=profile_file, env={})
    with pytest.raises(ConfigurationError, match="does not exist"):
        ClientConfig.load(path=tmp_path / "missing.toml", env={})
    with pytest.raises(ConfigurationError, match="not both"):
        ClientConfig.load(path=profile_file, env={ENV_API_KEY: "omk_x"})
    broken = tmp_path / "broken.toml"
    broken.write_text("[profile.default\n")
    with pytest.raises(ConfigurationError, match="cannot read"):
        ClientConfig.load(path=broken, env={})
    assert "secret" not in repr(ClientConfig.model_validate({"token": "secret"}))
