"""History integrity: the hash chains of a run, or of the caller's tenant, verified on demand.

``GET /executions/{id}/verify`` checks the run's events (and its consensus rounds') in the event
store, re-encoded as the relay encodes them, and on the Kafka topics, and names the first broken
link of each broken chain. ``GET /verify`` does the same for every aggregate of the tenant
(operators: it reads whole topics). See ``omium verify`` for the command line.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from omium.commands import InvalidCommandError
from omium.commands.verify import HistoryVerifier, VerifyReport, VerifyScope
from omium.gateway._policy import TenantId, requires
from omium.gateway._principal import Role
from omium.gateway.api._support import applications
from omium.kernel.serde import SchemaCatalog

router = APIRouter(tags=["integrity"])

KAFKA_TIMEOUT_S = 60.0
"""Longest a verification may spend reading the topics."""

CheckStore = Annotated[bool, Query(description="Check the event store.")]
CheckKafka = Annotated[bool, Query(description="Check the Kafka topics.")]


class ChainBreakView(BaseModel):
    """The first broken link of one aggregate's chain, in one copy of the history."""

    where: Literal["event_store", "kafka"]
    kind: Literal[
        "hash_mismatch", "broken_link", "version_gap", "duplicate", "missing", "undecodable"
    ]
    aggregate_id: str
    aggregate_version: int | None
    expected: str
    found: str
    detail: str
    topic: str | None
    partition: int | None
    offset: int | None


class IntegrityReport(BaseModel):
    """The outcome of a verification: counts and the first break of each broken chain."""

    execution_id: str | None
    ok: bool
    checked_store: bool
    checked_kafka: bool
    aggregates: int
    store_events: int
    kafka_events: int
    kafka_duplicates: int
    unrelayed: int
    dead_lettered: int
    breaks: list[ChainBreakView]

    @classmethod
    def of(cls, report: VerifyReport) -> IntegrityReport:
        """The wire shape of a verifier's report."""
        run = report.scope.execution_id
        return cls(
            execution_id=None if run is None else str(run),
            ok=report.ok,
            checked_store=report.checked_store,
            checked_kafka=report.checked_kafka,
            aggregates=report.aggregates,
            store_events=report.store_events,
            kafka_events=report.kafka_events,
            kafka_duplicates=report.kafka_duplicates,
            unrelayed=report.unrelayed,
            dead_lettered=report.dead_lettered,
            breaks=[
                ChainBreakView(
                    where=b.where.value,
                    kind=b.kind.value,
                    aggregate_id=b.aggregate_id,
                    aggregate_version=b.aggregate_version,
                    expected=b.expected,
                    found=b.found,
                    detail=b.detail,
                    topic=b.topic,
                    partition=b.partition,
                    offset=b.offset,
                )
                for b in report.breaks
            ],
        )


async def _verifier(request: Request, *, store: bool, kafka: bool) -> HistoryVerifier:
    """The app's verifier, built on first use on the gateway's own command applications.

    Raises:
        InvalidCommandError: Neither copy of the history is to be checked.
    """
    if not (store or kafka):
        raise InvalidCommandError(
            "store=false and kafka=false leave nothing to check", reason="nothing_to_check"
        )
    verifier: HistoryVerifier | None = getattr(request.app.state, "history_verifier", None)
    if verifier is None:
        settings = request.app.state.settings
        verifier = HistoryVerifier(
            await applications(request),
            dsn=settings.postgres.dsn(),
            schema=request.app.state.event_store_schema,
            kafka=settings.kafka,
            catalog=SchemaCatalog.from_directory(settings.schemas_dir),
            kafka_timeout_s=KAFKA_TIMEOUT_S,
        )
        request.app.state.history_verifier = verifier
    return verifier


@router.get(
    "/executions/{execution_id}/verify",
    response_model=IntegrityReport,
    summary="Verify a run's hash chains",
    dependencies=[requires(Role.VIEWER)],
)
async def verify_execution(
    execution_id: UUID,
    tenant_id: TenantId,
    request: Request,
    store: CheckStore = True,
    kafka: CheckKafka = True,
) -> IntegrityReport:
    """Check the run's history (and its consensus rounds') in the event store and on Kafka.

    ``ok`` is false when a chain is broken; ``breaks`` names the first broken link of each
    (aggregate, version, expected and found hash). Another tenant's run is not found (404).
    """
    verifier = await _verifier(request, store=store, kafka=kafka)
    scope = VerifyScope(execution_id=execution_id, tenant_id=tenant_id)
    report = await run_in_threadpool(verifier.verify, scope, store=store, kafka=kafka)
    return IntegrityReport.of(report)


@router.get(
    "/verify",
    response_model=IntegrityReport,
    summary="Verify every hash chain of the caller's tenant",
    dependencies=[requires(Role.OPERATOR)],
)
async def verify_tenant(
    tenant_id: TenantId,
    request: Request,
    store: CheckStore = True,
    kafka: CheckKafka = True,
) -> IntegrityReport:
    """Check every aggregate of the tenant in the event store and on Kafka (reads whole topics)."""
    verifier = await _verifier(request, store=store, kafka=kafka)
    scope = VerifyScope(tenant_id=tenant_id)
    report = await run_in_threadpool(verifier.verify, scope, store=store, kafka=kafka)
    return IntegrityReport.of(report)
