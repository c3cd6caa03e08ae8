"""Write ``omium/sdk/client/_sync.py`` (``omium.Client``) from ``_async.py`` (``AsyncClient``).

The asynchronous client is the source; the synchronous one is generated from it, as httpcore
does with ``unasync``: the tokens ``async``/``await`` go, asynchronous names become their
synchronous twins (``AsyncIterator`` -> ``Iterator``, ``aclose`` -> ``close``, ...), then a few
exact text edits that are not single tokens (the sleep, the WebSocket module, docstrings), then
``ruff check --fix`` (import order) and ``ruff format``. Every text edit must apply, so a change of
the source that one no longer fits stops the generator instead of writing a wrong client.

    python tools/generate_sync_client.py          # write _sync.py
    python tools/generate_sync_client.py --check  # exit 1 when _sync.py is not what it writes
"""

from __future__ import annotations

import argparse
import difflib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import unasync

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "omium" / "sdk" / "client" / "_async.py"
TARGET = ROOT / "omium" / "sdk" / "client" / "_sync.py"

HEADER = (
    "# Generated from _async.py by tools/generate_sync_client.py (unasync): do not edit.\n"
    "# Change _async.py and run `python tools/generate_sync_client.py`; `make lint` checks it.\n"
)

# Names (whole tokens) and their synchronous twins, on top of unasync's own
# (__aenter__, __aexit__, AsyncIterator, ...).
TOKENS = {
    "AsyncClient": "Client",
    "AsyncBaseTransport": "BaseTransport",
    "aclose": "close",
    "aread": "read",
    "aiter_lines": "iter_lines",
}

# Exact text edits after the token pass: (old, new, how many times it must occur).
EDITS: list[tuple[str, str, int]] = [
    ("import asyncio\n", "", 1),
    ("Awaitable, ", "", 1),
    ("[[float], Awaitable[None]] = asyncio.sleep", "[[float], None] = time.sleep", 1),
    ("from websockets.asyncio.client import", "from websockets.sync.client import", 1),
    ("``omium.AsyncClient``: the asynchronous", "``omium.Client``: the synchronous", 1),
    ("An asynchronous client of the Omium gateway", "A synchronous client of the Omium gateway", 1),
    ("as an async context manager", "as a context manager", 1),
    (">>> async with AsyncClient(", ">>> with Client(", 1),
    ("= await omium.", "= omium.", 1),
    ("...     await omium.", "...     omium.", 1),
]


def _ruff(*args: str, source: str) -> str:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or "ruff"
    done = subprocess.run(
        [ruff, *args, "--stdin-filename", str(TARGET), "-"],
        input=source,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"ruff {' '.join(args)} failed on the generated client:\n{done.stderr}")
    return done.stdout


def generate() -> str:
    """The synchronous client's source, as it should be committed."""
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "_async" / "client.py"
        source.parent.mkdir()
        shutil.copyfile(SOURCE, source)
        rule = unasync.Rule("/_async/", "/_sync/", additional_replacements=TOKENS)
        unasync.unasync_files([str(source)], rules=[rule])
        text = (Path(folder) / "_sync" / "client.py").read_text(encoding="utf-8")
    for old, new, times in EDITS:
        found = text.count(old)
        if found != times:
            raise SystemExit(
                f"{SOURCE.name}: expected {old!r} {times} time(s), found it {found}: "
                "update EDITS in tools/generate_sync_client.py"
            )
        text = text.replace(old, new)
    # Import order (a renamed module sorts elsewhere) and `yield from` for a sync loop of yields.
    text = _ruff("check", "--fix", "--unsafe-fixes", "--quiet", "--select", "I,UP028", source=text)
    return HEADER + _ruff("format", source=text)


def main() -> int:
    """Write the client, or with ``--check`` say whether the committed one is current."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when _sync.py is stale")
    args = parser.parse_args()
    wanted = generate()
    current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
    if args.check:
        if current == wanted:
            return 0
        diff = difflib.unified_diff(
            current.splitlines(keepends=True),
            wanted.splitlines(keepends=True),
            f"{TARGET.relative_to(ROOT)} (committed)",
            f"{TARGET.relative_to(ROOT)} (generated)",
        )
        sys.stderr.writelines(diff)
        print(
            f"{TARGET.relative_to(ROOT)} is stale: run python tools/generate_sync_client.py",
            file=sys.stderr,
        )
        return 1
    if current != wanted:
        TARGET.write_text(wanted, encoding="utf-8")
        print(f"wrote {TARGET.relative_to(ROOT)}")
    else:
        print(f"{TARGET.relative_to(ROOT)} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
