"""``omium verify``: prove a history untouched, in the event store and on the Kafka topics.

Exit status: 0 when every chain in scope verifies, 1 when one is broken (each broken chain's first
break is printed: aggregate, version, expected and found), 2 when verification could not run
(the run does not exist, a store is down).
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import typer

from omium.cli._app import app
from omium.kernel.errors import OmiumError
from omium.kernel.settings import load_settings

if TYPE_CHECKING:
    from omium.commands.verify import VerifyReport

EVENT_STORE_SCHEMA_ENV = "OMIUM_RELAY__SCHEMA"
"""The event store schema whose relayed chains are verified (the relay's own setting)."""

EXIT_BROKEN = 1
EXIT_CANNOT_VERIFY = 2


@app.command()
def verify(
    execution_id: Annotated[
        UUID | None, typer.Argument(help="The run to verify (its events and its rounds').")
    ] = None,
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="Verify every aggregate of this tenant.")
    ] = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Verify every aggregate of every tenant.")
    ] = False,
    store: Annotated[
        bool, typer.Option("--store/--no-store", help="Check the event store.")
    ] = True,
    kafka: Annotated[
        bool, typer.Option("--kafka/--no-kafka", help="Check the Kafka topics.")
    ] = True,
    schema: Annotated[
        str, typer.Option(envvar=EVENT_STORE_SCHEMA_ENV, help="Event store schema.")
    ] = "event_store",
    timeout: Annotated[
        float, typer.Option(min=1.0, help="Seconds allowed to read the topics to their end.")
    ] = 120.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check the hash chains of a run, a tenant or everything and name the first broken link.

    The stored events are re-encoded as the relay encodes them and compared with what it
    published; the domain topics are read (committed messages, from the beginning) and every
    chain walked: content against hash, version after version, prev_hash against the previous
    hash. Byte-identical re-sends are counted; gaps, different duplicates and missing events are
    breaks. Exits 1 when a chain is broken, 2 when verification cannot run.
    """
    from omium.commands.verify import HistoryVerifier, VerifyScope

    chosen = sum([execution_id is not None, everything]) + (
        tenant is not None and execution_id is None
    )
    if chosen != 1:
        typer.echo("verify: name a run, or --tenant TENANT, or --all", err=True)
        raise typer.Exit(code=EXIT_CANNOT_VERIFY)
    if not (store or kafka):
        typer.echo("verify: --no-store and --no-kafka leave nothing to check", err=True)
        raise typer.Exit(code=EXIT_CANNOT_VERIFY)
    scope = VerifyScope(execution_id=execution_id, tenant_id=tenant)
    settings = load_settings()
    try:
        with HistoryVerifier.create(settings, schema=schema, kafka_timeout_s=timeout) as verifier:
            report = verifier.verify(scope, store=store, kafka=kafka)
    except OmiumError as exc:
        typer.echo(f"verify: cannot verify {scope.describe()}: {exc}", err=True)
        raise typer.Exit(code=EXIT_CANNOT_VERIFY) from None
    if as_json:
        typer.echo(json.dumps(report_document(report), indent=2))
    else:
        _print(report)
    if not report.ok:
        raise typer.Exit(code=EXIT_BROKEN)


def report_document(report: VerifyReport) -> dict[str, Any]:
    """The report as plain JSON data (``--json``)."""
    document = dataclasses.asdict(report)
    document["scope"] = {
        "execution_id": None
        if report.scope.execution_id is None
        else str(report.scope.execution_id),
        "tenant_id": report.scope.tenant_id,
    }
    document["ok"] = report.ok
    document["breaks"] = [
        {**dataclasses.asdict(b), "where": b.where.value, "kind": b.kind.value}
        for b in report.breaks
    ]
    return document


def _print(report: VerifyReport) -> None:
    copies = " and ".join(
        name
        for name, checked in (
            ("event store", report.checked_store),
            ("Kafka", report.checked_kafka),
        )
        if checked
    )
    typer.echo(
        f"verified {report.scope.describe()} in the {copies}: {report.aggregates} aggregates"
    )
    if report.checked_store:
        typer.echo(
            f"  event store: {report.store_events} events re-encoded, "
            f"{report.unrelayed} not relayed yet"
        )
    if report.checked_kafka:
        typer.echo(
            f"  kafka: {report.kafka_events} events, {report.kafka_duplicates} identical re-sends, "
            f"{report.dead_lettered} dead-lettered by the relay"
        )
    if report.ok:
        typer.echo("OK: every hash chain is intact")
        return
    typer.echo(f"BROKEN: {len(report.breaks)} chain(s); first break of each:")
    for found in report.breaks:
        typer.echo(f"  - {found.describe()}")
