"""``omium worker <processor>``: run one stream processor instance until SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from omium.cli._app import app
from omium.kernel.settings import load_settings


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def worker(
    ctx: typer.Context,
    processor: Annotated[
        str,
        typer.Argument(
            help="consensus | recovery | policy | commands | approvals | orchestrator | execute "
            "(execute also takes --concurrency N, --schema S, --heartbeat-ttl SECONDS; "
            "orchestrator --schema S)",
            show_default=False,
        ),
    ],
    instance_id: Annotated[
        str | None,
        typer.Option(
            "--instance-id",
            envvar="OMIUM_STREAMS_INSTANCE_ID",
            help="Instance name, unique per running instance (default: <POD_NAME or HOSTNAME or "
            "host name>-<pid>, stable across container restarts); a restart under the same "
            "name aborts the transaction its predecessor left open.",
        ),
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option("--state-dir", help="Local state folder (default: <data dir>/streams)."),
    ] = None,
) -> None:
    """Run one stream processor (exactly once, partitions shared with other instances)."""
    from omium.cli._worker_execute import EXECUTION_WORKERS
    from omium.streams import PROCESSORS, run_processor
    from omium.streams.base import default_instance_id

    if processor in EXECUTION_WORKERS:  # the execution worker's parts take options of their own
        EXECUTION_WORKERS[processor](ctx.args, instance_id=instance_id, state_dir=state_dir)
        return
    if ctx.args:
        typer.echo(f"unexpected arguments for {processor}: {' '.join(ctx.args)}", err=True)
        raise typer.Exit(code=2)

    if processor not in PROCESSORS:
        known = ", ".join(sorted(PROCESSORS))
        typer.echo(f"unknown processor {processor!r} (known: {known})", err=True)
        raise typer.Exit(code=2)
    settings = load_settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from omium.kernel.logs import configure_logging

    configure_logging(settings.log_level)  # Omium's own events (structlog), redacted, to stderr
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    overrides: dict[str, object] = {"instance_id": instance_id or default_instance_id(os.environ)}
    if state_dir is not None:
        overrides["state_dir"] = state_dir
    typer.echo(f"{processor}: instance {overrides['instance_id']}", err=True)
    from omium.cli._health import beacon

    health = beacon(settings, "processor", processor, instance_id=str(overrides["instance_id"]))
    stats = run_processor(processor, settings, stop=stop, health=health, **overrides)
    typer.echo(f"{processor} stopped: {stats}", err=True)
