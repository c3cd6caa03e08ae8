"""The audit trail: every command the gateway receives, accepted or refused, is recorded.

Routes do not call the sink themselves: ``requires()`` marks a write route's request as a command
and ``AuditMiddleware`` records it when the response status is known, *before* the response is
sent, so no client sees an answer to a command that is missing from the trail (unless the sink
itself fails, which is logged and counted, and never turns an applied command into an error).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from omium.gateway._principal import Principal

log = structlog.get_logger(__name__)

AuditResult = Literal["accepted", "refused"]

# Keys in the request's ``scope["state"]`` shared by the dependencies and the middleware.
AUDIT_COMMAND = "audit_command"
AUDIT_TARGET = "audit_target"
PRINCIPAL = "principal"
PROBLEM_SLUG = "problem_slug"
IDEMPOTENCY_KEY = "idempotency_key"
REQUEST_ID = "request_id"


@dataclass(frozen=True)
class AuditEntry:
    """One recorded command.

    Attributes:
        principal: Who sent it (its tenant is the entry's tenant).
        command: The command's name (``"executions.start"``).
        target: The resource it addressed (an aggregate id, or the request path).
        result: ``"accepted"`` or ``"refused"``.
        status: The HTTP status answered.
        reason: Why it was refused (a problem type slug), ``None`` when accepted.
        request_id: The request's id, for log correlation.
        idempotency_key: The ``Idempotency-Key`` sent with it.
        source_ip: The caller's address.
        occurred_at: When it was recorded (UTC).
    """

    principal: Principal
    command: str
    target: str
    result: AuditResult
    status: int
    reason: str | None = None
    request_id: str | None = None
    idempotency_key: str | None = None
    source_ip: str | None = None
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class AuditSink(Protocol):
    """Where audit entries go."""

    async def record(
        self,
        principal: Principal,
        command: str,
        target: str,
        result: AuditResult,
        status: int,
        reason: str | None = None,
        *,
        request_id: str | None = None,
        idempotency_key: str | None = None,
        source_ip: str | None = None,
    ) -> None:
        """Record one command; raise an ``OmiumError`` if it could not be stored."""
        ...

    async def close(self) -> None:
        """Flush and release resources."""
        ...


class BaseAuditSink:
    """A sink base: turns ``record`` arguments into an ``AuditEntry`` and hands it to ``_write``."""

    async def record(
        self,
        principal: Principal,
        command: str,
        target: str,
        result: AuditResult,
        status: int,
        reason: str | None = None,
        *,
        request_id: str | None = None,
        idempotency_key: str | None = None,
        source_ip: str | None = None,
    ) -> None:
        """Record one command."""
        await self._write(
            AuditEntry(
                principal=principal,
                command=command,
                target=target,
                result=result,
                status=status,
                reason=reason,
                request_id=request_id,
                idempotency_key=idempotency_key,
                source_ip=source_ip,
            )
        )

    async def _write(self, entry: AuditEntry) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        """Nothing to release."""


class InMemoryAuditSink(BaseAuditSink):
    """Keeps entries in a list, for unit tests."""

    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []

    async def _write(self, entry: AuditEntry) -> None:
        self.entries.append(entry)


class LogAuditSink(BaseAuditSink):
    """Writes entries to the structured log (development without Kafka)."""

    async def _write(self, entry: AuditEntry) -> None:
        log.info("command recorded", **audit_payload(entry), tenant_id=entry.principal.tenant_id)


def audit_payload(entry: AuditEntry) -> dict[str, Any]:
    """The ``CommandRecorded`` payload (``schemas/avro/audit/CommandRecorded.v1.avsc``)."""
    principal = entry.principal
    return {
        "actor": principal.subject,
        "actor_kind": "api_key" if principal.method == "api_key" else "user",
        "roles": sorted(role.value for role in principal.roles),
        "command": entry.command,
        "target": entry.target,
        "result": entry.result,
        "reason": entry.reason,
        "status_code": entry.status,
        "request_id": entry.request_id,
        "idempotency_key": entry.idempotency_key,
        "source_ip": entry.source_ip,
    }


class AuditMiddleware:
    """Records the requests ``requires()`` marked as commands, once their status is known."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; record it before its response starts (or when it fails)."""
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        recorded = False

        async def send_recorded(message: Message) -> None:
            nonlocal recorded
            if message["type"] == "http.response.start" and not recorded:
                recorded = True
                await _record(scope, message["status"])
            await send(message)

        try:
            await self._app(scope, receive, send_recorded)
        except Exception:
            # The outermost handler answers 500 after this; record the refusal first.
            if not recorded:
                scope.setdefault("state", {})[PROBLEM_SLUG] = "internal-error"
                await _record(scope, 500)
            raise


async def _record(scope: Scope, status: int) -> None:
    state = scope.get("state") or {}
    command, principal = state.get(AUDIT_COMMAND), state.get(PRINCIPAL)
    if command is None or principal is None:
        return
    services = scope["app"].state.services
    refused = status >= 400
    client = scope.get("client")
    try:
        await services.audit.record(
            principal,
            command,
            state.get(AUDIT_TARGET) or scope["path"],
            "refused" if refused else "accepted",
            status,
            (state.get(PROBLEM_SLUG) or f"http-{status}") if refused else None,
            request_id=state.get(REQUEST_ID),
            idempotency_key=state.get(IDEMPOTENCY_KEY),
            source_ip=client[0] if client else None,
        )
    except (asyncio.CancelledError, KeyboardInterrupt):
        raise
    except Exception as exc:
        # The command's effect (if any) already happened; failing the response now would make
        # the client retry an applied command. The gap is logged and counted instead.
        log.error("audit record failed", command=command, status=status, error=type(exc).__name__)
        metrics = getattr(scope["app"].state, "metrics", None)
        if metrics is not None:
            metrics.audit_failures.inc()
