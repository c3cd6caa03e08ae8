"""``omium up``, ``omium down`` and ``omium status``: drive the local stack.

The work is done by :mod:`omium.infra.localstack`; this module only parses options and renders
results.
"""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from omium.cli._app import app
from omium.infra.localstack import (
    LocalStack,
    StackError,
    StartResult,
    StopResult,
    ha_kafka_env,
)
from omium.kernel.settings import load_settings

# soft_wrap: progress lines stay one line each in CI logs instead of wrapping at 80 columns.
console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

_STATE_STYLE = {"running": "green", "not ready": "yellow", "stopped": "dim", "foreign": "red"}


class ProfileChoice(StrEnum):
    """Which components ``omium up`` starts."""

    core = "core"
    full = "full"
    ha = "ha"


def _short(path: str) -> str:
    """``path`` relative to the working folder when below it (keeps the table narrow)."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def _fail(exc: StackError) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {exc}", markup=True, soft_wrap=True)
    return typer.Exit(code=1)


@app.command()
def up(
    profile: ProfileChoice | None = typer.Option(  # noqa: B008 - typer's declaration style
        None,
        "--profile",
        "-p",
        help="core: Kafka, PostgreSQL, Redis. full: also OpenSearch and the AWS emulator. "
        "ha: three Kafka brokers (replication 3, min.insync.replicas 2), PostgreSQL, Redis. "
        "Default: settings (OMIUM_STACK__PROFILE, 'full').",
    ),
) -> None:
    """Start the local stack (idempotent: running components are left alone)."""
    stack = LocalStack(load_settings())
    chosen = profile.value if profile else stack.settings.stack.profile
    console.print(f"omium up: profile [bold]{chosen}[/], data in {stack.paths.root}")
    began = time.monotonic()

    def report(result: StartResult) -> None:
        if result.action == "started":
            extra = (
                f", {result.prepare_seconds:.1f}s of it preparing"
                if result.prepare_seconds >= 1
                else ""
            )
            console.print(
                f"  [green]started[/] {result.name} at {result.address} "
                f"(pid {result.pid}) in {result.seconds:.1f}s{extra}"
            )
        else:
            console.print(
                f"  [cyan]already running[/] {result.name} at {result.address} (pid {result.pid})"
            )

    try:
        stack.up(chosen, on_result=report)
    except StackError as exc:
        raise _fail(exc) from exc
    console.print(f"stack ready in {time.monotonic() - began:.1f}s")
    if chosen == "ha":
        exports = " ".join(f"{k}={v}" for k, v in ha_kafka_env(stack.settings).items())
        console.print(f"point Omium at the three brokers with: export {exports}", soft_wrap=True)


@app.command()
def down() -> None:
    """Stop the processes ``omium up`` started (data is kept)."""
    stack = LocalStack(load_settings())

    def report(result: StopResult) -> None:
        if result.pid is None:
            console.print(f"  [dim]not running[/] {result.name}")
        else:
            console.print(
                f"  [yellow]{result.action}[/] {result.name} (pid {result.pid}) "
                f"in {result.seconds:.1f}s"
            )

    try:
        stack.down(on_result=report)
    except StackError as exc:
        raise _fail(exc) from exc


@app.command()
def status() -> None:
    """Show each component of the local stack: address, state, pid and log file."""
    stack = LocalStack(load_settings())
    table = Table(title=f"omium local stack ({stack.paths.root})")
    for column in ("component", "address", "state", "pid"):
        table.add_column(column, no_wrap=True)
    # Fold rather than truncate: the log path is what one copies to debug a failure.
    table.add_column("log", overflow="fold")
    for row in stack.status():
        style = _STATE_STYLE.get(row.state, "")
        state = f"[{style}]{row.state}[/]" if style else row.state
        if row.detail and row.state != "stopped":
            state += f"\n[dim]{row.detail[:60]}[/]"
        table.add_row(row.name, row.address, state, str(row.pid or "-"), _short(row.log_path))
    # Piped output (CI logs, tests) defaults to 80 columns; a wider table keeps rows on one line.
    out = console if console.is_terminal else Console(highlight=False, width=140)
    out.print(table)
