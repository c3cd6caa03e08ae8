"""``omium worker orchestrator`` and ``omium worker execute``: the execution worker's two parts.

- ``orchestrator`` turns run events into the next steps (a stream processor, exactly once; run
  as many instances as you like, they share the partitions);
- ``execute`` runs the steps: a consumer group on the work items, so adding processes adds
  capacity up to the number of partitions, each running ``--concurrency`` steps at a time.

``omium worker`` (``_worker.py``) hands these two names, with their own options, to this module.
Agents are imported from the current directory too (as ``python -m`` does), so a project's
``package.module:function`` entry points resolve when the worker runs from its checkout.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from omium.cli._health import beacon
from omium.kernel.settings import OmiumSettings, load_settings

SCHEMA_ENV = "OMIUM_WORKER__SCHEMA"
CONCURRENCY_ENV = "OMIUM_WORKER__CONCURRENCY"
HEARTBEAT_TTL_ENV = "OMIUM_WORKER__HEARTBEAT_TTL_S"

_orchestrator_app = typer.Typer(add_completion=False)
_execute_app = typer.Typer(add_completion=False)


@_orchestrator_app.command()
def orchestrator(
    ctx: typer.Context,
    schema: Annotated[str, typer.Option(envvar=SCHEMA_ENV, help="Event store schema.")] = (
        "event_store"
    ),
) -> None:
    """Schedule every run's next steps as its steps complete, and complete finished runs."""
    from omium.commands import CommandApplications, event_store_env
    from omium.worker import orchestrator_runtime

    settings, stop = _start(ctx)
    env = event_store_env(settings, schema=schema)
    with CommandApplications.create(env) as apps:
        overrides = _processor_overrides(ctx)
        runtime = orchestrator_runtime(settings, apps, **overrides)
        runtime.health = beacon(
            settings, "processor", "orchestrator", instance_id=overrides["instance_id"]
        )
        runtime.run(stop)
        typer.echo(f"orchestrator stopped: {dict(runtime.stats)}", err=True)


@_execute_app.command()
def execute(
    ctx: typer.Context,
    concurrency: Annotated[
        int, typer.Option(envvar=CONCURRENCY_ENV, min=1, help="Steps run at the same time.")
    ] = 4,
    schema: Annotated[str, typer.Option(envvar=SCHEMA_ENV, help="Event store schema.")] = (
        "event_store"
    ),
    heartbeat_ttl: Annotated[
        float,
        typer.Option(
            envvar=HEARTBEAT_TTL_ENV,
            min=1.0,
            help="Seconds a step's claim lives without a heartbeat (takeover delay).",
        ),
    ] = 5.0,
) -> None:
    """Run workflow steps: agents, checkpoints, post-conditions, consensus votes, telemetry."""
    from omium.commands import CommandApplications, event_store_env
    from omium.worker import build_services, run_execution_worker

    settings, stop = _start(ctx)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # the project's agents, as `python -m` would find them
    env = event_store_env(settings, schema=schema, pool_size=2, max_overflow=concurrency * 2)
    with CommandApplications.create(env) as apps:
        worker_id = ctx.obj.get("instance_id") or None
        services = build_services(
            settings, apps, worker_id=worker_id, heartbeat_ttl_s=heartbeat_ttl
        )
        typer.echo(
            f"execution worker {services.worker_id} running {concurrency} step(s) at a "
            f"time; SIGTERM/SIGINT to stop",
            err=True,
        )
        health = beacon(settings, "worker", "execute", instance_id=services.worker_id)
        stats = run_execution_worker(
            settings, apps, stop=stop, concurrency=concurrency, services=services, health=health
        )
        typer.echo(f"execution worker stopped: {stats}", err=True)


def _start(ctx: typer.Context) -> tuple[OmiumSettings, threading.Event]:
    settings = load_settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from omium.kernel.logs import configure_logging

    configure_logging(settings.log_level)  # Omium's own events (structlog), redacted, to stderr
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return settings, stop


def _processor_overrides(ctx: typer.Context) -> dict[str, Any]:
    from omium.streams.base import default_instance_id

    instance_id = ctx.obj.get("instance_id") or default_instance_id(os.environ)
    overrides: dict[str, Any] = {"instance_id": instance_id}
    if ctx.obj.get("state_dir") is not None:
        overrides["state_dir"] = ctx.obj["state_dir"]
    return overrides


def _runner(app: typer.Typer, name: str) -> Callable[..., None]:
    def run(args: Sequence[str], *, instance_id: str | None, state_dir: Path | None) -> None:
        command = typer.main.get_command(app)
        command.main(
            args=list(args),
            prog_name=f"omium worker {name}",
            obj={"instance_id": instance_id, "state_dir": state_dir},
        )

    return run


EXECUTION_WORKERS: dict[str, Callable[..., None]] = {
    "orchestrator": _runner(_orchestrator_app, "orchestrator"),
    "execute": _runner(_execute_app, "execute"),
}
"""``omium worker <name>`` entry points of the execution worker, given the remaining arguments."""
