"""Bounded checkpoint storage on the real stack (PostgreSQL event store, the S3 emulator).

Identical states are stored once; the janitor prunes runs by their workflow version's
``policies.checkpoints``; the collector deletes only blobs no unpruned checkpoint refers to,
never a young one; what was pruned is reported as pruned, what was kept restores verified.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import boto3
import psycopg
import pytest
from psycopg import sql

from omium.commands import CheckpointPrunedError, CommandApplications, event_store_env
from omium.kernel.blobs import CheckpointBlobStore, CheckpointRef
from omium.kernel.settings import OmiumSettings
from omium.worker import CheckpointJanitor

pytestmark = pytest.mark.integration

OMIUM = Path(sys.executable).with_name("omium")

STATE = {name: name.encode() * 40_000 for name in ("A", "B", "C", "D", "E", "F", "orphan")}
"""States of 40 kB+ (all go to object storage with ``inline_max_bytes=0``)."""


@pytest.fixture
def s3_client(stack: OmiumSettings) -> Any:
    aws = stack.aws
    return boto3.client(
        "s3",
        endpoint_url=aws.endpoint_url,
        region_name=aws.region,
        aws_access_key_id=aws.access_key_id.get_secret_value(),
        aws_secret_access_key=aws.secret_access_key.get_secret_value(),
    )


@pytest.fixture
def blobs(stack: OmiumSettings, s3_client: Any) -> Iterator[CheckpointBlobStore]:
    """A store on a fresh bucket (emptied and deleted afterwards); every state as an object."""
    bucket = f"omium-test-{uuid.uuid4().hex[:12]}"
    aws = stack.aws.model_copy(update={"checkpoint_bucket": bucket})
    yield CheckpointBlobStore.from_settings(aws, inline_max_bytes=0, key_prefix="acme/")
    listing = s3_client.list_objects_v2(Bucket=bucket)
    for item in listing.get("Contents", []):
        s3_client.delete_object(Bucket=bucket, Key=item["Key"])
    s3_client.delete_bucket(Bucket=bucket)


@pytest.fixture
def schema() -> str:
    """This test's event store schema."""
    return f"test_retention_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def apps(stack: OmiumSettings, schema: str) -> Iterator[CommandApplications]:
    """The command applications on a fresh event store schema."""
    env = event_store_env(stack, schema=schema, pool_size=1, max_overflow=4)
    with CommandApplications.create(env) as built:
        yield built
    with psycopg.connect(stack.postgres.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def workflow(apps: CommandApplications, retention: dict[str, Any] | None) -> UUID:
    definition: dict[str, Any] = {"steps": [{"id": "draft", "agent": "agents.draft:run"}]}
    if retention is not None:
        definition["policies"] = {"checkpoints": retention}
    name = f"flow-{uuid.uuid4().hex[:6]}"
    return apps.workflows.register_workflow("acme", name=name, definition=definition).aggregate_id


def run_with_states(
    apps: CommandApplications, blobs: CheckpointBlobStore, workflow_id: UUID, states: str
) -> tuple[UUID, dict[str, CheckpointRef]]:
    """A running run with one checkpoint of step ``draft`` per letter of ``states``."""
    ex = apps.executions
    run = ex.start_execution("acme", workflow_id=workflow_id, workflow_version=1).aggregate_id
    ex.schedule_step("acme", run, step_id="draft")
    ex.start_step("acme", run, step_id="draft")
    refs = {}
    for n, name in enumerate(states):
        ref = blobs.put_state(STATE[name])
        ex.create_checkpoint(
            "acme",
            run,
            step_id="draft",
            position="after",
            checkpoint_id=f"cp{n}",
            **ref.command_fields(),
        )
        refs[f"cp{n}"] = ref
    return run, refs


def key_of(name: str) -> str:
    return f"acme/sha256/{hashlib.sha256(STATE[name]).hexdigest()}"


def stored_keys(s3_client: Any, blobs: CheckpointBlobStore) -> set[str]:
    listing = s3_client.list_objects_v2(Bucket=blobs.bucket)
    return {item["Key"] for item in listing.get("Contents", [])}


def test_retention_prunes_and_the_collector_deletes_only_unreferenced_blobs(
    apps: CommandApplications,
    blobs: CheckpointBlobStore,
    s3_client: Any,
) -> None:
    kept_two = workflow(apps, {"keep_last": 2})
    keep_all = workflow(apps, None)
    # cp0, cp1 and cp3 hold the same state: one object for the three.
    run, refs = run_with_states(apps, blobs, kept_two, "AABAC")
    _, other_refs = run_with_states(apps, blobs, keep_all, "DEF")
    orphan = blobs.put_state(STATE["orphan"])  # uploaded, its checkpoint never saved
    assert refs["cp0"] == refs["cp1"] == refs["cp3"]
    everything = {key_of(name) for name in "ABCDEF"} | {key_of("orphan")}
    assert stored_keys(s3_client, blobs) == everything

    janitor = CheckpointJanitor(apps, blobs)
    report = janitor.prune()

    assert report.pruned == {run: ["cp0", "cp1", "cp2"]}
    assert (report.runs_checked, report.runs_with_retention, report.skipped) == (2, 1, {})
    assert janitor.prune().pruned == {}  # nothing more to let go
    # Within the grace period nothing goes, referenced or not.
    young = janitor.collect()
    assert young.deleted == () and young.kept_young == 2
    dry = janitor.collect(grace=timedelta(0), dry_run=True)
    assert set(dry.deleted) == {key_of("B"), key_of("orphan")}
    assert stored_keys(s3_client, blobs) == everything

    collected = janitor.collect(grace=timedelta(0))

    # B was only pruned checkpoints' state; A is still cp3's; the orphan nobody's.
    assert set(collected.deleted) == {key_of("B"), key_of("orphan")}
    assert collected.deleted_bytes == len(STATE["B"]) + len(STATE["orphan"])
    assert stored_keys(s3_client, blobs) == everything - {key_of("B"), key_of("orphan")}
    # What is kept restores, checksum verified; what was pruned says so.
    assert blobs.get_state(refs["cp3"], checkpoint_id="cp3") == STATE["A"]
    assert blobs.get_state(refs["cp4"], checkpoint_id="cp4") == STATE["C"]
    for ref in other_refs.values():
        assert blobs.get_state(ref) in (STATE["D"], STATE["E"], STATE["F"])
    with pytest.raises(CheckpointPrunedError) as caught:
        apps.executions.roll_back_to_checkpoint("acme", run, checkpoint_id="cp2")
    assert caught.value.reason == "checkpoint_pruned"
    assert caught.value.checksum == refs["cp2"].checksum
    with pytest.raises(CheckpointPrunedError):
        apps.executions.get_checkpoint("acme", run, "cp0")
    apps.executions.roll_back_to_checkpoint("acme", run, checkpoint_id="cp3")
    assert orphan.object_key not in apps.executions.referenced_object_keys()


def test_max_age_retention_comes_from_the_workflow_version(
    apps: CommandApplications, blobs: CheckpointBlobStore
) -> None:
    aged = workflow(apps, {"max_age": "1h"})
    run, _ = run_with_states(apps, blobs, aged, "ABC")
    janitor = CheckpointJanitor(apps, blobs)

    assert janitor.prune().pruned == {}
    later = apps.executions.now() + timedelta(hours=2)
    assert janitor.prune(now=later).pruned == {run: ["cp0", "cp1"]}
    rule = janitor.retention_of("acme", aged, 1)
    assert rule is not None and rule.max_age_delta() == timedelta(hours=1)


def test_a_run_whose_retention_is_invalid_is_skipped_not_pruned(
    apps: CommandApplications, blobs: CheckpointBlobStore
) -> None:
    broken = workflow(apps, {"keep_last": 0})
    run, _ = run_with_states(apps, blobs, broken, "AB")

    report = CheckpointJanitor(apps, blobs).prune()

    assert report.pruned == {} and "keep_last" in report.skipped[run]


def test_reusing_a_blob_renews_it_so_the_grace_period_covers_its_new_checkpoint(
    blobs: CheckpointBlobStore, s3_client: Any
) -> None:
    first = blobs.put_state(STATE["A"])
    before = s3_client.head_object(Bucket=blobs.bucket, Key=first.object_key)["LastModified"]
    time.sleep(1.1)

    again = blobs.put_state(STATE["A"])

    head = s3_client.head_object(Bucket=blobs.bucket, Key=first.object_key)
    assert again == first and head["LastModified"] > before
    assert head["Metadata"] == {"sha256": first.checksum}
    report = blobs.collect_garbage(set, grace=timedelta(minutes=5))
    assert report.deleted == () and report.kept_young == 1


def test_the_command_prunes_and_collects_with_its_report(
    apps: CommandApplications,
    blobs: CheckpointBlobStore,
    s3_client: Any,
    schema: str,
) -> None:
    run, _ = run_with_states(apps, blobs, workflow(apps, {"keep_last": 1}), "ABC")
    env = {
        **os.environ,
        "OMIUM_RELAY__SCHEMA": schema,
        "OMIUM_AWS__CHECKPOINT_BUCKET": blobs.bucket,
    }

    def omium_checkpoints(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(OMIUM), "checkpoints", "prune", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    young = omium_checkpoints("--json", "--prefix", "acme/")
    done = omium_checkpoints("--grace", "0s", "--prefix", "acme/")
    bad = omium_checkpoints("--grace", "soon")

    assert young.returncode == 0, young.stderr
    report = json.loads(young.stdout)
    assert report["prune"]["pruned"] == {str(run): ["cp0", "cp1"]}
    assert report["gc"]["deleted"] == [] and report["gc"]["kept_young"] == 2
    assert done.returncode == 0, done.stderr
    assert "pruned 0 checkpoints" in done.stdout and "deleted 2" in done.stdout
    assert stored_keys(s3_client, blobs) == {key_of("C")}
    assert bad.returncode == 2 and "not a duration" in bad.stderr


def test_the_collector_touches_only_blobs_of_its_own_prefix_and_shape(
    blobs: CheckpointBlobStore, s3_client: Any
) -> None:
    blobs.ensure_bucket()
    digest = hashlib.sha256(b"x").hexdigest()
    foreign = {"acme/sha256/README", f"other/sha256/{digest}", f"acme/sha256/{digest}.bak"}
    for key in foreign:
        s3_client.put_object(Bucket=blobs.bucket, Key=key, Body=b"x")
    ours = blobs.put_state(STATE["A"])

    report = blobs.collect_garbage(set, grace=timedelta(0))

    assert report.deleted == (ours.object_key,) and report.scanned == 1
    assert stored_keys(s3_client, blobs) == foreign
