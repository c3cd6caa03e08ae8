"""Bearer JWTs: HS256 with a shared secret (local) and RS256 with keys from a JWKS URL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

import jwt
from pydantic import SecretStr

from omium.gateway._principal import Principal, Role
from omium.gateway.errors import AuthenticationError, IdentityProviderUnavailableError
from omium.kernel.errors import ConfigurationError
from omium.kernel.settings import AuthSettings, OmiumSettings

# Only ``local``/``test`` accept this; production refuses to start on it.
DEV_JWT_SECRET = "omium-local-development-secret-do-not-use-in-production"
# RFC 7518 §3.2: an HS256 key must be at least as long as the hash output (32 bytes).
MIN_SECRET_BYTES = 32
REQUIRED_CLAIMS = ("sub", "tenant_id", "roles", "exp", "aud")

_FAILURES: tuple[tuple[type[jwt.PyJWTError], str, str], ...] = (
    (jwt.ExpiredSignatureError, "expired", "token has expired"),
    (jwt.InvalidAudienceError, "invalid_audience", "token is not meant for this audience"),
    (jwt.InvalidIssuerError, "invalid_issuer", "token was not issued by the trusted issuer"),
    (jwt.MissingRequiredClaimError, "missing_claim", "token lacks a required claim"),
)


def resolve_jwt_secret(settings: OmiumSettings) -> SecretStr | None:
    """The HS256 secret to verify (and mint) tokens with, or ``None`` when HS256 is off.

    Local and test environments fall back to a development secret. Production needs an explicit
    secret of at least 32 bytes, or a JWKS URL (then HS256 is off).

    Raises:
        ConfigurationError: Production without a usable secret and without a JWKS URL, or with
            the development secret or a short one.
    """
    auth = settings.gateway.auth
    configured = auth.jwt_secret
    if settings.environment != "production":
        return configured or SecretStr(DEV_JWT_SECRET)
    if configured is None:
        if auth.jwks_url is None:
            raise ConfigurationError(
                "production needs OMIUM_GATEWAY__AUTH__JWT_SECRET or OMIUM_GATEWAY__AUTH__JWKS_URL"
            )
        return None
    value = configured.get_secret_value()
    if value == DEV_JWT_SECRET or len(value.encode()) < MIN_SECRET_BYTES:
        raise ConfigurationError(
            f"OMIUM_GATEWAY__AUTH__JWT_SECRET must be a private secret of at least "
            f"{MIN_SECRET_BYTES} bytes in production"
        )
    return configured


def mint_token(
    settings: OmiumSettings,
    *,
    subject: str,
    tenant_id: str,
    roles: Iterable[Role | str],
    ttl_s: int = 3600,
    issuer: str | None = None,
) -> str:
    """A signed HS256 development token with the claims the gateway checks.

    Raises:
        ConfigurationError: In production (use the identity provider there), when HS256 is
            off, or when ``ttl_s`` is not in ``1..max_dev_token_ttl_s``.
    """
    auth = settings.gateway.auth
    if settings.environment == "production":
        raise ConfigurationError("development tokens are not minted in production")
    if not 0 < ttl_s <= auth.max_dev_token_ttl_s:
        raise ConfigurationError(f"ttl must be within 1..{auth.max_dev_token_ttl_s} seconds")
    secret = resolve_jwt_secret(settings)
    if secret is None:  # pragma: no cover - only production disables HS256
        raise ConfigurationError("HS256 is disabled")
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": subject,
        "tenant_id": tenant_id,
        "roles": [Role(role).value for role in roles],
        "aud": auth.audience,
        "iat": now,
        "exp": now + ttl_s,
    }
    if issuer or auth.issuer:
        claims["iss"] = issuer or auth.issuer
    return jwt.encode(claims, secret.get_secret_value(), algorithm="HS256")


class TokenVerifier:
    """Checks a bearer token's signature and claims and turns it into a ``Principal``."""

    def __init__(
        self,
        auth: AuthSettings,
        *,
        secret: SecretStr | None,
        jwks_client: jwt.PyJWKClient | None = None,
    ) -> None:
        self._auth = auth
        self._secret = secret
        self._jwks = jwks_client

    @classmethod
    def from_settings(cls, settings: OmiumSettings) -> TokenVerifier:
        """A verifier for the configured secret and JWKS URL (keys fetched lazily, cached).

        Raises:
            ConfigurationError: See ``resolve_jwt_secret``; or a non-https JWKS URL in production.
        """
        auth = settings.gateway.auth
        jwks = None
        if (
            auth.jwks_url
            and settings.environment == "production"
            and not (auth.jwks_url.startswith("https://"))
        ):
            # Keys fetched over plain HTTP could be swapped in transit: anyone could sign.
            raise ConfigurationError("OMIUM_GATEWAY__AUTH__JWKS_URL must be https in production")
        if auth.jwks_url:
            # Only the key set is cached, for jwks_cache_s: PyJWT's per-key cache never expires,
            # so a key the identity provider removed (rotated out, compromised) would be
            # accepted until the process restarts.
            jwks = jwt.PyJWKClient(
                auth.jwks_url,
                cache_keys=False,
                cache_jwk_set=auth.jwks_cache_s > 0,
                lifespan=max(auth.jwks_cache_s, 1),
                timeout=auth.jwks_timeout_s,
            )
        return cls(auth, secret=resolve_jwt_secret(settings), jwks_client=jwks)

    async def verify(self, token: str) -> Principal:
        """The principal a token stands for.

        Raises:
            AuthenticationError: The token is malformed, forged, expired, for another audience
                or issuer, signed with an algorithm not configured, or lacks a claim.
            IdentityProviderUnavailableError: RS256 keys cannot be fetched.
        """
        key, algorithm = await self._key_for(token)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self._auth.audience,
                issuer=self._auth.issuer,
                leeway=self._auth.leeway_s,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.PyJWTError as exc:
            raise _authentication_error(exc) from None
        return _principal_from(claims)

    async def _key_for(self, token: str) -> tuple[Any, str]:
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except jwt.PyJWTError:
            raise AuthenticationError("token is malformed", reason="invalid_token") from None
        # The algorithm is chosen by configuration, never by the token: ``none`` and any
        # algorithm without a configured key are refused before a key is looked up.
        if algorithm == "HS256" and self._secret is not None:
            return self._secret.get_secret_value(), algorithm
        if algorithm == "RS256" and self._jwks is not None:
            return await self._jwks_key(token), algorithm
        raise AuthenticationError(
            f"token algorithm {algorithm!r} is not accepted", reason="invalid_token"
        )

    async def _jwks_key(self, token: str) -> Any:
        assert self._jwks is not None
        try:
            # PyJWKClient fetches with urllib (blocking): keep it off the event loop.
            signing_key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
        except jwt.PyJWKClientConnectionError:
            raise IdentityProviderUnavailableError() from None
        except jwt.PyJWTError:
            raise AuthenticationError(
                "token is signed with an unknown key", reason="invalid_token"
            ) from None
        return signing_key.key


def _authentication_error(exc: jwt.PyJWTError) -> AuthenticationError:
    for error_type, reason, message in _FAILURES:
        if isinstance(exc, error_type):
            return AuthenticationError(message, reason=reason)
    return AuthenticationError("token is invalid", reason="invalid_token")


def _principal_from(claims: dict[str, Any]) -> Principal:
    subject, tenant, roles = claims.get("sub"), claims.get("tenant_id"), claims.get("roles")
    if not (isinstance(subject, str) and subject and isinstance(tenant, str) and tenant):
        raise AuthenticationError(
            "token claims sub and tenant_id must be non-empty strings", reason="missing_claim"
        )
    if not isinstance(roles, list):
        raise AuthenticationError("token claim roles must be a list", reason="missing_claim")
    return Principal(subject=subject, tenant_id=tenant, roles=Role.parse_many(roles), method="jwt")
