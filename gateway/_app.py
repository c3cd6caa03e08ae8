"""The app factory: ``create_app(settings)`` wires middleware, error handling, probes and routes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import APIRouter, FastAPI

import omium
from omium.commands import EVENT_STORE_SCHEMA
from omium.gateway._admission import AdmissionMiddleware
from omium.gateway._audit import AuditMiddleware
from omium.gateway._jwt import TokenVerifier
from omium.gateway._limits import BodyGuardMiddleware
from omium.gateway._logging import configure_logging, uvicorn_log_config
from omium.gateway._observe import GatewayMetrics, ObserveMiddleware
from omium.gateway._openapi import install_openapi
from omium.gateway._policy import API_PREFIX, route_rules, unguarded_routes
from omium.gateway._probes import router as probes_router
from omium.gateway._problems import ProblemTable, install_problem_handlers, problem_table
from omium.gateway._services import GatewayServices, build_services
from omium.gateway._ui import mount_ui
from omium.gateway.api import discover_routers
from omium.kernel.errors import ConfigurationError
from omium.kernel.settings import OmiumSettings, load_settings

DESCRIPTION = """\
Omium's command and query API. Authenticate with an OAuth2 bearer JWT (`Authorization: Bearer`)
or an API key (`X-API-Key`). Every error is an RFC 9457 problem (`application/problem+json`).
"""


def create_app(
    settings: OmiumSettings,
    *,
    services: GatewayServices | None = None,
    routers: Sequence[APIRouter] | None = None,
    problems: ProblemTable | None = None,
    event_store_schema: str = EVENT_STORE_SCHEMA,
) -> FastAPI:
    """Build the gateway app; nothing here reads the environment.

    Args:
        settings: Everything configurable.
        services: Collaborators to use (tests pass in-memory ones); by default the app builds
            PostgreSQL/Redis/Kafka-backed ones at startup and closes them at shutdown.
        routers: Routers mounted under ``/api/v1``; by default every ``router`` found in the
            modules of ``gateway.api``.
        problems: The error → status table; by default the shared one ``register_error`` fills.
        event_store_schema: PostgreSQL schema of the event tables, for services built at
            startup (tests and benchmarks use a fresh one).

    Raises:
        ConfigurationError: Unusable auth settings (production without a JWT secret or JWKS URL),
            or an ``/api/v1`` route that declares no access rule.
    """
    # Fail at construction, not at the first request, on unusable auth settings.
    TokenVerifier.from_settings(settings)
    table = problems or problem_table
    type_base = settings.gateway.problem_type_base
    app = FastAPI(
        title="Omium gateway",
        version=omium.__version__,
        description=DESCRIPTION,
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
        lifespan=_lifespan(settings, services, event_store_schema),
    )
    app.state.settings = settings
    app.state.services = services
    app.state.event_store_schema = event_store_schema
    app.state.metrics = GatewayMetrics()
    install_problem_handlers(app, table=table, type_base=type_base)
    _mount_routes(app, discover_routers() if routers is None else routers)
    mount_ui(app, settings)
    # Added innermost first: Observe wraps Admission (sheds before anything reads the body),
    # which wraps BodyGuard, which wraps Audit.
    app.add_middleware(AuditMiddleware)
    app.add_middleware(
        BodyGuardMiddleware,
        max_body_bytes=settings.gateway.max_body_bytes,
        max_header_bytes=settings.gateway.max_header_bytes,
        max_headers=settings.gateway.max_headers,
        max_json_depth=settings.gateway.max_json_depth,
        table=table,
        type_base=type_base,
    )
    app.add_middleware(
        AdmissionMiddleware,
        limit=settings.gateway.max_commands_in_flight,
        metrics=app.state.metrics,
        table=table,
        type_base=type_base,
    )
    app.add_middleware(ObserveMiddleware, metrics=app.state.metrics)
    install_openapi(app, guarded_prefix=API_PREFIX)
    return app


def _mount_routes(app: FastAPI, routers: Sequence[APIRouter]) -> None:
    app.include_router(probes_router)
    api = APIRouter(prefix=API_PREFIX)
    for router in routers:
        api.include_router(router)
    app.include_router(api)
    unguarded = unguarded_routes(app)
    if unguarded:
        listed = ", ".join(f"{method} {path}" for method, path in unguarded)
        raise ConfigurationError(f"routes without an access rule (add requires(...)): {listed}")
    app.state.access_rules = route_rules(app)


def _lifespan(
    settings: OmiumSettings, injected: GatewayServices | None, event_store_schema: str
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if injected is not None:
            yield
            return
        services = await build_services(settings, event_store_schema=event_store_schema)
        app.state.services = services
        try:
            yield
        finally:
            await services.aclose()

    return lifespan


def app_from_env() -> FastAPI:
    """The entrypoint's app: settings from ``OMIUM_*`` environment variables.

    For ``uvicorn omium.gateway:app_from_env --factory`` and ``omium gateway``.
    """
    settings = load_settings()
    configure_logging(settings.log_level)
    return create_app(settings)


def serve(settings: OmiumSettings, *, host: str | None = None, port: int | None = None) -> None:
    """Serve the API with uvicorn until stopped (``omium gateway``, ``python -m omium.gateway``).

    Args:
        settings: Where to bind by default and the log level; the app itself reads ``OMIUM_*``
            again through :func:`app_from_env`, so each uvicorn worker builds its own.
        host: Bind address instead of ``settings.gateway.host``.
        port: Port instead of ``settings.gateway.port``.
    """
    import uvicorn

    uvicorn.run(
        "omium.gateway:app_from_env",
        factory=True,
        host=host or settings.gateway.host,
        port=port or settings.gateway.port,
        log_level=settings.log_level.lower(),
        log_config=uvicorn_log_config(),
    )
