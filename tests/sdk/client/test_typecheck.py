"""mypy --strict over the client, the LangGraph saver and its routes, and the client's usage
file (``typecheck_client.py``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_the_client_and_its_usage_type_check() -> None:
    targets = [
        "omium/sdk/client",
        "omium/integrations",
        "tests/sdk/client/typecheck_client.py",
        "omium/gateway/api/langgraph.py",
        "omium/commands/langgraph/_threads.py",
        "omium/commands/langgraph/_store.py",
    ]
    # Errors in modules outside these targets belong to their owners' checks, not this one.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--follow-imports=silent",
            "--no-error-summary",
            "--strict",
            *targets,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
