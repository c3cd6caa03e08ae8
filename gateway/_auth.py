"""The authentication dependency: a bearer JWT or an ``X-API-Key`` header becomes a Principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from omium.gateway._audit import PRINCIPAL
from omium.gateway._principal import Principal
from omium.gateway.errors import AuthenticationError

API_KEY_HEADER = "X-API-Key"

# ``auto_error=False``: the gateway answers missing credentials itself, as a problem (401).
# These objects also put both schemes into the OpenAPI document (the "Authorize" button).
bearer_scheme = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT",
    description="OAuth2 access token (JWT) with claims sub, tenant_id, roles, aud, exp.",
)
api_key_scheme = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="API key for agents and workers: omk_<key_id>_<secret>.",
)


async def authenticate(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> Principal:
    """The caller's principal; FastAPI runs this once per request however often it is used.

    Raises:
        AuthenticationError: No credentials, both kinds at once, a non-Bearer
            ``Authorization`` scheme, or credentials that do not verify.
    """
    has_authorization = "authorization" in request.headers
    if has_authorization and bearer is None:
        raise AuthenticationError(
            "Authorization must use the Bearer scheme", reason="invalid_token"
        )
    if bearer is not None and api_key is not None:
        raise AuthenticationError("send a bearer token or an API key, not both", reason="ambiguous")
    services = request.app.state.services
    if api_key is not None:
        principal = await services.api_keys.authenticate(api_key)
    elif bearer is not None:
        principal = await services.tokens.verify(bearer.credentials)
    else:
        raise AuthenticationError("credentials are required", reason="missing")
    setattr(request.state, PRINCIPAL, principal)
    checked: Principal = principal
    return checked
