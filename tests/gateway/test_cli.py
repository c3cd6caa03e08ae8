"""``omium token`` mints development tokens the gateway accepts."""

from __future__ import annotations

from collections.abc import Callable

import jwt
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from omium.cli import app
from omium.gateway import DEV_JWT_SECRET


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in ("OMIUM_ENVIRONMENT", "OMIUM_GATEWAY__AUTH__JWT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


def test_token_is_accepted_by_the_gateway(
    runner: CliRunner,
    client_factory: Callable[..., TestClient],
) -> None:
    result = runner.invoke(
        app,
        [
            "token",
            "--sub",
            "alice",
            "--tenant",
            "acme",
            "--role",
            "developer",
            "--role",
            "viewer",
            "--ttl",
            "120",
        ],
    )
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    claims = jwt.decode(token, DEV_JWT_SECRET, algorithms=["HS256"], audience="omium")
    assert claims["exp"] - claims["iat"] == 120
    assert (claims["sub"], claims["tenant_id"], claims["roles"]) == (
        "alice",
        "acme",
        ["developer", "viewer"],
    )
    me = client_factory().get("/api/v1/whoami", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["role"] == "developer"


def test_token_uses_the_configured_secret(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMIUM_GATEWAY__AUTH__JWT_SECRET", "k" * 40)
    result = runner.invoke(app, ["token", "--sub", "a", "--tenant", "t", "--role", "admin"])
    jwt.decode(result.stdout.strip(), "k" * 40, algorithms=["HS256"], audience="omium")


def test_token_is_refused_in_production(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMIUM_ENVIRONMENT", "production")
    monkeypatch.setenv("OMIUM_GATEWAY__AUTH__JWT_SECRET", "k" * 40)
    result = runner.invoke(app, ["token", "--sub", "a", "--tenant", "t", "--role", "admin"])
    assert result.exit_code == 1
    assert "production" in result.output


def test_unknown_roles_are_rejected(runner: CliRunner) -> None:
    result = runner.invoke(app, ["token", "--sub", "a", "--tenant", "t", "--role", "root"])
    assert result.exit_code == 2
