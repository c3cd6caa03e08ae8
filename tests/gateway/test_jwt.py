"""Bearer JWTs: HS256 locally, RS256 through a JWKS served over real HTTP; every bad token 401s."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from omium.gateway import (
    DEV_JWT_SECRET,
    TokenVerifier,
    create_app,
    in_memory_services,
    mint_token,
    resolve_jwt_secret,
)
from omium.kernel.errors import ConfigurationError
from omium.kernel.settings import OmiumSettings

SettingsFactory = Callable[..., OmiumSettings]


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "sub": "alice",
        "tenant_id": "acme",
        "roles": ["developer"],
        "aud": "omium",
        "iat": now,
        "exp": now + 600,
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def client(client_factory: Callable[..., TestClient]) -> TestClient:
    return client_factory()


def assert_401(response: Any, reason: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["reason"] == reason


def test_a_valid_token_authenticates(client: TestClient, token_factory: Callable[..., str]) -> None:
    token = token_factory(sub="bob", tenant="globex", roles=("operator", "viewer"))
    response = client.get("/api/v1/whoami", headers=bearer(token))
    assert response.status_code == 200
    assert response.json() == {
        "subject": "bob",
        "tenant_id": "globex",
        "roles": ["viewer", "operator"],
        "role": "operator",
        "method": "jwt",
        "key_id": None,
    }


def test_expired_token(client: TestClient, token_factory: Callable[..., str]) -> None:
    past = int(time.time()) - 3600
    token = token_factory(claims=claims(iat=past - 60, exp=past))
    assert_401(client.get("/api/v1/whoami", headers=bearer(token)), "expired")


def test_forged_signature(client: TestClient, token_factory: Callable[..., str]) -> None:
    token = token_factory(claims=claims(roles=["admin"]), secret="x" * 64)
    assert_401(client.get("/api/v1/whoami", headers=bearer(token)), "invalid_token")


def test_tampered_payload(client: TestClient, token_factory: Callable[..., str]) -> None:
    header, _, signature = token_factory(claims=claims()).split(".")
    payload = jwt.utils.base64url_encode(json.dumps(claims(roles=["admin"])).encode()).decode()
    token = f"{header}.{payload}.{signature}"
    assert_401(client.get("/api/v1/whoami", headers=bearer(token)), "invalid_token")


def test_wrong_audience(client: TestClient, token_factory: Callable[..., str]) -> None:
    token = token_factory(claims=claims(aud="someone-else"))
    assert_401(client.get("/api/v1/whoami", headers=bearer(token)), "invalid_audience")


@pytest.mark.parametrize("missing", ["sub", "tenant_id", "roles", "exp", "aud"])
def test_missing_claims(
    client: TestClient, token_factory: Callable[..., str], missing: str
) -> None:
    token = token_factory(claims=claims(**{missing: None}))
    assert_401(client.get("/api/v1/whoami", headers=bearer(token)), "missing_claim")


@pytest.mark.parametrize("bad", [{"roles": "admin"}, {"sub": ""}, {"tenant_id": 7}])
def test_claims_of_the_wrong_shape(
    client: TestClient, token_factory: Callable[..., str], bad: dict[str, Any]
) -> None:
    token = token_factory(claims=claims(**bad))
    assert_401(client.get("/api/v1/whoami", headers=bearer(token)), "missing_claim")


def test_alg_none_is_refused(client: TestClient) -> None:
    token = jwt.encode(claims(roles=["admin"]), "", algorithm="none")
    assert_401(client.get("/api/v1/whoami", headers=bearer(token)), "invalid_token")


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_other_hmac_algorithms_are_refused(client: TestClient) -> None:
    token = jwt.encode(claims(), DEV_JWT_SECRET, algorithm="HS512")
    assert_401(client.get("/api/v1/whoami", headers=bearer(token)), "invalid_token")


@pytest.mark.parametrize("value", ["Bearer", "Bearer not-a-jwt", "Basic YWxpY2U6cHc=", "Token x"])
def test_garbage_authorization_headers(client: TestClient, value: str) -> None:
    response = client.get("/api/v1/whoami", headers={"Authorization": value})
    assert_401(response, "invalid_token")


def test_token_and_api_key_together_are_ambiguous(
    client: TestClient, token_factory: Callable[..., str]
) -> None:
    headers = {**bearer(token_factory()), "X-API-Key": "omk_abc_def"}
    assert_401(client.get("/api/v1/whoami", headers=headers), "ambiguous")


def test_unknown_roles_are_ignored(client: TestClient, token_factory: Callable[..., str]) -> None:
    token = token_factory(claims=claims(roles=["superuser"]))
    response = client.get("/api/v1/whoami", headers=bearer(token))
    assert response.status_code == 403
    assert response.json()["required_role"] == "viewer"
    assert response.json().get("actual_role") is None


def test_issuer_is_checked_when_configured(
    client_factory: Callable[..., TestClient],
    gateway_settings_factory: SettingsFactory,
    token_factory: Callable[..., str],
) -> None:
    settings = gateway_settings_factory(auth={"issuer": "https://idp.example"})
    client = client_factory(settings=settings)
    good = token_factory(claims=claims(iss="https://idp.example"))
    assert client.get("/api/v1/whoami", headers=bearer(good)).status_code == 200
    wrong = token_factory(claims=claims(iss="https://evil.example"))
    assert_401(client.get("/api/v1/whoami", headers=bearer(wrong)), "invalid_issuer")
    absent = token_factory(claims=claims())
    assert_401(client.get("/api/v1/whoami", headers=bearer(absent)), "missing_claim")


# --- RS256 through a JWKS endpoint ----------------------------------------------------------


@pytest.fixture
def rs256(
    rsa_key_factory: Callable[..., Any],
    jwks_server_factory: Callable[..., Any],
    gateway_settings_factory: SettingsFactory,
    client_factory: Callable[..., TestClient],
) -> Any:
    private, jwk = rsa_key_factory("key-1")
    server = jwks_server_factory([jwk])
    settings = gateway_settings_factory(auth={"jwks_url": server.url})

    class RS256:
        def __init__(self) -> None:
            self.private, self.server = private, server
            self.client = client_factory(settings=settings)

        def sign(self, key: Any = None, kid: str = "key-1", **overrides: Any) -> str:
            return jwt.encode(
                claims(**overrides), key or private, algorithm="RS256", headers={"kid": kid}
            )

    return RS256()


def test_rs256_token_verifies_against_jwks(rs256: Any) -> None:
    response = rs256.client.get("/api/v1/whoami", headers=bearer(rs256.sign()))
    assert response.status_code == 200
    assert response.json()["subject"] == "alice"


def test_jwks_is_cached(rs256: Any) -> None:
    for _ in range(3):
        assert rs256.client.get("/api/v1/whoami", headers=bearer(rs256.sign())).status_code == 200
    assert rs256.server.hits == 1


def test_rs256_signed_by_another_key(rs256: Any, rsa_key_factory: Callable[..., Any]) -> None:
    impostor, _ = rsa_key_factory("key-1")
    response = rs256.client.get("/api/v1/whoami", headers=bearer(rs256.sign(key=impostor)))
    assert_401(response, "invalid_token")


def test_rs256_unknown_kid(rs256: Any) -> None:
    response = rs256.client.get("/api/v1/whoami", headers=bearer(rs256.sign(kid="nope")))
    assert_401(response, "invalid_token")


def test_rs256_expired_and_wrong_audience(rs256: Any) -> None:
    past = int(time.time()) - 3600
    expired = rs256.sign(exp=past, iat=past - 10)
    assert_401(rs256.client.get("/api/v1/whoami", headers=bearer(expired)), "expired")
    other = rs256.sign(aud="another-api")
    assert_401(rs256.client.get("/api/v1/whoami", headers=bearer(other)), "invalid_audience")


def test_jwks_unreachable_is_503(
    gateway_settings_factory: SettingsFactory,
    client_factory: Callable[..., TestClient],
    rsa_key_factory: Callable[..., Any],
    closed_port: int,
) -> None:
    private, _ = rsa_key_factory()
    settings = gateway_settings_factory(
        auth={"jwks_url": f"http://127.0.0.1:{closed_port}/jwks.json", "jwks_timeout_s": 1}
    )
    token = jwt.encode(claims(), private, algorithm="RS256", headers={"kid": "key-1"})
    response = client_factory(settings=settings).get("/api/v1/whoami", headers=bearer(token))
    assert response.status_code == 503
    assert response.json()["type"].endswith("identity-provider-unavailable")


def test_jwks_only_refuses_hs256(
    gateway_settings_factory: SettingsFactory,
    rs256: Any,
    token_factory: Callable[..., str],
    client_factory: Callable[..., TestClient],
    services_factory: Callable[..., Any],
) -> None:
    """As in production with only a JWKS URL: HS256 is off, even with the right secret."""
    settings = gateway_settings_factory(auth={"jwks_url": rs256.server.url})
    verifier = TokenVerifier(
        settings.gateway.auth, secret=None, jwks_client=jwt.PyJWKClient(rs256.server.url)
    )
    client = client_factory(settings=settings, services=services_factory(settings, tokens=verifier))
    hs256 = token_factory(claims=claims())
    assert_401(client.get("/api/v1/whoami", headers=bearer(hs256)), "invalid_token")
    assert client.get("/api/v1/whoami", headers=bearer(rs256.sign())).status_code == 200


def test_production_with_https_jwks_and_no_secret_starts(
    gateway_settings_factory: SettingsFactory,
) -> None:
    settings = gateway_settings_factory(
        environment="production", auth={"jwks_url": "https://idp.example/jwks.json"}
    )
    assert resolve_jwt_secret(settings) is None
    create_app(settings, services=in_memory_services(gateway_settings_factory()))


# --- configuration ---------------------------------------------------------------------------


def test_local_and_test_fall_back_to_the_dev_secret(
    gateway_settings_factory: SettingsFactory,
) -> None:
    for environment in ("local", "test"):
        secret = resolve_jwt_secret(gateway_settings_factory(environment=environment))
        assert secret is not None and secret.get_secret_value() == DEV_JWT_SECRET


@pytest.mark.parametrize("secret", [None, DEV_JWT_SECRET, "too-short"])
def test_production_refuses_to_start_without_a_real_secret(
    gateway_settings_factory: SettingsFactory,
    secret: str | None,
) -> None:
    settings = gateway_settings_factory(environment="production", auth={"jwt_secret": secret})
    with pytest.raises(ConfigurationError):
        create_app(settings, services=in_memory_services(gateway_settings_factory()))


def test_production_needs_https_for_jwks(gateway_settings_factory: SettingsFactory) -> None:
    settings = gateway_settings_factory(
        environment="production", auth={"jwks_url": "http://idp.example/jwks.json"}
    )
    with pytest.raises(ConfigurationError, match="https"):
        create_app(settings, services=in_memory_services(gateway_settings_factory()))


def test_production_with_a_real_secret_starts(gateway_settings_factory: SettingsFactory) -> None:
    settings = gateway_settings_factory(environment="production", auth={"jwt_secret": "s" * 48})
    assert resolve_jwt_secret(settings) is not None
    create_app(settings, services=in_memory_services(settings))


def test_mint_token_refuses_production_and_bad_ttls(
    gateway_settings_factory: SettingsFactory,
) -> None:
    production = gateway_settings_factory(environment="production", auth={"jwt_secret": "s" * 48})
    with pytest.raises(ConfigurationError):
        mint_token(production, subject="a", tenant_id="t", roles=["admin"])
    local = gateway_settings_factory()
    for ttl in (0, 10**9):
        with pytest.raises(ConfigurationError):
            mint_token(local, subject="a", tenant_id="t", roles=["admin"], ttl_s=ttl)
