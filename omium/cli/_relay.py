"""``omium relay``: publish every stored domain event to Kafka (the outbox relay process).

The Helm chart runs this command as the relay Deployment; its options also read ``OMIUM_RELAY__*``
environment variables, so values map one-to-one onto the container's environment.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from omium.cli._app import app
from omium.kernel.settings import load_settings

if TYPE_CHECKING:
    from omium.commands.relay import RelayProgress

EVENT_STORE_SCHEMA_ENV = "OMIUM_RELAY__SCHEMA"
BATCH_SIZE_ENV = "OMIUM_RELAY__BATCH_SIZE"
BATCH_BYTES_ENV = "OMIUM_RELAY__BATCH_BYTES"
LINGER_ENV = "OMIUM_RELAY__LINGER_MS"
POLL_INTERVAL_ENV = "OMIUM_RELAY__POLL_INTERVAL_S"
TRANSACTIONAL_ID_ENV = "OMIUM_RELAY__TRANSACTIONAL_ID"
PROGRESS_INTERVAL_ENV = "OMIUM_RELAY__PROGRESS_INTERVAL_S"


@app.command()
def relay(
    once: Annotated[
        bool, typer.Option("--once", help="Relay everything stored so far, then exit.")
    ] = False,
    schema: Annotated[
        str, typer.Option(envvar=EVENT_STORE_SCHEMA_ENV, help="Event store schema to follow.")
    ] = "event_store",
    batch_size: Annotated[
        int,
        typer.Option(envvar=BATCH_SIZE_ENV, min=1, help="Notifications per log per transaction."),
    ] = 500,
    batch_bytes: Annotated[
        int,
        typer.Option(
            envvar=BATCH_BYTES_ENV,
            min=1,
            help="Stored event bytes per transaction at most (one event is always taken).",
        ),
    ] = 4 * 1024 * 1024,
    linger_ms: Annotated[
        float,
        typer.Option(
            envvar=LINGER_ENV,
            min=0,
            help="After a wake-up, wait this long for more events (larger, fewer transactions).",
        ),
    ] = 0.0,
    poll_interval: Annotated[
        float,
        typer.Option(envvar=POLL_INTERVAL_ENV, min=0.05, help="Seconds between polls."),
    ] = 1.0,
    transactional_id: Annotated[
        str | None,
        typer.Option(envvar=TRANSACTIONAL_ID_ENV, help="Kafka transactional id (one per relay)."),
    ] = None,
    progress_every: Annotated[
        float,
        typer.Option(envvar=PROGRESS_INTERVAL_ENV, min=0.1, help="Seconds between progress lines."),
    ] = 10.0,
) -> None:
    """Publish every stored domain event to its Kafka topic (the outbox relay).

    Ordered per aggregate, exactly once (the position is committed in each Kafka transaction),
    resumed from the position last committed.

    Stops on SIGTERM/SIGINT after the batch in hand; exits 1 on a fatal error.
    """
    from omium.commands.relay import OutboxRelay, RelayError, RelayOptions

    settings = load_settings()
    _configure_logging(settings.log_level)
    options = RelayOptions(
        batch_size=batch_size,
        batch_bytes=batch_bytes,
        linger_s=linger_ms / 1000,
        poll_interval_s=poll_interval,
        progress_interval_s=progress_every,
    )
    from omium.cli._health import RelayBeat, beacon

    # Each progress report is also the relay's heartbeat.
    beat = RelayBeat(
        beacon(settings, "relay", "relay", interval_s=progress_every), then=_print_progress
    )
    try:
        outbox = OutboxRelay.create(
            settings,
            schema=schema,
            options=options,
            transactional_id=transactional_id,
            on_progress=beat,
        )
    except Exception as exc:  # any startup failure: say what and exit non-zero
        typer.echo(f"relay: cannot start: {exc}", err=True)
        raise typer.Exit(code=1) from None
    _stop_on_signals(outbox.stop)
    with outbox:
        try:
            beat.stopped(outbox.run(once=once))
        except RelayError as exc:
            typer.echo(f"relay: stopped: {exc}", err=True)
            raise typer.Exit(code=1) from None


def _print_progress(progress: RelayProgress) -> None:
    latency = "-" if progress.last_latency_s is None else f"{progress.last_latency_s * 1000:.0f} ms"
    typer.echo(
        f"relayed {progress.relayed} events ({progress.rate:.0f}/s), "
        f"{progress.dead_lettered} dead-lettered, lag {progress.total_lag} events, "
        f"last batch {latency} after its newest event"
    )
    sys.stdout.flush()


def _stop_on_signals(stop: Callable[[], None]) -> None:
    def handle(signum: int, frame: FrameType | None) -> None:
        stop()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def _configure_logging(level: str) -> None:
    # Logs go to stderr so stdout carries only the progress lines.
    from omium.kernel.logs import configure_logging

    configure_logging(level, stream=sys.stderr)
