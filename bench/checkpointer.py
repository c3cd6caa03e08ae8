"""LangGraph checkpointers side by side: ``AsyncOmiumSaver`` (two modes) vs ``AsyncPostgresSaver``.

All run in one process, in one run, against the same PostgreSQL server: LangGraph's
``AsyncPostgresSaver`` talks to it directly (its own schema). ``AsyncOmiumSaver`` runs in two
modes: *gateway* goes through a uvicorn gateway (its own process, one worker, as
``omium gateway``) that authenticates the JWT, takes a Redis rate-limit token (raised out of the
way), records each ``put`` as a ``CheckpointCreated`` event with its read row and writes the
audit entry; *embedded* (``AsyncOmiumSaver.from_conn_string``) records the event, its
idempotency key and the read row in one PostgreSQL transaction from the saver's own process.
In both, the outbox relay later ships the event to Kafka; nothing on the call path waits for it.

Measured one call at a time (latency, not throughput), each phase for both savers before the
next phase: ``aput`` (threads of ``--checkpoints`` chained checkpoints, ~1 KB of state),
``aput_writes`` (two writes of one task after each put), ``aget_tuple`` (a thread's latest),
``alist`` (a thread's 10 newest), then a 5-node graph (``invoke`` on a new thread: 7
checkpoints and 5 tasks' writes), mean per run; last, ``--long-thread`` puts on one thread,
comparing the first and the last 50 (does a put's cost grow with the thread's length?); then
puts of a ~60 KiB state (inline in the event, under the 64 KiB object-storage threshold); then
8 threads putting concurrently (throughput and latency under contention for the pool).

Each results file carries ``ratios``: the figures issue 10 names, all from this one run.

Run: ``.venv/bin/python -m bench.checkpointer`` with the local stack up.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any, TypedDict

import httpx
import psycopg
from fastapi import FastAPI
from langgraph.checkpoint.base import BaseCheckpointSaver, Checkpoint
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.graph import END, START, StateGraph
from psycopg import sql
from rich.console import Console

from bench._machine import describe_machine
from bench._report import ROOT, percentile, update_doc_section, write_results
from omium.gateway import create_app, mint_token
from omium.integrations.langgraph import AsyncOmiumSaver
from omium.kernel.kafka import ensure_topics
from omium.kernel.settings import OmiumSettings, load_settings
from omium.sdk.client import AsyncClient

SCHEMA_ENV = "OMIUM_BENCH_EVENT_STORE_SCHEMA"
LARGE_STATE_BYTES = 60 * 1024
TOPIC_PREFIX = "bench-checkpointer"
TENANT = "bench-lg"
# Far above what the machine can do: the limiter still runs, it just never refuses.
UNMETERED = {"capacity": 10_000_000, "refill_per_s": 10_000_000}
console = Console()
Timed = Callable[[], Awaitable[Any]]


def bench_app() -> FastAPI:
    """The gateway process's app (``uvicorn bench.checkpointer:bench_app --factory``)."""
    return create_app(load_settings(), event_store_schema=os.environ[SCHEMA_ENV])


# --- the gateway process and the baseline's schema -------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def gateway_process(settings: OmiumSettings, schema: str) -> Iterator[str]:
    """A uvicorn gateway on a free port on its own event-store schema; its base URL."""
    ensure_topics(settings.kafka.model_copy(update={"topic_prefix": TOPIC_PREFIX}))
    port = _free_port()
    tiers = {"bench": {"tenant": UNMETERED, "api_key": UNMETERED}}
    env = {
        **os.environ,
        SCHEMA_ENV: schema,
        "OMIUM_KAFKA__TOPIC_PREFIX": TOPIC_PREFIX,
        "OMIUM_GATEWAY__RATE_LIMIT__TIERS": json.dumps(tiers),
        "OMIUM_GATEWAY__RATE_LIMIT__DEFAULT_TIER": "bench",
        "OMIUM_LOG_LEVEL": "WARNING",
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.checkpointer:bench_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    child = subprocess.Popen(command, cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, child)
        yield url
    finally:
        child.terminate()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _wait_ready(url: str, child: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"the gateway exited with status {child.returncode}")
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the gateway at {url} was not ready after {timeout_s} s")


@contextmanager
def schemas(settings: OmiumSettings, *names: str) -> Iterator[None]:
    """Fresh PostgreSQL schemas, dropped afterwards."""
    with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    try:
        yield
    finally:
        with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
            for name in names:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name))
                )


# --- the workload ----------------------------------------------------------------------------


def _checkpoint(index: int, state_bytes: int = 0) -> Checkpoint:
    """A checkpoint with ~1 KB of channel values (a small chat state), or ~``state_bytes``."""
    messages = [
        {"role": "user" if i % 2 else "assistant", "content": f"message {i} " * 8} for i in range(6)
    ]
    if state_bytes:
        chunk = "lorem ipsum dolor sit amet " * 40  # ~1 KiB of text per message
        messages = [{"role": "tool", "content": chunk} for _ in range(state_bytes // len(chunk))]
    return {
        "v": 4,
        "id": str(uuid.uuid1()),
        "ts": "2026-01-01T00:00:00+00:00",
        "channel_values": {"messages": messages, "step": index},
        "channel_versions": {"messages": index + 1, "step": index + 1},
        "versions_seen": {"agent": {"messages": index}},
        "updated_channels": None,
    }


async def _timed(samples: list[float], call: Timed) -> Any:
    started = time.perf_counter()
    result = await call()
    samples.append((time.perf_counter() - started) * 1000)
    return result


async def put_phase(
    saver: BaseCheckpointSaver[Any], threads: int, per_thread: int
) -> tuple[dict[str, list[float]], list[str]]:
    """Chained puts, each followed by one task's two writes; the thread ids."""
    puts: list[float] = []
    writes: list[float] = []
    ids = [f"bench-{uuid.uuid4().hex[:10]}" for _ in range(threads)]
    for thread_id in ids:
        config: Any = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        for index in range(per_thread):
            checkpoint = _checkpoint(index)
            metadata: Any = {"source": "loop", "step": index, "parents": {}}
            config = await _timed(
                puts,
                partial(saver.aput, config, checkpoint, metadata, checkpoint["channel_versions"]),
            )
            task = str(uuid.uuid4())
            await _timed(
                writes,
                partial(
                    saver.aput_writes,
                    config,
                    [("messages", {"role": "assistant", "content": "ok"}), ("step", 1)],
                    task,
                ),
            )
    return {"aput": puts, "aput_writes": writes}, ids


async def long_thread_phase(saver: BaseCheckpointSaver[Any], puts: int) -> dict[str, Any]:
    """Puts on one thread: the first and the last 50 (a put's cost as the thread grows)."""
    samples: list[float] = []
    config: Any = {
        "configurable": {"thread_id": f"long-{uuid.uuid4().hex[:10]}", "checkpoint_ns": ""}
    }
    for index in range(puts):
        checkpoint = _checkpoint(index)
        metadata: Any = {"source": "loop", "step": index, "parents": {}}
        config = await _timed(
            samples,
            partial(saver.aput, config, checkpoint, metadata, checkpoint["channel_versions"]),
        )
    window = min(50, puts)
    return {
        "puts": puts,
        "first_p50_ms": round(percentile(samples[:window], 0.5), 2),
        "last_p50_ms": round(percentile(samples[-window:], 0.5), 2),
    }


async def large_state_phase(saver: BaseCheckpointSaver[Any], puts: int) -> list[float]:
    """Chained puts of a ~60 KiB state on one thread; ms per put."""
    samples: list[float] = []
    config: Any = {
        "configurable": {"thread_id": f"large-{uuid.uuid4().hex[:10]}", "checkpoint_ns": ""}
    }
    for index in range(puts):
        checkpoint = _checkpoint(index, LARGE_STATE_BYTES)
        metadata: Any = {"source": "loop", "step": index, "parents": {}}
        config = await _timed(
            samples,
            partial(saver.aput, config, checkpoint, metadata, checkpoint["channel_versions"]),
        )
    return samples


async def concurrent_phase(
    saver: BaseCheckpointSaver[Any], threads: int, per_thread: int
) -> dict[str, Any]:
    """``threads`` threads putting at once, each its own chain; latency and puts/s."""
    samples: list[float] = []

    async def one_thread() -> None:
        config: Any = {
            "configurable": {"thread_id": f"conc-{uuid.uuid4().hex[:10]}", "checkpoint_ns": ""}
        }
        for index in range(per_thread):
            checkpoint = _checkpoint(index)
            metadata: Any = {"source": "loop", "step": index, "parents": {}}
            config = await _timed(
                samples,
                partial(saver.aput, config, checkpoint, metadata, checkpoint["channel_versions"]),
            )

    started = time.perf_counter()
    await asyncio.gather(*(one_thread() for _ in range(threads)))
    elapsed = time.perf_counter() - started
    return {**stats(samples), "threads": threads, "puts_per_s": round(len(samples) / elapsed, 1)}


async def read_phase(
    saver: BaseCheckpointSaver[Any], thread_ids: list[str], reads: int
) -> dict[str, list[float]]:
    """Latest-checkpoint reads and 10-newest lists of random threads."""
    gets: list[float] = []
    lists: list[float] = []
    pick = random.Random(7)
    for _ in range(reads):
        config: Any = {"configurable": {"thread_id": pick.choice(thread_ids), "checkpoint_ns": ""}}
        found = await _timed(gets, partial(saver.aget_tuple, config))
        assert found is not None

        async def ten(c: Any = config) -> int:
            return len([t async for t in saver.alist(c, limit=10)])

        assert await _timed(lists, ten) > 0
    return {"aget_tuple": gets, "alist": lists}


class Flow(TypedDict):
    count: int


def five_nodes() -> StateGraph[Flow]:
    """Five trivial nodes in a row."""
    graph = StateGraph(Flow)
    names = [f"n{i}" for i in range(5)]
    for name in names:
        graph.add_node(name, lambda state: {"count": state["count"] + 1})
    graph.add_edge(START, names[0])
    for a, b in itertools.pairwise(names):
        graph.add_edge(a, b)
    graph.add_edge(names[-1], END)
    return graph


async def graph_phase(saver: BaseCheckpointSaver[Any], runs: int) -> list[float]:
    """``ainvoke`` of the 5-node graph on new threads; ms per run."""
    graph = five_nodes().compile(checkpointer=saver)
    samples: list[float] = []
    for _ in range(runs):
        config: Any = {"configurable": {"thread_id": f"graph-{uuid.uuid4().hex[:10]}"}}
        result = await _timed(samples, partial(graph.ainvoke, {"count": 0}, config))
        assert result["count"] == 5
    return samples


# --- running it ------------------------------------------------------------------------------


def stats(samples: list[float]) -> dict[str, float]:
    """Count, p50, p99 and mean of a list of ms."""
    return {
        "n": len(samples),
        "p50_ms": round(percentile(samples, 0.5), 2),
        "p99_ms": round(percentile(samples, 0.99), 2),
        "mean_ms": round(sum(samples) / max(1, len(samples)), 2),
    }


async def measure(
    savers: dict[str, BaseCheckpointSaver[Any]], args: argparse.Namespace
) -> dict[str, dict[str, Any]]:
    """Every phase for every saver (phase by phase, so both see the same machine state)."""
    results: dict[str, dict[str, Any]] = {name: {} for name in savers}
    threads: dict[str, list[str]] = {}
    for name, saver in savers.items():
        await graph_phase(saver, 2)  # warm-up: connections, prepared statements, imports
        timings, threads[name] = await put_phase(saver, args.threads, args.checkpoints)
        results[name].update({op: stats(s) for op, s in timings.items()})
    for name, saver in savers.items():
        timings = await read_phase(saver, threads[name], args.reads)
        results[name].update({op: stats(s) for op, s in timings.items()})
    for name, saver in savers.items():
        results[name]["graph_run"] = stats(await graph_phase(saver, args.graph_runs))
    for name, saver in savers.items():
        results[name]["long_thread"] = await long_thread_phase(saver, args.long_thread)
    for name, saver in savers.items():
        results[name]["aput_60kib"] = stats(await large_state_phase(saver, args.large_puts))
    for name, saver in savers.items():
        results[name]["concurrent_aput"] = await concurrent_phase(
            saver, args.concurrent, args.checkpoints
        )
    return results


async def run_async(
    url: str,
    settings: OmiumSettings,
    baseline_schema: str,
    embedded_schema: str,
    args: argparse.Namespace,
) -> dict[str, dict[str, Any]]:
    """Open the three savers and measure them."""
    token = mint_token(settings, subject="bench", tenant_id=TENANT, roles=["developer"])
    conninfo = psycopg.conninfo.make_conninfo(
        settings.postgres.dsn(), options=f"-c search_path={baseline_schema}"
    )
    async with (
        AsyncPostgresSaver.from_conn_string(conninfo) as postgres,
        AsyncClient(url, token=token) as client,
        AsyncOmiumSaver.from_conn_string(
            settings.postgres.dsn(),
            tenant=TENANT,
            settings=settings,
            event_store_schema=embedded_schema,
        ) as embedded,
    ):
        await postgres.setup()
        omium = AsyncOmiumSaver(client)
        try:
            return await measure(
                {
                    "AsyncPostgresSaver": postgres,
                    "AsyncOmiumSaver (embedded)": embedded,
                    "AsyncOmiumSaver (gateway)": omium,
                },
                args,
            )
        finally:
            await omium.aclose()


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the gateway, measure both savers, return the results document."""
    settings = load_settings()
    suffix = uuid.uuid4().hex[:8]
    event_store, baseline = f"bench_lg_omium_{suffix}", f"bench_lg_postgres_{suffix}"
    embedded = f"bench_lg_embedded_{suffix}"
    load_before = os.getloadavg()
    with schemas(settings, baseline), gateway_process(settings, event_store) as url:
        try:
            savers = asyncio.run(run_async(url, settings, baseline, embedded, args))
        finally:
            with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
                for schema in (event_store, embedded):
                    conn.execute(
                        sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                    )
    load_after = os.getloadavg()
    return {
        "benchmark": "checkpointer",
        "machine": describe_machine(
            [
                "langgraph",
                "langgraph-checkpoint",
                "langgraph-checkpoint-postgres",
                "psycopg",
                "fastapi",
                "uvicorn",
                "eventsourcing",
                "omium",
            ]
        ),
        "workload": {
            "threads": args.threads,
            "checkpoints_per_thread": args.checkpoints,
            "reads": args.reads,
            "graph_runs": args.graph_runs,
            "long_thread_puts": args.long_thread,
            "large_state_puts": args.large_puts,
            "large_state_bytes": len(
                json.dumps(_checkpoint(0, LARGE_STATE_BYTES)["channel_values"])
            ),
            "concurrent_threads": args.concurrent,
            "state_bytes": len(json.dumps(_checkpoint(0)["channel_values"])),
            "graph": "5 sequential trivial nodes, a new thread per run",
        },
        # Other work on the machine skews the p99s: say how busy it was.
        "load_average": {
            "before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in load_after],
        },
        "savers": savers,
        "ratios": ratios(savers),
    }


def ratios(savers: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Issue 10's figures: Omium's p50s over ``AsyncPostgresSaver``'s, from this one run."""
    base = savers["AsyncPostgresSaver"]
    embedded, gateway = savers["AsyncOmiumSaver (embedded)"], savers["AsyncOmiumSaver (gateway)"]

    def over(saver: dict[str, Any], op: str) -> float:
        return round(float(saver[op]["p50_ms"] / base[op]["p50_ms"]), 2)

    return {
        "aput_p50_embedded_vs_postgres": over(embedded, "aput"),
        "aget_tuple_p50_embedded_vs_postgres": over(embedded, "aget_tuple"),
        "graph_run_p50_embedded_vs_postgres": over(embedded, "graph_run"),
        "aput_p50_gateway_vs_postgres": over(gateway, "aput"),
        "aput_60kib_p50_embedded_vs_postgres": over(embedded, "aput_60kib"),
        "concurrent_puts_per_s_embedded_vs_postgres": round(
            embedded["concurrent_aput"]["puts_per_s"] / base["concurrent_aput"]["puts_per_s"], 2
        ),
    }


def to_markdown(results: dict[str, Any]) -> str:
    """The docs table for one run."""
    machine, work, savers = results["machine"], results["workload"], results["savers"]
    names = list(savers)

    def cells(render: Any) -> str:
        return " | ".join(render(savers[name]) for name in names)

    def p50_p99(op: str) -> Any:
        return lambda s: f"{s[op]['p50_ms']} / {s[op]['p99_ms']} ms"

    rows = [
        f"| `{op}` p50 / p99 | {cells(p50_p99(op))} |"
        for op in ("aput", "aput_writes", "aget_tuple", "alist", "aput_60kib")
    ]
    rows.append(
        "| 5-node graph run, p50 / p99 | "
        + cells(lambda s: f"{s['graph_run']['p50_ms']} / {s['graph_run']['p99_ms']} ms")
        + " |"
    )
    rows.append(
        f"| `aput` p50, first / last 50 of {work['long_thread_puts']} on one thread | "
        + cells(
            lambda s: f"{s['long_thread']['first_p50_ms']} / {s['long_thread']['last_p50_ms']} ms"
        )
        + " |"
    )
    rows.append(
        f"| {work['concurrent_threads']} threads at once: puts/s (p50) | "
        + cells(
            lambda s: f"{s['concurrent_aput']['puts_per_s']} ({s['concurrent_aput']['p50_ms']} ms)"
        )
        + " |"
    )
    ratio_rows = [f"| `{name}` | {value} |" for name, value in results["ratios"].items()]
    packages, load = machine["packages"], results["load_average"]
    return "\n".join(
        [
            "## LangGraph checkpointer (`python -m bench.checkpointer`)",
            "",
            f"Run {machine['date']} on {machine['cores']} cores ({machine['cpu']}), "
            f"{machine['memory_gib']} GiB, Python {machine['python']}, langgraph "
            f"{packages['langgraph']}, langgraph-checkpoint-postgres "
            f"{packages['langgraph-checkpoint-postgres']}; all savers on the same PostgreSQL, "
            "one call at a time except the concurrent row. Embedded: event, key and read row in "
            "one transaction in this process. Gateway: HTTP to a one-worker uvicorn gateway "
            f"(JWT, rate limiter, the same transaction, audit). Workload: {work['threads']} "
            f"threads x {work['checkpoints_per_thread']} chained checkpoints "
            f"(~{work['state_bytes']} B of state), a 2-write `aput_writes` after each, "
            f"{work['reads']} latest reads and 10-newest lists, {work['graph_runs']} runs of a "
            f"5-node graph on new threads, {work['large_state_puts']} puts of "
            f"~{work['large_state_bytes'] // 1024} KiB. Load average before {load['before']}, "
            f"after {load['after']}.",
            "",
            "| measure | " + " | ".join(names) + " |",
            "|---" * (len(names) + 1) + "|",
            *rows,
            "",
            "| ratio (same run) | value |",
            "|---|---|",
            *ratio_rows,
        ]
    )


def main() -> None:
    """Parse flags, run, write ``bench/results/checkpointer.json`` and the docs table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=20)
    parser.add_argument("--checkpoints", type=int, default=25, help="per thread")
    parser.add_argument("--reads", type=int, default=300)
    parser.add_argument("--graph-runs", type=int, default=40)
    parser.add_argument("--long-thread", type=int, default=400, help="puts on one thread")
    parser.add_argument("--large-puts", type=int, default=100, help="puts of a ~60 KiB state")
    parser.add_argument("--concurrent", type=int, default=8, help="threads putting at once")
    args = parser.parse_args()
    results = run(args)
    path = write_results("checkpointer", results)
    update_doc_section("checkpointer", to_markdown(results))
    console.print(to_markdown(results))
    console.print(f"[green]wrote[/] {path}")


if __name__ == "__main__":
    main()
