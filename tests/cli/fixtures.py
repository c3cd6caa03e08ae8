"""Fixtures for the operator CLI tests: the real gateway, and the pipeline behind it.

``omium workflows|runs|approvals`` run as the installed ``omium`` command in a subprocess, with
``OMIUM_BASE_URL`` and ``OMIUM_TOKEN`` pointing at the session's :class:`LiveGateway`. Behind
the gateway run the relay, the orchestrator, the execution worker and the PostgreSQL and Redis
projections (threads of the test process, on the gateway's own topics and event store schema), so
runs started through the CLI really run and show up in the read models.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from omium.cli._pipeline import Pipeline
from omium.kernel.settings import OmiumSettings
from omium.sdk.client import Client
from tests.sdk.client.fixtures import LiveGateway

AGENT = {"entrypoint": "tests.cli.agents:echo"}

OMIUM = str(Path(sys.executable).with_name("omium"))
"""The ``omium`` command of this virtualenv."""


@dataclass(frozen=True)
class Result:
    """How one ``omium`` command ended."""

    exit_code: int
    stdout: str
    stderr: str


def chain_workflow(name: str, steps: tuple[str, ...] = ("plan", "act", "report")) -> dict[str, Any]:
    """An Omium workflow file's content: ``steps`` in a chain, checkpointed before and after."""
    return {
        "name": name,
        "agents": {"echo": AGENT},
        "defaults": {"checkpoint": {"before": True, "after": True}},
        "steps": [
            {"id": step, "agent": "echo", **({"needs": [steps[i - 1]]} if i else {})}
            for i, step in enumerate(steps)
        ],
    }


@dataclass
class Cli:
    """Runs ``omium ...`` against the live gateway as one tenant.

    Attributes:
        gateway: The session's gateway.
        tenant: The tenant the tokens act for.
    """

    gateway: LiveGateway
    tenant: str

    def __call__(
        self,
        *args: str,
        role: str = "operator",
        subject: str = "olga",
        env: Mapping[str, str] | None = None,
    ) -> Result:
        """Run the command; the result has ``exit_code``, ``stdout`` and ``stderr``."""
        base = {
            "OMIUM_BASE_URL": self.gateway.url,
            "OMIUM_TOKEN": self.gateway.token(role, tenant=self.tenant, subject=subject),
            "OMIUM_API_KEY": "",
            "OMIUM_PROFILE": "",
            "OMIUM_CONFIG_FILE": "",
            "COLUMNS": "200",
        }
        done = subprocess.run(
            [OMIUM, *args],
            env={**os.environ, **base, **(env or {})},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    def ok(self, *args: str, **kwargs: Any) -> Result:
        """Run a command that must succeed."""
        result = self(*args, **kwargs)
        assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
        return result

    def json(self, *args: str, **kwargs: Any) -> Any:
        """Run a command that must succeed with ``--output json``; its parsed output."""
        return json.loads(self.ok(*args, "--output", "json", **kwargs).stdout)

    def fails(self, *args: str, code: int = 1, **kwargs: Any) -> str:
        """Run a command that must fail with ``code``; its stderr."""
        result = self(*args, **kwargs)
        assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
        return " ".join(result.stderr.split())

    def eventually(self, *args: str, until: Callable[[Any], bool], timeout_s: float = 30.0) -> Any:
        """Repeat a JSON command until ``until(output)`` holds (the read models follow later)."""
        deadline = time.monotonic() + timeout_s
        while True:
            result = self(*args, "--output", "json")
            if result.exit_code == 0:
                value = json.loads(result.stdout)
                if until(value):
                    return value
            if time.monotonic() > deadline:
                raise AssertionError(f"omium {' '.join(args)}: {result.stdout} {result.stderr}")
            time.sleep(0.3)


@pytest.fixture(scope="session")
def live_pipeline(live_gateway: LiveGateway) -> Iterator[Pipeline]:
    """Relay, command worker, approval deadlines, orchestrator, worker and the PostgreSQL/Redis
    projections behind the gateway."""
    settings: OmiumSettings = live_gateway.settings
    parts = ("relay", "commands", "approvals", "orchestrator", "worker")
    with Pipeline(
        settings,
        schema=live_gateway.schema,
        parts=parts,
        instance_id="cli-tests",
        projections=("postgres", "redis"),
        concurrency=4,
    ) as pipeline:
        yield pipeline


@pytest.fixture
def cli(live_gateway: LiveGateway, live_pipeline: Pipeline, tenant: str) -> Cli:
    """``omium`` as an operator of this test's tenant."""
    live_pipeline.check()
    return Cli(live_gateway, tenant)


@pytest.fixture
def operator_client(client_factory: Callable[..., Client], live_pipeline: Pipeline) -> Client:
    """An SDK client of this test's tenant with the operator role; runs really run."""
    live_pipeline.check()
    return client_factory("operator")
