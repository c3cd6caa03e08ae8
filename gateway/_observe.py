"""Request ids and Prometheus metrics for every request."""

from __future__ import annotations

import re
import time
import uuid

from fastapi.routing import iter_route_contexts
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from omium.gateway._audit import REQUEST_ID

REQUEST_ID_HEADER = "X-Request-ID"
# A client-sent id is kept only when it is short and harmless in logs.
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class GatewayMetrics:
    """The gateway's metrics, in a registry of its own (one per app, so tests can build many).

    Labels are the route *template* and never the tenant: tenants are unbounded, and metrics
    are served to scrapers that must not learn tenant names.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "omium_gateway_requests_total",
            "HTTP requests answered.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "omium_gateway_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["method", "route"],
            registry=self.registry,
        )
        self.commands_in_flight = Gauge(
            "omium_gateway_commands_in_flight",
            "Commands (POST, PUT, PATCH, DELETE) this process is handling now.",
            registry=self.registry,
        )
        self.commands_shed = Counter(
            "omium_gateway_commands_shed_total",
            "Commands refused with 503 overloaded: max_commands_in_flight were in flight.",
            registry=self.registry,
        )
        self.audit_failures = Counter(
            "omium_gateway_audit_failures_total",
            "Commands whose audit entry was not stored.",
            registry=self.registry,
        )

    def exposition(self) -> tuple[bytes, str]:
        """The metrics in Prometheus text format, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class ObserveMiddleware:
    """Gives each request an id (``X-Request-ID``) and counts and times it."""

    def __init__(self, app: ASGIApp, *, metrics: GatewayMetrics) -> None:
        self._app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request with an id, measuring its status and duration."""
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})[REQUEST_ID] = request_id
        status = 500
        started = time.perf_counter()

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.lower().encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self._app(scope, receive, send_observed)
        finally:
            route = route_template(scope)
            method = scope["method"]
            self._metrics.requests.labels(method, route, str(status)).inc()
            self._metrics.duration.labels(method, route).observe(time.perf_counter() - started)


def route_template(scope: Scope) -> str:
    """The full path template of the matched route (``/api/v1/executions/{id}``).

    ``scope["route"]`` is the route as its router declared it, without the prefixes it was
    included under; the full template comes from the app's flattened route table, cached.
    """
    route = scope.get("route")
    if route is None:
        return "unmatched"
    state = scope["app"].state
    paths: dict[int, str] | None = getattr(state, "route_paths", None)
    if paths is None or id(route) not in paths:
        paths = {
            id(ctx.original_route): ctx.path or "unmatched"
            for ctx in iter_route_contexts(scope["app"].routes)
        }
        state.route_paths = paths
    return paths.get(id(route)) or getattr(route, "path", None) or "unmatched"


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if _CLIENT_REQUEST_ID.fullmatch(candidate):
                return candidate
    return uuid.uuid4().hex
