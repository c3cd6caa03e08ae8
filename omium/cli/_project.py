"""``omium project <name>`` (run a live projection) and ``omium replay <name>`` (rebuild one)."""

from __future__ import annotations

import signal
import threading
import time
from datetime import UTC, datetime
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
    from omium.projections import live_runner, open_projection
    from omium.projections.base import BatchStats

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
    console.print(
        f"projection [bold]{name}[/] running (group {runner.source.group_id}); Ctrl-C to stop"
    )
    last = [time.monotonic(), 0]

    def report(stats: BatchStats) -> None:
        now = time.monotonic()
        if now - last[0] >= report_every_s:
            rate = (runner.events_total - last[1]) / (now - last[0])
            console.print(f"{name}: {runner.events_total} events, {rate:.0f}/s")
            last[:] = [now, runner.events_total]

    from omium.cli._health import ProjectionBeat, beacon

    beat = ProjectionBeat(beacon(settings, "projection", name), runner)

    def on_batch(stats: BatchStats) -> None:
        report(stats)
        beat(stats)

    try:
        runner.run(stop=stop, on_batch=on_batch)
        beat.stopped()
    finally:
        runner.close()
    console.print(f"projection {name} stopped after {runner.events_total} events")


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("use an ISO 8601 time, e.g. 2025-03-01T12:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@app.command()
def replay(
    name: Annotated[str, typer.Argument(help="postgres | opensearch | redis")],
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="Read every topic from offset 0 (the default).")
    ] = False,
    since: Annotated[
        str | None,
        typer.Option(help="Read from the first message at or after this ISO time instead."),
    ] = None,
    keep_old: Annotated[
        bool,
        typer.Option(
            help="Keep the replaced schema / indices instead of dropping them (not for redis)."
        ),
    ] = False,
    workers: Annotated[
        int, typer.Option(help="Parallel writers, each on its share of the partitions.", min=1)
    ] = 2,
) -> None:
    """Rebuild a read model from Kafka into a fresh copy, verify it, and swap it in atomically.

    The live projection keeps serving meanwhile; after the swap it continues on the new copy.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from omium.projections import ReplayProgress
    from omium.projections import replay as run_replay

    if from_beginning and since is not None:
        raise typer.BadParameter("--from-beginning and --since exclude each other")
    settings = load_settings()
    serde = AvroSerde(SchemaCatalog.from_directory(settings.schemas_dir))
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:>10,.0f}/{task.total:,.0f} msgs"),
        TextColumn("{task.fields[rate]:>8,.0f} events/s"),
        TextColumn("lag {task.fields[lag]:,}"),
        TimeElapsedColumn(),
        TextColumn("eta {task.fields[eta]}"),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(f"replay {name}", total=1, rate=0.0, lag=0, eta="-")

        def show(progress: ReplayProgress) -> None:
            bar.update(
                task,
                total=max(progress.total, 1),
                completed=progress.total - progress.lag,
                rate=progress.rate,
                lag=progress.lag,
                eta="-" if progress.eta_s is None else f"{progress.eta_s:,.0f}s",
            )

        try:
            report = run_replay(
                name,
                settings,
                serde,
                since=_parse_since(since),
                keep_old=keep_old,
                workers=workers,
                on_progress=show,
            )
        except OmiumError as exc:
            console.print(f"[bold red]replay failed:[/] {exc}")
            raise typer.Exit(code=1) from None
    console.print(
        f"replayed {report.events:,} events in {report.elapsed_s:.1f}s "
        f"({report.rate:,.0f} events/s, {report.workers} workers); swapped in {report.swapped_to}"
    )
    for table, count in report.counts.items():
        before = report.live_counts.get(table)
        console.print(
            f"  {table:<20} {count:>10,}" + (f"  (was {before:,})" if before is not None else "")
        )


@app.command()
def lag(
    names: Annotated[
        list[str] | None, typer.Argument(help="Projections to show (default: all).")
    ] = None,
    watch: Annotated[float, typer.Option(help="Refresh every N seconds (0: once).")] = 0.0,
) -> None:
    """Show how far each projection is behind: resume point vs end offset, per partition."""
    from rich.table import Table

    from omium.projections import FACTORIES, projection_lag

    settings = load_settings()
    wanted = names or sorted(FACTORIES)
    out = Console()
    while True:
        table = Table(title=f"projection lag ({settings.kafka.topic_prefix})")
        for column in ("projection", "topic", "partition", "position", "end", "lag"):
            table.add_column(
                column,
                justify="right" if column in ("partition", "position", "end", "lag") else "left",
            )
        for name in wanted:
            try:
                rows = projection_lag(name, settings)
            except OmiumError as exc:
                table.add_row(name, f"[red]{exc}[/]", "", "", "", "")
                continue
            total = sum(r.lag for r in rows)
            for row in rows:
                if row.end > 0:
                    table.add_row(
                        name,
                        row.topic,
                        str(row.partition),
                        str(row.position),
                        str(row.end),
                        str(row.lag),
                    )
            table.add_row(f"[bold]{name}[/]", "", "", "", "total", f"[bold]{total}[/]")
        out.print(table)
        if watch <= 0:
            return
        time.sleep(watch)
