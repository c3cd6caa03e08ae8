"""``omium checkpoints prune``: apply workflows' checkpoint retention, then collect blobs.

For each run with checkpoints, the retention of its workflow version (``policies.checkpoints:
{keep_last, max_age}``) decides which checkpoints go (``CheckpointsPruned``; the latest of each
step at each position always stays). Then the checkpoint bucket's blobs that no unpruned
checkpoint refers to and that are older than ``--grace`` are deleted. Run it on a schedule (e.g.
a CronJob; the Helm chart has none yet).
Exit status: 0 done, 2 could not run (a store is down).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import timedelta
from typing import Annotated, Any

import structlog
import typer

from omium.cli._app import app
from omium.kernel.errors import OmiumError
from omium.kernel.settings import load_settings

EVENT_STORE_SCHEMA_ENV = "OMIUM_RELAY__SCHEMA"
"""The event store schema (the relay's own setting)."""

EXIT_CANNOT_RUN = 2

_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(s|m|h|d|w)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}

checkpoints_app = typer.Typer(
    name="checkpoints",
    help="Checkpoint storage: retention and garbage collection.",
    no_args_is_help=True,
)
app.add_typer(checkpoints_app)


def parse_duration(text: str) -> timedelta:
    """``45s``, ``30m``, ``1.5h``, ``7d``, ``2w`` as a duration.

    Raises:
        typer.BadParameter: Not a number and a unit.
    """
    found = _DURATION.match(text.strip())
    if found is None:
        raise typer.BadParameter(f"{text!r} is not a duration such as 30m, 1h or 7d")
    return timedelta(seconds=float(found.group(1)) * _UNITS[found.group(2)])


@checkpoints_app.command("prune")
def prune(
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="Only this tenant's runs (default: all).")
    ] = None,
    gc: Annotated[
        bool,
        typer.Option("--gc/--no-gc", help="Collect unreferenced blobs after pruning."),
    ] = True,
    grace: Annotated[
        str,
        typer.Option(help="Never delete a blob modified more recently than this (30m, 1h, 1d)."),
    ] = "1h",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report the blobs the collector would delete.")
    ] = False,
    prefix: Annotated[
        list[str] | None,
        typer.Option(
            "--prefix",
            help="Key prefix of blobs to collect, repeatable (default: the worker's, "
            "'<kafka topic prefix>/'; the LangGraph saver's is '<tenant>/').",
        ),
    ] = None,
    schema: Annotated[
        str, typer.Option(envvar=EVENT_STORE_SCHEMA_ENV, help="Event store schema.")
    ] = "event_store",
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Prune runs by their workflow's policies.checkpoints, then delete unreferenced blobs.

    A pruned checkpoint keeps its record in the history (the hash chain covers the events, not
    the blobs, so ``omium verify`` still passes); rolling back to it is refused as pruned.
    """
    from omium.commands import CommandApplications, event_store_env
    from omium.kernel.blobs import CheckpointBlobStore
    from omium.worker import CheckpointJanitor

    keep_young = parse_duration(grace)
    settings = load_settings()
    # Logs go to stderr so stdout carries only the report.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[settings.log_level]
        ),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    document: dict[str, Any] = {}
    try:
        env = event_store_env(settings, schema=schema, pool_size=1, max_overflow=2)
        with CommandApplications.create(env) as apps:
            prefixes = prefix or [f"{settings.kafka.topic_prefix}/"]
            stores = [
                CheckpointBlobStore.from_settings(settings.aws, key_prefix=p) for p in prefixes
            ]
            janitor = CheckpointJanitor(apps, stores if gc else ())
            pruned = janitor.prune(tenant_id=tenant)
            document["prune"] = {
                "runs_checked": pruned.runs_checked,
                "runs_with_retention": pruned.runs_with_retention,
                "checkpoints_pruned": pruned.checkpoints_pruned,
                "pruned": {str(run): ids for run, ids in pruned.pruned.items()},
                "skipped": {str(run): why for run, why in pruned.skipped.items()},
            }
            if gc:
                collected = janitor.collect(grace=keep_young, dry_run=dry_run)
                document["gc"] = {
                    "bucket": settings.aws.checkpoint_bucket,
                    "prefixes": prefixes,
                    "scanned": collected.scanned,
                    "deleted": list(collected.deleted),
                    "deleted_bytes": collected.deleted_bytes,
                    "kept": collected.kept,
                    "kept_young": collected.kept_young,
                    "dry_run": collected.dry_run,
                }
    except OmiumError as exc:
        typer.echo(f"checkpoints prune: {exc}", err=True)
        raise typer.Exit(code=EXIT_CANNOT_RUN) from None
    if as_json:
        typer.echo(json.dumps(document, indent=2))
        return
    p = document["prune"]
    typer.echo(
        f"pruned {p['checkpoints_pruned']} checkpoints of {len(p['pruned'])} runs "
        f"({p['runs_with_retention']} of {p['runs_checked']} runs with checkpoints have a "
        "retention)"
    )
    for run, why in p["skipped"].items():
        typer.echo(f"  skipped {run}: {why}")
    if "gc" in document:
        g = document["gc"]
        verb = "would delete" if g["dry_run"] else "deleted"
        typer.echo(
            f"blobs: {g['scanned']} scanned, {verb} {len(g['deleted'])} "
            f"({g['deleted_bytes']} bytes), kept {g['kept']} "
            f"({g['kept_young']} unreferenced but younger than {grace})"
        )
