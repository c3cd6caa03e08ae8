"""LangGraph checkpointers side by side: ``AsyncOmiumSaver`` vs ``AsyncPostgresSaver``.

Both run in one process, in one run, against the same PostgreSQL server: LangGraph's
``AsyncPostgresSaver`` talks to it directly (its own schema); ``AsyncOmiumSaver`` goes through
a uvicorn gateway (its own process, one worker, as ``omium gateway``) that authenticates the
JWT, takes a Redis rate-limit token (raised out of the way), records each ``put`` as a
``CheckpointCreated`` event in the event store, writes the read tables, and waits for Kafka to
acknowledge the audit entry before answering. So the comparison is "a checkpoint in Omium's
audited history" against "a row in a table".

Measured one call at a time (latency, not throughput), each phase for both savers before the
next phase: ``aput`` (threads of ``--checkpoints`` chained checkpoints, ~1 KB of state),
``aput_writes`` (two writes of one task after each put), ``aget_tuple`` (a thread's latest),
``alist`` (a thread's 10 newest), then a 5-node graph (``invoke`` on a new thread: 7
checkpoints and 5 tasks' writes), mean per run; last, ``--long-thread`` puts on one thread,
comparing the first and the last 50 (an execution is rebuilt from its events on every command,
so a put's cost grows with the thread's length).

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
from typing import Any, TypedDict

import httpx
import psycopg
from fastapi import FastAPI
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.graph import END, START, StateGraph
from psycopg import sql
from rich.console import Console

from bench._machine import describe_machine
from bench._report import ROOT, percentile, update_doc_section, write_results
from gateway import create_app, mint_token
from omium.integrations.langgraph import AsyncOmiumSaver
from omium.kernel.kafka import ensure_topics
from omium.kernel.settings import OmiumSettings, load_settings
from omium.sdk.client import AsyncClient

SCHEMA_ENV = "OMIUM_BENCH_EVENT_STORE_SCHEMA"
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
    env = {**os.environ, SCHEMA_ENV: schema, "OMIUM_KAFKA__TOPIC_PREFIX": TOPIC_PREFIX,
           "OMIUM_GATEWAY__RATE_LIMIT__TIERS": json.dumps(tiers),
           "OMIUM_GATEWAY__RATE_LIMIT__DEFAULT_TIER": "bench", "OMIUM_LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-m", "uvicorn", "bench.checkpointer:bench_app", "--factory",
               "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
               "--no-access-log"]
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
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE")
                             .format(sql.Identifier(name)))


# --- the workload ----------------------------------------------------------------------------


def _checkpoint(index: int) -> dict[str, Any]:
    """A checkpoint with ~1 KB of channel values, like a small chat state."""
    messages = [{"role": "user" if i % 2 else "assistant", "content": f"message {i} " * 8}
                for i in range(6)]
    return {"v": 4, "id": str(uuid.uuid1()), "ts": "2026-01-01T00:00:00+00:00",
            "channel_values": {"messages": messages, "step": index},
            "channel_versions": {"messages": index + 1, "step": index + 1},
            "versions_seen": {"agent": {"messages": index}}, "updated_channels": None}


async def _timed(samples: list[float], call: Timed) -> Any:
    started = time.perf_counter()
    result = await call()
    samples.append((time.perf_counter() - started) * 1000)
    return result


async def put_phase(saver: BaseCheckpointSaver[Any], threads: int, per_thread: int
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
            config = await _timed(puts, lambda c=config, cp=checkpoint, m=metadata:
                                  saver.aput(c, cp, m, cp["channel_versions"]))
            task = str(uuid.uuid4())
            await _timed(writes, lambda c=config, t=task: saver.aput_writes(
                c, [("messages", {"role": "assistant", "content": "ok"}), ("step", 1)], t))
    return {"aput": puts, "aput_writes": writes}, ids


async def long_thread_phase(saver: BaseCheckpointSaver[Any], puts: int) -> dict[str, Any]:
    """Puts on one thread: the first and the last 50 (a put's cost as the thread grows)."""
    samples: list[float] = []
    config: Any = {"configurable": {"thread_id": f"long-{uuid.uuid4().hex[:10]}",
                                    "checkpoint_ns": ""}}
    for index in range(puts):
        checkpoint = _checkpoint(index)
        metadata: Any = {"source": "loop", "step": index, "parents": {}}
        config = await _timed(samples, lambda c=config, cp=checkpoint, m=metadata:
                              saver.aput(c, cp, m, cp["channel_versions"]))
    window = min(50, puts)
    return {"puts": puts, "first_p50_ms": round(percentile(samples[:window], 0.5), 2),
            "last_p50_ms": round(percentile(samples[-window:], 0.5), 2)}


async def read_phase(saver: BaseCheckpointSaver[Any], thread_ids: list[str], reads: int
                     ) -> dict[str, list[float]]:
    """Latest-checkpoint reads and 10-newest lists of random threads."""
    gets: list[float] = []
    lists: list[float] = []
    pick = random.Random(7)
    for _ in range(reads):
        config: Any = {"configurable": {"thread_id": pick.choice(thread_ids),
                                        "checkpoint_ns": ""}}
        found = await _timed(gets, lambda c=config: saver.aget_tuple(c))
        assert found is not None

        async def ten(c: Any = config) -> int:
            return len([t async for t in saver.alist(c, limit=10)])

        assert await _timed(lists, ten) > 0
    return {"aget_tuple": gets, "alist": lists}


class Flow(TypedDict):
    count: int


def five_nodes() -> StateGraph:
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
        result = await _timed(samples, lambda c=config: graph.ainvoke({"count": 0}, c))
        assert result["count"] == 5
    return samples


# --- running it ------------------------------------------------------------------------------


def stats(samples: list[float]) -> dict[str, float]:
    """Count, p50, p99 and mean of a list of ms."""
    return {"n": len(samples), "p50_ms": round(percentile(samples, 0.5), 2),
            "p99_ms": round(percentile(samples, 0.99), 2),
            "mean_ms": round(sum(samples) / max(1, len(samples)), 2)}


async def measure(savers: dict[str, BaseCheckpointSaver[Any]], args: argparse.Namespace
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
    return results


async def run_async(url: str, settings: OmiumSettings, baseline_schema: str,
                    args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Open both savers and measure them."""
    token = mint_token(settings, subject="bench", tenant_id=TENANT, roles=["developer"])
    conninfo = psycopg.conninfo.make_conninfo(settings.postgres.dsn(),
                                              options=f"-c search_path={baseline_schema}")
    async with AsyncPostgresSaver.from_conn_string(conninfo) as postgres, \
            AsyncClient(url, token=token) as client:
        await postgres.setup()
        omium = AsyncOmiumSaver(client)
        try:
            return await measure({"AsyncPostgresSaver": postgres, "AsyncOmiumSaver": omium},
                                 args)
        finally:
            await omium.aclose()


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the gateway, measure both savers, return the results document."""
    settings = load_settings()
    suffix = uuid.uuid4().hex[:8]
    event_store, baseline = f"bench_lg_omium_{suffix}", f"bench_lg_postgres_{suffix}"
    load_before = os.getloadavg()[0]
    with schemas(settings, baseline), gateway_process(settings, event_store) as url:
        try:
            savers = asyncio.run(run_async(url, settings, baseline, args))
        finally:
            with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE")
                             .format(sql.Identifier(event_store)))
    return {
        "benchmark": "checkpointer",
        "machine": describe_machine(["langgraph", "langgraph-checkpoint",
                                     "langgraph-checkpoint-postgres", "psycopg", "fastapi",
                                     "uvicorn", "eventsourcing", "omium"]),
        "workload": {"threads": args.threads, "checkpoints_per_thread": args.checkpoints,
                     "reads": args.reads, "graph_runs": args.graph_runs,
                     "long_thread_puts": args.long_thread,
                     "state_bytes": len(json.dumps(_checkpoint(0)["channel_values"])),
                     "graph": "5 sequential trivial nodes, a new thread per run"},
        # Other work on the machine skews the p99s: say how busy it was.
        "load_average_1m": {"before": round(load_before, 2),
                            "after": round(os.getloadavg()[0], 2)},
        "savers": savers,
    }


def to_markdown(results: dict[str, Any]) -> str:
    """The docs table for one run."""
    machine, work, savers = results["machine"], results["workload"], results["savers"]
    base, omium = savers["AsyncPostgresSaver"], savers["AsyncOmiumSaver"]
    rows = []
    for op in ("aput", "aput_writes", "aget_tuple", "alist"):
        rows.append(f"| `{op}` p50 / p99 | {base[op]['p50_ms']} / {base[op]['p99_ms']} ms | "
                    f"{omium[op]['p50_ms']} / {omium[op]['p99_ms']} ms |")
    g_base, g_omium = base["graph_run"], omium["graph_run"]
    rows.append(f"| 5-node graph run, mean (p50 / p99) | {g_base['mean_ms']} ms "
                f"({g_base['p50_ms']} / {g_base['p99_ms']}) | {g_omium['mean_ms']} ms "
                f"({g_omium['p50_ms']} / {g_omium['p99_ms']}) |")
    l_base, l_omium = base["long_thread"], omium["long_thread"]
    rows.append(f"| `aput` p50, first / last 50 of {l_base['puts']} on one thread | "
                f"{l_base['first_p50_ms']} / {l_base['last_p50_ms']} ms | "
                f"{l_omium['first_p50_ms']} / {l_omium['last_p50_ms']} ms |")
    packages = machine["packages"]
    return "\n".join([
        "## LangGraph checkpointer (`python -m bench.checkpointer`)",
        "",
        f"Run {machine['date']} on {machine['cores']} cores ({machine['cpu']}), "
        f"{machine['memory_gib']} GiB, Python {machine['python']}, langgraph "
        f"{packages['langgraph']}, langgraph-checkpoint-postgres "
        f"{packages['langgraph-checkpoint-postgres']}; both savers on the same PostgreSQL, one "
        "call at a time. `AsyncOmiumSaver` goes over HTTP to a one-worker uvicorn gateway: "
        "JWT, rate limiter, `CheckpointCreated` in the event store, read tables, audit "
        f"acknowledged by Kafka. Workload: {work['threads']} threads x "
        f"{work['checkpoints_per_thread']} chained checkpoints (~{work['state_bytes']} B of "
        f"state), a 2-write `aput_writes` after each, {work['reads']} latest reads and "
        f"10-newest lists, {work['graph_runs']} runs of a 5-node graph on new threads. "
        f"Load average (1 min) {results['load_average_1m']['before']} before, "
        f"{results['load_average_1m']['after']} after.",
        "",
        "| measure | AsyncPostgresSaver | AsyncOmiumSaver |",
        "|---|---|---|",
        *rows,
    ])


def main() -> None:
    """Parse flags, run, write ``bench/results/checkpointer.json`` and the docs table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=20)
    parser.add_argument("--checkpoints", type=int, default=25, help="per thread")
    parser.add_argument("--reads", type=int, default=300)
    parser.add_argument("--graph-runs", type=int, default=40)
    parser.add_argument("--long-thread", type=int, default=400, help="puts on one thread")
    args = parser.parse_args()
    results = run(args)
    path = write_results("checkpointer", results)
    update_doc_section("checkpointer", to_markdown(results))
    console.print(to_markdown(results))
    console.print(f"[green]wrote[/] {path}")


if __name__ == "__main__":
    main()
