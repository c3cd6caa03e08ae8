"""The ``omium`` command line: one typer app; each area registers its commands here."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="omium",
    help="Omium: durable, checkable, recoverable multi-agent LLM workflows.",
    no_args_is_help=True,
    add_completion=False,
)
