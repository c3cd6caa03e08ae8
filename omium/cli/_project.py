"""``omium project <name>`` (run a live projection) and ``omium replay <name>`` (rebuild one)."""

from __future__ import annotations

import signal
import threading
import time
from typing import Annotated

import typer
from rich.console import Console

from omium.cli._app import app
from omium.kernel.errors import OmiumError
from omium.kernel.kafka import ensure_topics
from omium.kernel.serde import AvroSerde, SchemaCatalog
from omium.kernel.settings import load_settings

console = Console(stderr=True, highlight=False)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


@app.command()
def project(
    name: Annotated[str, typer.Argument(help="postgres | redis | opensearch | timestream")],
    batch: Annotated[int, typer.Option(help="Most events per batch.", min=1)] = 500,
    report_every_s: Annotated[float, typer.Option(help="Seconds between progress lines.")] = 10.0,
) -> None:
    """Run one projection (its own consumer group) until SIGINT/SIGTERM.

    It resumes where its store says (PostgreSQL, Redis) or where its consumer group committed
    (OpenSearch, Timestream); a store outage is retried, never skipped.
    """
    from projections import live_runner, open_projection
    from projections.base import BatchStats

    settings = load_settings()
    try:
        ensure_topics(settings.kafka)
        projection = open_projection(name, settings)
    except OmiumError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(code=1) from None
    serde = AvroSerde(SchemaCatalog.from_directory(settings.schemas_dir))
    runner = live_runner(projection, settings.kafka, serde, max_batch=batch)
    stop = _stop_on_signals()
    console.print(f"projection [bold]{name}[/] running (group {runner.source.group_id}); "
                  "Ctrl-C to stop")
    last = [time.monotonic(), 0]

    def report(stats: BatchStats) -> None:
        now = time.monotonic()
        if now - last[0] >= report_every_s:
            rate = (runner.events_total - last[1]) / (now - last[0])
            console.print(f"{name}: {runner.events_total} events, {rate:.0f}/s")
            last[:] = [now, runner.events_total]

    try:
        runner.run(stop=stop, on_batch=report)
    finally:
        runner.close()
    console.print(f"projection {name} stopped after {runner.events_total} events")
