"""``omium demo``: a multi-agent workflow run end to end on the local stack, then its timeline.

The demo starts Omium's moving parts in this process (relay, command worker, consensus, policy
and recovery processors, orchestrator, execution worker, PostgreSQL read model; one thread each,
see :mod:`omium.cli._pipeline`), publishes two policies, registers the research-report workflow
(``examples/workflows/research_report.yaml``) and runs it once with the scripted LLM provider,
whose first draft is hallucinated. Omium detects it (the ``grounded`` post-condition), the
recovery processor plans a rollback, the run resumes from a checkpoint, the draft passes, and
three reviewers decide by majority. The run's events are then read back from Kafka and printed
as a timeline, with checks that it went as designed (exit code 1 if not).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import typer
from rich.console import Console

from omium.cli._app import app
from omium.kernel.logs import configure_logging
from omium.kernel.resources import project_dir
from omium.kernel.settings import OmiumSettings, load_settings

console = Console(highlight=False)
if not console.is_terminal:
    console = Console(highlight=False, width=120)  # piped or logged: room for the timeline

REPO_ROOT = project_dir()
EXAMPLES = REPO_ROOT / "examples"
WORKFLOW_FILE = EXAMPLES / "workflows" / "research_report.yaml"
SCRIPT_FILE = EXAMPLES / "workflows" / "research_report.script.yaml"
POLICIES = (
    ("pii-redaction", EXAMPLES / "policies" / "pii_redaction.rego", "deny"),
    ("editorial-citations", EXAMPLES / "policies" / "editorial_citations.rego", "warn"),
)
"""The demo's policies: name, Rego file, mode."""


@app.command()
def demo(
    tenant: Annotated[
        str | None, typer.Option(help="Tenant to run as (default: a new demo-<hex> tenant).")
    ] = None,
    schema: Annotated[str, typer.Option(help="Event store schema.")] = "event_store",
    timeout: Annotated[float, typer.Option(help="Seconds the run may take.", min=5)] = 90.0,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also list LLM calls, commands, scheduling.")
    ] = False,
    project: Annotated[
        bool,
        typer.Option(help="Also keep the PostgreSQL read model (the gateway's timeline) current."),
    ] = True,
    log_file: Annotated[
        Path | None, typer.Option(help="Where the parts log (default: <data dir>/logs/demo.log).")
    ] = None,
) -> None:
    """Run the research-report workflow end to end and print its timeline."""
    from omium.cli import _demo_run

    settings = load_settings()
    tenant = tenant or f"demo-{secrets.token_hex(3)}"
    log_file = log_file or settings.stack.data_dir / "logs" / "demo.log"
    _configure_logging(log_file, settings.log_level)
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))  # the example agents are imported from the checkout
    console.rule("[bold]Omium demo: a research report written by five agents")
    with _stderr_to(log_file):
        ok = _demo_run.run_demo(
            settings,
            tenant=tenant,
            schema=schema,
            timeout_s=timeout,
            verbose=verbose,
            projections=["postgres"] if project else [],
            console=console,
            log_file=log_file,
        )
    if not ok:
        raise typer.Exit(code=1)


def policy_modules() -> list[tuple[str, str, str]]:
    """The demo's policies as ``(name, Rego source, mode)``."""
    return [(name, path.read_text(), mode) for name, path, mode in POLICIES]


def publish_policies(apps: Any, tenant: str) -> list[str]:
    """Publish the demo's policies for ``tenant`` (once per content); return their names."""
    names = []
    for name, module, mode in policy_modules():
        digest = hashlib.sha256(f"{name}\n{mode}\n{module}".encode()).hexdigest()[:24]
        apps.policies.publish_policy(
            tenant, name=name, module=module, mode=mode, idempotency_key=f"demo-{digest}"
        )
        names.append(name)
    return names


def register_workflow(apps: Any, tenant: str, definition: dict[str, Any]) -> tuple[UUID, int]:
    """Register the workflow for ``tenant``, or publish a new version if it changed."""
    from omium.commands import NotFoundError

    try:
        existing = apps.workflows.find_workflow(tenant, definition["name"])
    except NotFoundError:
        result = apps.workflows.register_workflow(
            tenant, name=definition["name"], definition=definition
        )
        return result.aggregate_id, 1
    if existing.definition == definition:
        return existing.id, existing.latest_version
    apps.workflows.publish_workflow_version(tenant, existing.id, definition=definition)
    return existing.id, existing.latest_version + 1


@contextlib.contextmanager
def _stderr_to(path: Path) -> Iterator[None]:
    """Send file descriptor 2 to ``path``: Kafka's C library logs there, not to the demo."""
    sys.stderr.flush()
    saved = os.dup(2)
    with path.open("ab") as target:
        os.dup2(target.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def _configure_logging(path: Path, level: str) -> None:
    """Everything the parts log goes to ``path``; the console shows only the demo."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="w")
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(threadName)s %(name)s %(levelname)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    configure_logging(level, stream=path.open("a"))  # structlog events: redacted, plain tracebacks


def now() -> datetime:
    """The current time (UTC)."""
    return datetime.now(UTC)


def elapsed(since: float) -> str:
    """Seconds since ``since`` (a ``time.monotonic()``), for people."""
    return f"{time.monotonic() - since:.1f}s"


def settings_summary(settings: OmiumSettings) -> str:
    """Where the demo runs: Kafka, PostgreSQL, topic prefix."""
    pg = settings.postgres
    return (
        f"Kafka {settings.kafka.bootstrap_servers} (topics {settings.kafka.topic_prefix}.*), "
        f"PostgreSQL {pg.host}:{pg.port}/{pg.database}, Redis {settings.redis.url}, "
        f"S3 {settings.aws.endpoint_url}"
    )
