"""Where Omium finds the files it ships: schemas, dashboards, stack configuration.

Everything Omium reads at run time is package data inside ``omium`` and is located through
:mod:`importlib.resources`, so an installed wheel finds it exactly as a checkout does. Omium is
installed unzipped (pip's default); a zipped import has no real path to hand to fastavro or a
subprocess, and is refused with a clear error.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from omium.kernel.errors import ConfigurationError

PACKAGE = "omium"


def packaged_path(*parts: str) -> Path:
    """The real path of a file or folder shipped inside the ``omium`` package.

    Args:
        parts: Path components under the package, e.g. ``("schemas", "avro")``.

    Raises:
        ConfigurationError: Omium was imported from a zip, so the data has no path on disk.
    """
    resource = files(PACKAGE).joinpath(*parts)
    if not isinstance(resource, Path):
        raise ConfigurationError(
            f"omium's package data {'/'.join(parts)!r} is not on disk ({resource!r}); "
            "install omium unzipped (pip's default)"
        )
    return resource


def checkout_root() -> Path | None:
    """The source checkout Omium runs from, or None for an installed wheel.

    A checkout is recognised by the ``pyproject.toml`` beside the ``omium`` folder; only
    development conveniences (the local stack's data folder, the demo's examples) use it.
    """
    package_dir = Path(__file__).resolve().parents[1]
    candidate = package_dir.parent
    return candidate if (candidate / "pyproject.toml").is_file() else None


def project_dir() -> Path:
    """The checkout when running from one, else the current directory."""
    return checkout_root() or Path.cwd()
