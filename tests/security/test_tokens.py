"""Bearer tokens an attacker would try, against the live gateway: all refused with 401.

The gateway accepts HS256 with its own secret and RS256 with the identity provider's JWKS keys
(``kid``), for audience ``omium`` and the configured issuer. Everything else is refused before
the request does anything, and the refusal names no secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from omium.gateway import DEV_JWT_SECRET
from tests.security.fixtures import API, JWKS_CACHE_S, JwksEndpoint, TokenFactory

pytestmark = pytest.mark.integration

TENANT = "t-tokens"


def whoami(client: TestClient, token: str) -> Any:
    """``GET /whoami`` with a bearer token."""
    return client.get(f"{API}/whoami", headers={"Authorization": f"Bearer {token}"})


def refused(client: TestClient, token: str, reason: str = "invalid_token") -> dict[str, Any]:
    """Assert the token is refused with 401 and ``reason``; the problem body."""
    response = whoami(client, token)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    assert problem["reason"] == reason, problem
    assert DEV_JWT_SECRET not in response.text
    return problem


def unsigned(claims: dict[str, Any], header: dict[str, Any]) -> str:
    """A token with this header and an empty signature (as ``alg: none`` tokens are sent)."""

    def part(document: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(claims)}."


def test_valid_hs256_and_rs256_tokens_are_accepted(
    security_client: TestClient, tokens: TokenFactory
) -> None:
    claims = tokens.claims(TENANT, "developer")
    for token in (tokens.hs256(claims), tokens.rs256(claims)):
        response = whoami(security_client, token)
        assert response.status_code == 200, response.text
        assert response.json()["tenant_id"] == TENANT


@pytest.mark.parametrize("alg", ["none", "None", "NONE", ""])
def test_alg_none_is_refused(security_client: TestClient, tokens: TokenFactory, alg: str) -> None:
    token = unsigned(tokens.claims(TENANT, "admin"), {"alg": alg, "typ": "JWT"})
    refused(security_client, token)


def test_rs256_header_with_an_hs256_signature_made_from_the_public_key_is_refused(
    security_client: TestClient, tokens: TokenFactory, jwks: JwksEndpoint
) -> None:
    """Key confusion: the attacker HMACs with the published RSA key and claims either alg."""
    public = jwks.keys["key-1"][0].public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = tokens.claims(TENANT, "admin")
    signing_input = unsigned(claims, {"alg": "HS256", "typ": "JWT", "kid": "key-1"})[:-1]
    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    as_hs256 = signing_input + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()
    header = {"alg": "RS256", "typ": "JWT", "kid": "key-1"}
    as_rs256 = unsigned(claims, header)[:-1] + "." + as_hs256.rsplit(".", 1)[1]

    refused(security_client, as_hs256)
    refused(security_client, as_rs256)


@pytest.mark.parametrize("alg", ["HS384", "HS512", "RS384", "RS512", "PS256", "ES256"])
def test_algorithms_other_than_hs256_and_rs256_are_refused(
    security_client: TestClient, tokens: TokenFactory, alg: str
) -> None:
    header = {"alg": alg, "typ": "JWT", "kid": "key-1"}
    token = unsigned(tokens.claims(TENANT, "admin"), header) + "c2lnbmF0dXJl"
    refused(security_client, token)


def test_hs256_with_another_secret_is_refused(
    security_client: TestClient, tokens: TokenFactory
) -> None:
    refused(security_client, tokens.hs256(tokens.claims(TENANT), secret="x" * 48))


def test_expired_tokens_are_refused_beyond_the_leeway(
    security_client: TestClient, tokens: TokenFactory
) -> None:
    now = int(time.time())
    claims = tokens.claims(TENANT, iat=now - 7200, exp=now - 3600)
    refused(security_client, tokens.rs256(claims), reason="expired")
    refused(security_client, tokens.hs256(claims), reason="expired")


def test_tokens_not_yet_valid_are_refused(
    security_client: TestClient, tokens: TokenFactory
) -> None:
    now = int(time.time())
    refused(security_client, tokens.rs256(tokens.claims(TENANT, nbf=now + 3600)))
    refused(security_client, tokens.rs256(tokens.claims(TENANT, iat=now + 3600)))


@pytest.mark.parametrize(
    ("claim", "value", "reason"),
    [
        ("aud", "another-service", "invalid_audience"),
        ("aud", ["another-service"], "invalid_audience"),
        ("iss", "https://evil.example", "invalid_issuer"),
        ("iss", None, "missing_claim"),
        ("aud", None, "missing_claim"),
        ("exp", None, "missing_claim"),
        ("tenant_id", None, "missing_claim"),
        ("tenant_id", "", "missing_claim"),
        ("roles", "admin", "missing_claim"),
    ],
)
def test_wrong_or_missing_claims_are_refused(
    security_client: TestClient, tokens: TokenFactory, claim: str, value: Any, reason: str
) -> None:
    claims = tokens.claims(TENANT, "admin", **{claim: value})
    refused(security_client, tokens.rs256(claims), reason=reason)


@pytest.mark.parametrize("kid", ["key-unknown", "../../../etc/passwd", "' OR 1=1 --", "x" * 300])
def test_unknown_kids_are_refused(
    security_client: TestClient, tokens: TokenFactory, kid: str
) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused(security_client, tokens.rs256(tokens.claims(TENANT), kid=kid, key=stranger))


def test_a_known_kid_signed_by_another_key_is_refused(
    security_client: TestClient, tokens: TokenFactory
) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused(security_client, tokens.rs256(tokens.claims(TENANT), kid="key-1", key=stranger))


def test_jwks_rotation_accepts_new_keys_and_refuses_removed_ones_within_the_cache_time(
    security_client: TestClient, tokens: TokenFactory, jwks: JwksEndpoint
) -> None:
    """A key added to the JWKS works within ``jwks_cache_s``; a removed one stops working."""
    jwks.add_key("key-2")
    new = tokens.rs256(tokens.claims(TENANT), kid="key-2")
    old = tokens.rs256(tokens.claims(TENANT), kid="key-1")
    assert whoami(security_client, old).status_code == 200

    accepted_after = wait_until(lambda: whoami(security_client, new).status_code == 200)
    jwks.remove_key("key-1")
    refused_after = wait_until(lambda: whoami(security_client, old).status_code == 401)

    assert accepted_after <= JWKS_CACHE_S + 1.5
    assert refused_after <= JWKS_CACHE_S + 1.5
    refused(security_client, old)
    # Publish key-1 again (a fresh key) for the other tests of the session.
    jwks.add_key("key-1")
    wait_until(
        lambda: whoami(security_client, tokens.rs256(tokens.claims(TENANT))).status_code == 200
    )


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> float:
    """Seconds until ``condition`` holds (fails after ``timeout_s``)."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout_s, f"not true after {timeout_s} s"
        time.sleep(0.1)
    return time.monotonic() - started


def test_garbage_tokens_are_refused_not_crashed_on(security_client: TestClient) -> None:
    for token in ("a.b.c", "....", "eyJhbGciOiJIUzI1NiJ9", "x" * 8000, "é.é.é"):
        response = security_client.get(
            f"{API}/whoami", headers=[(b"Authorization", f"Bearer {token}".encode())]
        )
        assert response.status_code in (400, 401), response.text
