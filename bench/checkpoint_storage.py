"""Storage used by a long run's checkpoints, with and without retention (issue 13 item 4).

One long run per scenario, on the real stores: PostgreSQL (the event store, a schema of its
own) and the S3 emulator (a bucket of its own). The run has ``--steps`` steps and goes round
them ``--rounds`` times (an agent loop), checkpointing each step after it ran, as the worker
does: the state goes through ``CheckpointBlobStore.put_state`` (inline up to 64 KiB, else a
content-addressed object) and ``create_checkpoint``. The state is a growing conversation (the
last ``--window`` messages of ~1 KiB each) plus a fixed context; one step in three leaves the
state as it found it, so identical states occur (stored once).

- *keep all*: no retention;
- *retention*: the workflow sets ``policies.checkpoints: {keep_last: N}``; the janitor
  (``omium checkpoints prune``) runs every ``--prune-every`` rounds and at the end, each time
  followed by the blob collector (grace 0 here: nothing else writes the bucket).

Measured after the run: objects and their bytes in the bucket, the event store table's size
(``pg_total_relation_size``: inline states live in the ``CheckpointCreated`` events, which the
hash chain covers, so retention cannot shrink it), and the time pruning and collecting took.
``ratios`` are retention / keep all, from the same run.

Run: ``.venv/bin/python -m bench.checkpoint_storage`` with the local stack up.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import boto3
import psycopg
from psycopg import sql

from bench._machine import describe_machine
from bench._report import update_doc_section, write_results
from omium.commands import CommandApplications, event_store_env
from omium.kernel.blobs import CheckpointBlobStore
from omium.kernel.settings import OmiumSettings, load_settings
from omium.worker import CheckpointJanitor

TENANT = "bench-storage"
PACKAGES = ["omium", "eventsourcing", "psycopg", "boto3", "moto"]


@dataclass
class Scenario:
    """One long run's figures."""

    name: str
    keep_last: int | None
    checkpoints: int = 0
    logical_state_bytes: int = 0
    inline_checkpoints: int = 0
    object_checkpoints: int = 0
    run_seconds: float = 0.0
    prune_seconds: float = 0.0
    gc_seconds: float = 0.0
    pruned: int = 0
    deleted_objects: int = 0
    deleted_bytes: int = 0
    objects: int = 0
    object_bytes: int = 0
    event_store_bytes: int = 0
    events: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        """Object storage plus the event store table."""
        return self.object_bytes + self.event_store_bytes


def state_of(step: int, round_: int, *, window: int, context_kib: int) -> bytes:
    """The run's state after ``step`` in ``round_``; steps ``2 mod 3`` change nothing."""
    turn = round_ * 1000 + (step - 1 if step % 3 == 2 else step)
    messages = [
        {"turn": t, "text": f"message {t}: " + "x" * 1000}
        for t in range(max(0, turn - window), turn)
    ]
    body = {"context": "c" * (context_kib * 1024), "messages": messages}
    return json.dumps(body, separators=(",", ":")).encode()


def run_scenario(
    scenario: Scenario, settings: OmiumSettings, args: argparse.Namespace, s3: Any
) -> Scenario:
    """One long run in a schema and bucket of its own (dropped afterwards)."""
    schema = f"bench_ckpt_{uuid.uuid4().hex[:8]}"
    bucket = f"bench-ckpt-{uuid.uuid4().hex[:8]}"
    aws = settings.aws.model_copy(update={"checkpoint_bucket": bucket})
    blobs = CheckpointBlobStore.from_settings(aws, key_prefix="bench/")
    env = event_store_env(settings, schema=schema, pool_size=1, max_overflow=2)
    try:
        with CommandApplications.create(env) as apps:
            definition: dict[str, Any] = {
                "steps": [{"id": f"s{n}", "agent": "agents.bench:run"} for n in range(args.steps)]
            }
            if scenario.keep_last is not None:
                definition["policies"] = {"checkpoints": {"keep_last": scenario.keep_last}}
            wid = apps.workflows.register_workflow(
                TENANT, name=f"long-{scenario.name}", definition=definition
            ).aggregate_id
            ex = apps.executions
            run = ex.start_execution(TENANT, workflow_id=wid, workflow_version=1).aggregate_id
            for n in range(args.steps):
                ex.schedule_step(TENANT, run, step_id=f"s{n}")
            janitor = CheckpointJanitor(apps, blobs)
            started = time.perf_counter()
            for round_ in range(args.rounds):
                for n in range(args.steps):
                    state = state_of(n, round_, window=args.window, context_kib=args.context_kib)
                    ref = blobs.put_state(state)
                    ex.create_checkpoint(
                        TENANT,
                        run,
                        step_id=f"s{n}",
                        position="after",
                        **ref.command_fields(),
                    )
                    scenario.checkpoints += 1
                    scenario.logical_state_bytes += len(state)
                    if ref.storage == "inline":
                        scenario.inline_checkpoints += 1
                    else:
                        scenario.object_checkpoints += 1
                last = round_ == args.rounds - 1
                if scenario.keep_last is not None and (
                    (round_ + 1) % args.prune_every == 0 or last
                ):
                    t0 = time.perf_counter()
                    scenario.pruned += janitor.prune().checkpoints_pruned
                    t1 = time.perf_counter()
                    report = janitor.collect(grace=timedelta(0))
                    scenario.gc_seconds += time.perf_counter() - t1
                    scenario.prune_seconds += t1 - t0
                    scenario.deleted_objects += len(report.deleted)
                    scenario.deleted_bytes += report.deleted_bytes
            scenario.run_seconds = time.perf_counter() - started
            listing = blobs.list_blobs()
            scenario.objects = len(listing)
            scenario.object_bytes = sum(b.size for b in listing)
            with psycopg.connect(settings.postgres.dsn()) as conn:
                table = sql.Identifier(schema, "executions_events")
                size = sql.SQL("SELECT pg_total_relation_size({})").format(
                    sql.Literal(f"{schema}.executions_events")
                )
                scenario.event_store_bytes = int(_scalar(conn, size))
                count = sql.SQL("SELECT count(*) FROM {}").format(table)
                scenario.events = int(_scalar(conn, count))
            view = ex.get_execution(TENANT, run)
            scenario.extra["available_checkpoints"] = sum(
                1 for c in view.checkpoints if c.state == "available"
            )
    finally:
        with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        listing = s3.list_objects_v2(Bucket=bucket) if _exists(s3, bucket) else {}
        for item in listing.get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=item["Key"])
        if listing:
            s3.delete_bucket(Bucket=bucket)
    return scenario


def _scalar(conn: psycopg.Connection[Any], query: sql.Composed) -> Any:
    row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def _exists(s3: Any, bucket: str) -> bool:
    return any(b["Name"] == bucket for b in s3.list_buckets()["Buckets"])


def main() -> None:
    """Run both scenarios and write bench/results/checkpoint_storage.json."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=150)
    parser.add_argument("--keep-last", type=int, default=3)
    parser.add_argument("--prune-every", type=int, default=25)
    parser.add_argument("--window", type=int, default=40, help="messages kept in the state")
    parser.add_argument("--context-kib", type=int, default=40)
    args = parser.parse_args()

    settings = load_settings()
    aws = settings.aws
    s3 = boto3.client(
        "s3",
        endpoint_url=aws.endpoint_url,
        region_name=aws.region,
        aws_access_key_id=aws.access_key_id.get_secret_value(),
        aws_secret_access_key=aws.secret_access_key.get_secret_value(),
    )
    load_before = [round(x, 2) for x in os.getloadavg()]
    keep_all = run_scenario(Scenario("keep_all", None), settings, args, s3)
    print(f"keep all: {keep_all.objects} objects, {keep_all.object_bytes:,} bytes")
    retained = run_scenario(Scenario("retention", args.keep_last), settings, args, s3)
    print(f"retention: {retained.objects} objects, {retained.object_bytes:,} bytes")
    machine = {
        **describe_machine(PACKAGES),
        "load_average_before": load_before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }

    def figures(s: Scenario) -> dict[str, Any]:
        return {
            "keep_last": s.keep_last,
            "checkpoints": s.checkpoints,
            "inline_checkpoints": s.inline_checkpoints,
            "object_checkpoints": s.object_checkpoints,
            "available_checkpoints": s.extra["available_checkpoints"],
            "logical_state_bytes": s.logical_state_bytes,
            "objects": s.objects,
            "object_bytes": s.object_bytes,
            "event_store_bytes": s.event_store_bytes,
            "events": s.events,
            "total_bytes": s.total_bytes,
            "pruned": s.pruned,
            "deleted_objects": s.deleted_objects,
            "deleted_bytes": s.deleted_bytes,
            "run_seconds": round(s.run_seconds, 2),
            "prune_seconds": round(s.prune_seconds, 3),
            "gc_seconds": round(s.gc_seconds, 3),
        }

    results = {
        "benchmark": "checkpoint_storage",
        "machine": machine,
        "parameters": vars(args),
        "keep_all": figures(keep_all),
        "retention": figures(retained),
        "ratios": {
            "object_bytes": round(retained.object_bytes / keep_all.object_bytes, 4),
            "objects": round(retained.objects / keep_all.objects, 4),
            "event_store_bytes": round(retained.event_store_bytes / keep_all.event_store_bytes, 4),
            "total_bytes": round(retained.total_bytes / keep_all.total_bytes, 4),
            "dedup_objects_per_object_checkpoint": round(
                keep_all.objects / keep_all.object_checkpoints, 4
            ),
        },
    }
    path = write_results("checkpoint_storage", results)
    print(json.dumps(results["ratios"], indent=2))
    print(f"wrote {path}")
    _update_doc(results)


def _update_doc(results: dict[str, Any]) -> None:
    m, a, r, q = results["machine"], results["keep_all"], results["retention"], results["ratios"]
    p = results["parameters"]
    rows = [
        ("checkpoints recorded", a["checkpoints"], r["checkpoints"]),
        ("checkpoints with state", a["available_checkpoints"], r["available_checkpoints"]),
        ("objects in the bucket", a["objects"], r["objects"]),
        ("object bytes", f"{a['object_bytes']:,}", f"{r['object_bytes']:,}"),
        ("event store bytes", f"{a['event_store_bytes']:,}", f"{r['event_store_bytes']:,}"),
        ("total bytes", f"{a['total_bytes']:,}", f"{r['total_bytes']:,}"),
        ("prune + collect time (s)", "-", f"{r['prune_seconds']} + {r['gc_seconds']}"),
    ]
    table = "\n".join(f"| {name} | {x} | {y} |" for name, x, y in rows)
    update_doc_section(
        "checkpoint_storage",
        f"""### Checkpoint storage with and without retention

`python -m bench.checkpoint_storage` ({m["date"]}, {m["cpu"]}, {m["cores"]} cores, load average
{m["load_average_before"]} before, {m["load_average_after"]} after): one run of {p["steps"]}
steps looping {p["rounds"]} times, a checkpoint after each step (states of
~{p["context_kib"] + p["window"]} KiB, one step in three leaving the state unchanged), keep all vs
`policies.checkpoints: {{keep_last: {p["keep_last"]}}}` with `omium checkpoints prune` every
{p["prune_every"]} rounds.

| | keep all | retention |
|---|---|---|
{table}

Ratios (retention / keep all): object bytes {q["object_bytes"]}, total {q["total_bytes"]},
event store {q["event_store_bytes"]} (inline states and the chain stay; the pruning events add a
little). Identical states: {q["dedup_objects_per_object_checkpoint"]} objects per object-stored
checkpoint without retention.""",
    )


if __name__ == "__main__":
    main()
