"""``python -m omium.sdk.workflow``: publish the JSON Schema, or validate definition files.

Usage::

    python -m omium.sdk.workflow schema [--check] [--output PATH]
    python -m omium.sdk.workflow validate FILE [FILE ...] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from omium.sdk.workflow._loader import load_workflow
from omium.sdk.workflow._schema import SCHEMA_PATH, render_schema, write_schema
from omium.sdk.workflow.errors import WorkflowValidationError


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 invalid or stale)."""
    parser = argparse.ArgumentParser(prog="python -m omium.sdk.workflow")
    commands = parser.add_subparsers(dest="command", required=True)
    schema = commands.add_parser("schema", help="write the published JSON Schema")
    schema.add_argument("--output", type=Path, default=SCHEMA_PATH)
    schema.add_argument("--check", action="store_true", help="fail if the file is out of date")
    validate = commands.add_parser("validate", help="validate workflow definition files")
    validate.add_argument("files", nargs="+", type=Path)
    validate.add_argument("--json", action="store_true", help="print issues as JSON")
    args = parser.parse_args(argv)
    if args.command == "schema":
        return _schema(args.output, check=args.check)
    return _validate(args.files, as_json=args.json)


def _schema(output: Path, *, check: bool) -> int:
    if check:
        current = output.read_text(encoding="utf-8") if output.exists() else ""
        if current != render_schema():
            print(f"{output} is out of date: run python -m omium.sdk.workflow schema")
            return 1
        print(f"{output} is up to date")
        return 0
    print(f"{'wrote' if write_schema(output) else 'unchanged'} {output}")
    return 0


def _validate(files: Sequence[Path], *, as_json: bool) -> int:
    status = 0
    for file in files:
        try:
            workflow = load_workflow(file)
        except WorkflowValidationError as exc:
            status = 1
            if as_json:
                print(json.dumps({"file": str(file), "errors": exc.as_dicts()}))
            else:
                print(exc, file=sys.stderr)
            continue
        if as_json:
            print(json.dumps({"file": str(file), "errors": []}))
        else:
            print(f"{file}: ok ({workflow.name}, {len(workflow.steps)} steps)")
    return status


if __name__ == "__main__":
    sys.exit(main())
