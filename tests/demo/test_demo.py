"""``omium demo`` runs start to finish on the real stack, and its timeline shows what matters.

It runs as a user runs it (a subprocess), on this test's own topic prefix and event store schema,
so it neither sees nor disturbs anything else on the stack.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from omium.kernel.kafka import admin_client
from omium.kernel.settings import OmiumSettings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OMIUM = Path(sys.executable).with_name("omium")


@pytest.fixture
def isolated(stack: OmiumSettings) -> Iterator[tuple[str, str]]:
    """A topic prefix and an event store schema of this test's own, removed afterwards."""
    prefix = f"tdemo{uuid.uuid4().hex[:8]}"
    schema = f"test_demo_{uuid.uuid4().hex[:8]}"
    yield prefix, schema
    with psycopg.connect(stack.postgres.dsn(), autocommit=True) as conn:
        for name in (schema, f"{prefix}_rm"):
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
    admin = admin_client(stack.kafka)
    topics = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
    if topics:
        for future in admin.delete_topics(topics).values():
            future.exception(timeout=30)


def test_the_demo_detects_the_hallucination_rolls_back_and_reaches_consensus(
    isolated: tuple[str, str], tmp_path: Path
) -> None:
    prefix, schema = isolated
    env = {
        **os.environ,
        "OMIUM_KAFKA__TOPIC_PREFIX": prefix,
        "OMIUM_KAFKA__PARTITIONS": "3",
        "COLUMNS": "160",
    }
    started = time.monotonic()
    result = subprocess.run(
        [str(OMIUM), "demo", "--schema", schema, "--log-file", str(tmp_path / "demo.log")],
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
    )
    took = time.monotonic() - started
    output = result.stdout
    assert result.returncode == 0, output + result.stderr + (tmp_path / "demo.log").read_text()
    assert took < 120, f"the demo took {took:.0f}s"
    for expected in (
        "failure: hallucination",  # the grounded check caught the invented figure
        "recovery plan: rollback",  # the recovery processor chose to roll back
        "rolled back",  # and the run was rolled back to a checkpoint
        "consensus reached",  # the reviewers decided
        "publish",
        "the run went as designed",
    ):
        assert expected in output, f"{expected!r} missing from:\n{output}"
    timeline = output[output.index("Timeline of run") : output.index("Steps")]
    order = [
        timeline.index(text)
        for text in ("failure: hallucination", "rolled back", "consensus reached", "run completed")
    ]
    assert order == sorted(order), timeline
