"""Load shedding: a gateway process holds at most ``max_commands_in_flight`` commands at once.

Beyond the limit a command is answered at once with 503 ``overloaded`` and ``Retry-After: 1``
instead of waiting in line. Without a bound, an offered rate above what the process (and the
database behind it) can write queues every request behind the others, latency grows with the
queue until clients time out on commands that then go through anyway, and the work spent on
requests nobody waits for any more lowers throughput further. With it, the accepted commands wait
at most for ``limit`` others and the rest are told to come back, which the SDK does by itself (it
retries 503 honouring ``Retry-After``): the stance of Envoy's overload manager or Temporal's
``RESOURCE_EXHAUSTED``. ``bench.command_visibility`` at twice the rate this machine carries: ~100
commands/s accepted with p99 ~580 ms, the rest shed (docs/benchmarks.md).

Only commands count (``POST``, ``PUT``, ``PATCH``, ``DELETE``): reads are short, and a stream
(SSE, WebSocket) would hold its slot for as long as it stays open. A shed command was never
authenticated nor applied, so it is not audited; ``omium_gateway_commands_shed_total`` counts it.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from omium.gateway._observe import GatewayMetrics
from omium.gateway._problems import ProblemTable, render_problem
from omium.gateway.errors import GatewayOverloadedError

COMMAND_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class AdmissionMiddleware:
    """Counts the commands in flight in this process and sheds those beyond ``limit``.

    Args:
        app: The app it guards.
        limit: Commands in flight at most; 0 admits everything.
        metrics: Where the in-flight gauge and the shed counter live.
        table: Problem table used to render the refusal.
        type_base: Prefix of problem ``type`` URIs.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int,
        metrics: GatewayMetrics,
        table: ProblemTable,
        type_base: str,
    ) -> None:
        self._app = app
        self._limit = limit
        self._metrics = metrics
        self._table = table
        self._type_base = type_base
        # One event loop per process: the counter needs no lock.
        self._in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run a command when a slot is free, else refuse it with 503."""
        if self._limit <= 0 or scope["type"] != "http" or scope["method"] not in COMMAND_METHODS:
            await self._app(scope, receive, send)
            return
        if self._in_flight >= self._limit:
            self._metrics.commands_shed.inc()
            response = render_problem(
                GatewayOverloadedError(self._limit),
                instance=scope["path"],
                table=self._table,
                type_base=self._type_base,
            )
            await response(scope, receive, send)
            return
        self._in_flight += 1
        self._metrics.commands_in_flight.set(self._in_flight)
        try:
            await self._app(scope, receive, send)
        finally:
            self._in_flight -= 1
            self._metrics.commands_in_flight.set(self._in_flight)
