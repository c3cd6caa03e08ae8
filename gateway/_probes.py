"""Probes and metrics: ``/health``, ``/ready`` and ``/metrics`` (no user credentials)."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from omium.gateway._services import run_checks
from omium.gateway.errors import AuthenticationError, DependencyUnavailableError

router = APIRouter(tags=["probes"])


class Health(BaseModel):
    """The process is up."""

    status: str = "ok"


class Readiness(BaseModel):
    """Every dependency answered."""

    status: str = "ready"
    checks: dict[str, str]


@router.get("/health", response_model=Health, summary="Liveness: the process is up")
async def health() -> Health:
    """Answers as long as the process serves HTTP; checks nothing else."""
    return Health()


@router.get(
    "/ready",
    response_model=Readiness,
    summary="Readiness: PostgreSQL, Redis and Kafka are reachable",
    responses={503: {"description": "A dependency is down; ``checks`` says which."}},
)
async def ready(request: Request) -> Readiness:
    """Checks each dependency within ``gateway.ready_timeout_s``; 503 names the ones down."""
    settings = request.app.state.settings
    checks = await run_checks(
        request.app.state.services.readiness, timeout_s=settings.gateway.ready_timeout_s
    )
    if any(state != "ok" for state in checks.values()):
        raise DependencyUnavailableError(checks)
    return Readiness(checks=checks)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
async def metrics(request: Request) -> Response:
    """Prometheus text format; needs ``Bearer <gateway.metrics_token>`` when that is set."""
    token = request.app.state.settings.gateway.metrics_token
    if token is not None:
        presented = request.headers.get("authorization", "")
        expected = f"Bearer {token.get_secret_value()}"
        if not hmac.compare_digest(presented.encode(), expected.encode()):
            raise AuthenticationError("metrics need the scrape token", reason="invalid_token")
    body, content_type = request.app.state.metrics.exposition()
    return Response(content=body, media_type=content_type)
