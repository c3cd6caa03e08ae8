"""Where an embedded checkpoint ``put`` spends its time, layer by layer, on one PostgreSQL.

Each row times one layer alone, one call at a time, in one process, in one run:

- ``autocommit_insert``: the floor, one durable one-row INSERT (psycopg, autocommit);
- ``pipelined_transaction``: BEGIN, INSERT ... RETURNING, COMMIT sent with one sync;
- ``insert_events``: Omium's event-store write of one stored event (key, lock-free insert,
  NOTIFY, one round trip), through the ``eventsourcing`` recorder;
- ``create_checkpoint``: the whole command on a cached run (fingerprint, decide, map, save);
- ``saver_put``: ``OmiumSaver.put`` in embedded mode (LangGraph serde, the routes' JSON shape,
  the thread's remembered binding, the command and the read row in its transaction).

Run: ``.venv/bin/python -m bench.write_path`` with the local stack up. Writes
``bench/results/write_path.json`` (with ``ratios`` over the floor) and its docs section.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from eventsourcing.persistence import StoredEvent
from langgraph.checkpoint.base import Checkpoint
from psycopg import sql

from bench._machine import describe_machine
from bench._report import percentile, update_doc_section, write_results
from omium.integrations.langgraph import OmiumSaver
from omium.kernel.settings import load_settings


def timed(call: Callable[[], object], calls: int) -> dict[str, float]:
    """p50 and mean in ms of ``calls`` calls, after 20 warm-up calls."""
    for _ in range(20):
        call()
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return {
        "p50_ms": round(percentile(samples, 0.5), 3),
        "mean_ms": round(sum(samples) / len(samples), 3),
    }


def checkpoint(index: int) -> Checkpoint:
    """A LangGraph checkpoint with ~1 KB of state (as bench.checkpointer)."""
    messages = [{"role": "user", "content": f"message {k} " * 8} for k in range(6)]
    return {
        "v": 4,
        "id": str(uuid.uuid1()),
        "ts": "2026-01-01T00:00:00+00:00",
        "channel_values": {"messages": messages, "step": index},
        "channel_versions": {"step": index + 1},
        "versions_seen": {},
        "updated_channels": None,
    }


def measure(calls: int) -> dict[str, dict[str, float]]:
    """Every layer, in one run, on a fresh schema (dropped afterwards)."""
    settings = load_settings()
    schema = f"bench_write_{uuid.uuid4().hex[:8]}"
    results: dict[str, dict[str, float]] = {}
    raw = psycopg.connect(settings.postgres.dsn(), autocommit=True)
    try:
        raw.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        table = sql.Identifier(schema, "floor")
        raw.execute(sql.SQL("CREATE TABLE {} (id bigserial PRIMARY KEY, v text)").format(table))
        insert = sql.SQL("INSERT INTO {} (v) VALUES (%s) RETURNING id").format(table)
        results["autocommit_insert"] = timed(lambda: raw.execute(insert, ("a" * 700,)), calls)

        def pipelined() -> None:
            with raw.pipeline() as pipeline:
                begin, rows = raw.cursor(), raw.cursor()
                begin.execute("BEGIN")
                rows.execute(insert, ("a" * 700,))
                begin.execute("COMMIT")
                pipeline.sync()
                rows.fetchone()

        results["pipelined_transaction"] = timed(pipelined, calls)
        with OmiumSaver.from_conn_string(
            settings.postgres.dsn(), tenant="bench", event_store_schema=schema
        ) as saver:
            config: Any = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
            state = {"index": 0}

            def put() -> None:
                nonlocal config
                state["index"] += 1
                cp = checkpoint(state["index"])
                config = saver.put(config, cp, {"step": state["index"]}, cp["channel_versions"])

            results["saver_put"] = timed(put, calls)
            transport: Any = saver.client
            apps = transport.apps
            binding = transport.threads.store.binding("bench", "t")
            execution = binding.execution_id
            data = b"x" * 700

            def command() -> None:
                apps.executions.create_checkpoint(
                    "bench",
                    execution,
                    step_id="graph",
                    position="after",
                    checkpoint_id=uuid.uuid4().hex,
                    checksum=hashlib.sha256(data).hexdigest(),
                    size=len(data),
                    storage="inline",
                    inline_state=data,
                    object_key=None,
                    idempotency_key=uuid.uuid4().hex,
                )

            results["create_checkpoint"] = timed(command, calls)
            recorder = apps.executions.recorder

            def insert_events() -> None:
                event = StoredEvent(uuid.uuid4(), 1, "bench:Event", b"{}" * 350)
                recorder.insert_events([event])

            results["insert_events"] = timed(insert_events, calls)
    finally:
        raw.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        raw.close()
    return results


def to_markdown(results: dict[str, Any]) -> str:
    """The docs table for one run."""
    layers, machine, load = results["layers"], results["machine"], results["load_average"]
    rows = [f"| `{name}` | {v['p50_ms']} ms | {v['mean_ms']} ms |" for name, v in layers.items()]
    ratios = [f"| `{name}` | {value} |" for name, value in results["ratios"].items()]
    return "\n".join(
        [
            "## Write path, layer by layer (`python -m bench.write_path`)",
            "",
            f"Run {machine['date']} on {machine['cores']} cores ({machine['cpu']}), Python "
            f"{machine['python']}; {results['calls']} calls per layer, one at a time. Load "
            f"average before {load['before']}, after {load['after']}.",
            "",
            "| layer | p50 | mean |",
            "|---|---|---|",
            *rows,
            "",
            "| ratio over the durable floor (same run) | value |",
            "|---|---|",
            *ratios,
        ]
    )


def main() -> None:
    """Measure, write ``bench/results/write_path.json`` and the docs section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    before = os.getloadavg()
    layers = measure(args.calls)
    floor = layers["autocommit_insert"]["p50_ms"]
    results = {
        "benchmark": "write_path",
        "machine": describe_machine(["psycopg", "eventsourcing", "langgraph", "omium"]),
        "calls": args.calls,
        "load_average": {
            "before": [round(x, 2) for x in before],
            "after": [round(x, 2) for x in os.getloadavg()],
        },
        "layers": layers,
        "ratios": {
            f"{name}_p50_vs_autocommit_insert": round(v["p50_ms"] / floor, 2)
            for name, v in layers.items()
            if name != "autocommit_insert"
        },
    }
    path = write_results("write_path", results)
    update_doc_section("write_path", to_markdown(results))
    print(to_markdown(results))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
