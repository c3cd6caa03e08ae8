"""What the operator commands (``omium workflows|runs|approvals``) share.

They talk to a gateway through the SDK's client only, so they work from ``pip install omium``
alone (no server library is imported here or in the command modules).

- **Where and who.** :func:`connect` builds a :class:`~omium.sdk.client.Client` from the SDK's
  profile file (``~/.config/omium/client.toml``, ``--profile``/``OMIUM_PROFILE``), then the
  ``OMIUM_BASE_URL``, ``OMIUM_TOKEN`` / ``OMIUM_API_KEY`` and ``OMIUM_TIMEOUT_S`` variables, then
  ``--url``. The loader is the SDK's own (:meth:`ClientConfig.load`), so the CLI and
  ``Client.from_profile`` never disagree about a profile.
- **Output.** ``--output table`` (default) renders rich tables for people; ``--output json``
  prints the gateway's answer as JSON (one document, or one JSON line per event when
  following), for scripts.
- **Errors.** :func:`failures` turns the SDK's errors into one clear message on stderr
  (the problem's title, detail and its machine-readable members such as ``reason`` and
  ``current_state``) and exit code 1; configuration mistakes exit with 2.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from omium.kernel.errors import ConfigurationError, OmiumError
from omium.sdk.client import (
    Client,
    ClientConfig,
    CompletionTimeoutError,
    OmiumAPIError,
    OmiumConnectionError,
)
from omium.sdk.workflow import WorkflowValidationError

console = Console(highlight=False, soft_wrap=False)
"""Standard output (tables, JSON)."""

err_console = Console(stderr=True, highlight=False)
"""Standard error (errors, progress)."""


class Output(StrEnum):
    """How a command prints its answer."""

    table = "table"
    json = "json"


ProfileOption = Annotated[
    str | None,
    typer.Option(
        "--profile",
        help="Profile of the client config file (default: $OMIUM_PROFILE or 'default').",
        show_default=False,
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Client config file (default: $OMIUM_CONFIG_FILE or ~/.config/omium/client.toml).",
        show_default=False,
    ),
]
UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="The gateway's base URL (default: the profile's, $OMIUM_BASE_URL, else local).",
        show_default=False,
    ),
]
OutputOption = Annotated[
    Output, typer.Option("--output", "-o", help="table (for people) or json (for scripts).")
]

# Problem members worth showing after the detail, in this order.
_SHOWN_MEMBERS = (
    "reason",
    "field",
    "current_state",
    "command",
    "required_role",
    "actual_role",
    "expected_version",
    "actual_version",
    "retry_after",
)


def connect(profile: str | None, config: Path | None, url: str | None) -> Client:
    """A client of the gateway chosen by profile, environment and ``--url``.

    Raises:
        typer.Exit: The configuration is invalid (exit code 2, message on stderr).
    """
    try:
        loaded = ClientConfig.load(profile, path=config, base_url=url)
    except ConfigurationError as exc:
        err_console.print(f"[bold red]error:[/] {_escape(str(exc))}")
        raise typer.Exit(code=2) from None
    return Client(config=loaded)


@contextmanager
def failures(client: Client | None = None) -> Iterator[None]:
    """Report the SDK's errors as one message and exit 1 (the client is closed either way)."""
    try:
        yield
    except OmiumAPIError as exc:
        err_console.print(problem_message(exc))
        raise typer.Exit(code=1) from None
    except OmiumConnectionError as exc:
        err_console.print(f"[bold red]error:[/] cannot reach the gateway: {_escape(str(exc))}")
        raise typer.Exit(code=1) from None
    except CompletionTimeoutError as exc:
        err_console.print(f"[bold red]timed out:[/] {_escape(str(exc))}")
        raise typer.Exit(code=1) from None
    except WorkflowValidationError as exc:
        err_console.print(f"[bold red]invalid workflow:[/] {_escape(str(exc))}")
        raise typer.Exit(code=1) from None
    except (ConfigurationError, ValueError) as exc:
        err_console.print(f"[bold red]error:[/] {_escape(str(exc))}")
        raise typer.Exit(code=2) from None
    except OmiumError as exc:
        err_console.print(f"[bold red]error:[/] {_escape(str(exc))}")
        raise typer.Exit(code=1) from None
    finally:
        if client is not None:
            client.close()


def problem_message(exc: OmiumAPIError) -> str:
    """One problem as people read it: status, title, detail, then the members that say why."""
    lines = [f"[bold red]error:[/] {exc.status} {exc.title or exc.slug}"]
    if exc.detail:
        lines[0] += f": {_escape(exc.detail)}"
    members = [
        f"{name}={_escape(str(exc.extensions[name]))}"
        for name in _SHOWN_MEMBERS
        if exc.extensions.get(name) is not None
    ]
    if members:
        lines.append("  " + ", ".join(members))
    for error in exc.extensions.get("errors") or []:
        if isinstance(error, Mapping):
            where = ".".join(str(part) for part in error.get("loc", ()))
            lines.append(f"  {_escape(where)}: {_escape(str(error.get('msg', '')))}")
    if exc.status >= 500 and exc.request_id:
        lines.append(f"  request id {exc.request_id} (the gateway logged the cause under it)")
    return "\n".join(lines)


# --- printing ----------------------------------------------------------------------------------


def print_json(value: Any) -> None:
    """Print a model, a list of models or plain JSON data as indented JSON."""
    # Plain text, not a rich renderable: rich would wrap long strings at the terminal width.
    typer.echo(json.dumps(jsonable(value), ensure_ascii=False, indent=2))


def print_json_line(value: Any) -> None:
    """Print one JSON document on one line (for streams: JSON lines)."""
    typer.echo(json.dumps(jsonable(value), ensure_ascii=False, separators=(",", ":")))


def jsonable(value: Any) -> Any:
    """Models dumped in JSON mode; lists and dicts of them likewise."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    """A table whose cells never lose characters (ids fold instead of being cut)."""
    view = Table(title=title, title_justify="left", show_lines=False, pad_edge=False)
    for column in columns:
        view.add_column(column, overflow="fold")
    for row in rows:
        view.add_row(*(cell(value) for value in row))
    return view


def cell(value: Any) -> str:
    """A table cell: ``-`` for nothing, times without microseconds, JSON for structures."""
    if value is None or value == "":
        return "-"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, Mapping | list):
        return _escape(json.dumps(jsonable(value), ensure_ascii=False, separators=(",", ":")))
    return _escape(str(value))


def fields(title: str, values: Mapping[str, Any]) -> Table:
    """A two-column table of named values."""
    view = Table(title=title, title_justify="left", show_header=False, pad_edge=False)
    view.add_column("field", style="bold")
    view.add_column("value", overflow="fold")
    for name, value in values.items():
        view.add_row(name, cell(value))
    return view


def parse_json_object(text: str | None, file: Path | None, what: str) -> dict[str, Any] | None:
    """A JSON object given inline (``--input '{...}'``) or in a file (``--input-file``).

    Raises:
        typer.BadParameter: Not JSON, not an object, or both forms given.
    """
    if text is not None and file is not None:
        raise typer.BadParameter(f"give --{what} or --{what}-file, not both")
    if text is None and file is None:
        return None
    source = text if text is not None else _read(file)
    try:
        value = json.loads(source)
    except ValueError as exc:
        raise typer.BadParameter(f"--{what} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise typer.BadParameter(f"--{what} must be a JSON object")
    return value


def _read(file: Path | None) -> str:
    assert file is not None
    try:
        return file.read_text(encoding="utf-8")
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {file}: {exc}") from None


def _escape(text: str) -> str:
    # Rich markup: a literal "[" in data must not start a tag.
    return text.replace("[", "\\[")
