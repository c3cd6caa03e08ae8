"""The ``omium`` command line.

Each area module registers its commands on :data:`app` when imported. The base install is the
SDK, so an area whose libraries belong to an extra (``omium[server]``, ``omium[worker]``) is left
out when they are missing, and the help says which extra adds it.
"""

from importlib import import_module

from omium.cli._app import app

AREAS = (
    "_stack",
    "_token",
    "_relay",
    "_verify",
    "_checkpoints",
    "_worker",
    "_project",
    "_demo",
    # Operator commands: the SDK only, so they work from `pip install omium` alone.
    "_workflows",
    "_runs",
    "_approvals",
    "_limits",
)
"""Modules under omium.cli that register commands, in help order."""

missing_areas: dict[str, str] = {}
"""Area left out → the library it needs that is not installed."""

for _area in AREAS:
    try:
        import_module(f"omium.cli.{_area}")
    except ModuleNotFoundError as missing:
        if missing.name is None or missing.name.startswith("omium"):
            raise  # a broken install of Omium itself, not a missing extra
        missing_areas[_area] = missing.name

if missing_areas:
    app.info.epilog = (
        # typer renders help as rich markup: a bare [server] would vanish as a tag.
        "Server and worker commands need their extras: pip install 'omium\\[server]' "
        f"(missing: {', '.join(sorted(set(missing_areas.values())))})."
    )

__all__ = ["app"]
