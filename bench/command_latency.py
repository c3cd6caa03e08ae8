"""Command latency through the gateway (p50/p95/p99 at a fixed rate) and its maximum rate.

Measured over real HTTP against a uvicorn gateway on 127.0.0.1. Every command takes the whole
production path: JWT check, Redis token bucket, the command handler on the PostgreSQL event store
(events and idempotency key in one transaction) and the audit event acknowledged by Kafka before
the answer is sent. The gateway runs as its own process (``uvicorn``, one worker, as
``omium gateway``) on a fresh event-store schema and topic prefix; its rate limits are raised out
of the way so the limiter is paid for but never refuses.

The load is runs of five commands (start, schedule step, start step, complete step, complete
run), each command waiting for the previous one because it depends on it. *Fixed rate*: runs
start on a schedule (open loop), offering ``--rate`` commands/s for ``--duration`` seconds.
*Maximum*: closed loops of 1..N concurrent runs for ``--step-duration`` seconds each; the best
rate with under 1 % errors is the maximum sustained commands/s. The load generator shares the
machine with the gateway, PostgreSQL, Redis and Kafka.

Run: ``.venv/bin/python -m bench.command_latency`` with the local stack up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
from fastapi import FastAPI
from psycopg import sql
from rich.console import Console

from bench._machine import describe_machine
from bench._report import ROOT, percentile, update_doc_section, write_results
from gateway import create_app, mint_token
from omium.kernel.kafka import ensure_topics
from omium.kernel.settings import OmiumSettings, load_settings

SCHEMA_ENV = "OMIUM_BENCH_EVENT_STORE_SCHEMA"
TOPIC_PREFIX = "bench-cmdlat"
TENANT = "bench"
RUN_COMMANDS = ("start_execution", "schedule_step", "start_step", "complete_step",
                "complete_execution")
# Raised far above what the machine can do: the limiter still runs, it just never refuses.
UNMETERED = {"capacity": 10_000_000, "refill_per_s": 10_000_000}
console = Console()


def bench_app() -> FastAPI:
    """The child process's app (``uvicorn bench.command_latency:bench_app --factory``)."""
    return create_app(load_settings(), event_store_schema=os.environ[SCHEMA_ENV])


@dataclass(frozen=True)
class Sample:
    """One command: its name, how long it took, and the status it got."""

    command: str
    ms: float
    status: int


# --- the gateway process ----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _child_env(schema: str) -> dict[str, str]:
    tiers = {"bench": {"tenant": UNMETERED, "api_key": UNMETERED}}
    return {
        **os.environ,
        SCHEMA_ENV: schema,
        "OMIUM_KAFKA__TOPIC_PREFIX": TOPIC_PREFIX,
        "OMIUM_GATEWAY__RATE_LIMIT__TIERS": json.dumps(tiers),
        "OMIUM_GATEWAY__RATE_LIMIT__DEFAULT_TIER": "bench",
        "OMIUM_LOG_LEVEL": "WARNING",
    }


@contextmanager
def gateway_process(settings: OmiumSettings) -> Iterator[str]:
    """Start a uvicorn gateway on a free port, wait until ``/ready``; its base URL.

    Its event-store schema is dropped afterwards; the bench topics are kept (and reused).
    """
    schema = f"bench_cmdlat_{uuid.uuid4().hex[:8]}"
    kafka = settings.kafka.model_copy(update={"topic_prefix": TOPIC_PREFIX})
    ensure_topics(kafka)
    port = _free_port()
    command = [sys.executable, "-m", "uvicorn", "bench.command_latency:bench_app", "--factory",
               "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
               "--no-access-log"]
    child = subprocess.Popen(command, cwd=ROOT, env=_child_env(schema))
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
        _drop_schema(settings, schema)


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


def _drop_schema(settings: OmiumSettings, schema: str) -> None:
    with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


# --- the load ---------------------------------------------------------------------------------


async def _timed(client: httpx.AsyncClient, command: str, path: str, body: dict[str, Any],
                 samples: list[Sample]) -> httpx.Response:
    started = time.perf_counter()
    response = await client.post(path, json=body)
    samples.append(Sample(command, (time.perf_counter() - started) * 1000, response.status_code))
    return response


async def one_run(client: httpx.AsyncClient, workflow_id: str, samples: list[Sample]) -> None:
    """The five commands of one run, each after the previous one's answer."""
    started = await _timed(client, "start_execution", "/executions",
                           {"workflow_id": workflow_id, "workflow_version": 1,
                            "input": {"ticket": 42}}, samples)
    if started.status_code != 201:
        return
    run = f"/executions/{started.json()['execution_id']}"
    steps: list[tuple[str, str, dict[str, Any]]] = [
        ("schedule_step", f"{run}/steps", {"step_id": "answer", "agent": "agents.answer"}),
        ("start_step", f"{run}/steps/answer/start", {}),
        ("complete_step", f"{run}/steps/answer/complete", {"output": {"text": "done"}}),
        ("complete_execution", f"{run}/complete", {"output": {"resolved": True}}),
    ]
    for command, path, body in steps:
        if (await _timed(client, command, path, body, samples)).status_code >= 300:
            return


async def fixed_rate(client: httpx.AsyncClient, workflow_id: str, *, rate: float,
                     duration_s: float) -> tuple[list[Sample], float]:
    """Start runs on a fixed schedule offering ``rate`` commands/s; samples and elapsed s."""
    samples: list[Sample] = []
    runs = max(1, int(duration_s * rate / len(RUN_COMMANDS)))
    interval = len(RUN_COMMANDS) / rate
    started = time.perf_counter()
    tasks = []
    for index in range(runs):
        delay = started + index * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one_run(client, workflow_id, samples)))
    await asyncio.gather(*tasks)
    return samples, time.perf_counter() - started


async def closed_loop(client: httpx.AsyncClient, workflow_id: str, *, concurrency: int,
                      duration_s: float) -> tuple[list[Sample], float]:
    """``concurrency`` runs at a time, back to back, for ``duration_s``."""
    samples: list[Sample] = []
    deadline = time.perf_counter() + duration_s

    async def worker() -> None:
        while time.perf_counter() < deadline:
            await one_run(client, workflow_id, samples)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return samples, time.perf_counter() - started


def summarize(samples: list[Sample], elapsed_s: float) -> dict[str, Any]:
    """Counts, rate, error share and latency percentiles, overall and per command."""
    ok = [s.ms for s in samples if s.status < 300]
    statuses = Counter(str(s.status) for s in samples)
    per_command = {}
    for command in RUN_COMMANDS:
        times = [s.ms for s in samples if s.command == command and s.status < 300]
        per_command[command] = {"p50_ms": round(percentile(times, 0.50), 2),
                                "p99_ms": round(percentile(times, 0.99), 2)}
    return {
        "commands": len(samples),
        "elapsed_s": round(elapsed_s, 2),
        "commands_per_s": round(len(ok) / elapsed_s, 1) if elapsed_s else 0.0,
        "errors": len(samples) - len(ok),
        "statuses": dict(sorted(statuses.items())),
        "p50_ms": round(percentile(ok, 0.50), 2),
        "p95_ms": round(percentile(ok, 0.95), 2),
        "p99_ms": round(percentile(ok, 0.99), 2),
        "max_ms": round(max(ok, default=float("nan")), 2),
        "per_command": per_command,
    }


async def measure(url: str, settings: OmiumSettings, args: argparse.Namespace) -> dict[str, Any]:
    """Warm up, then the fixed-rate run, then the closed-loop steps."""
    token = mint_token(settings, subject="bench", tenant_id=TENANT, roles=["developer"])
    limits = httpx.Limits(max_connections=max(args.concurrency) + 8)
    async with httpx.AsyncClient(base_url=f"{url}/api/v1", limits=limits, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        created = await client.post("/workflows", json={
            "name": f"bench-{uuid.uuid4().hex[:8]}",
            "definition": {"steps": [{"id": "answer", "agent": "agents.answer"}]}})
        created.raise_for_status()
        workflow_id = created.json()["workflow_id"]
        await closed_loop(client, workflow_id, concurrency=4, duration_s=args.warmup)
        samples, elapsed = await fixed_rate(client, workflow_id, rate=args.rate,
                                            duration_s=args.duration)
        at_rate = {"offered_commands_per_s": args.rate, **summarize(samples, elapsed)}
        steps = []
        for concurrency in args.concurrency:
            samples, elapsed = await closed_loop(client, workflow_id, concurrency=concurrency,
                                                 duration_s=args.step_duration)
            steps.append({"concurrent_runs": concurrency, **summarize(samples, elapsed)})
    sustained = [s for s in steps if s["errors"] <= 0.01 * s["commands"]]
    best = max(sustained, key=lambda s: s["commands_per_s"], default=None)
    return {"fixed_rate": at_rate, "closed_loop": steps,
            "max_sustained_commands_per_s": best["commands_per_s"] if best else None,
            "max_at_concurrent_runs": best["concurrent_runs"] if best else None}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the gateway, measure, stop it; the results document."""
    settings = load_settings()
    # Other work on the machine skews every figure: record how busy it was.
    load_before = os.getloadavg()
    with gateway_process(settings) as url:
        measured = asyncio.run(measure(url, settings, args))
    return {
        "benchmark": "command_latency",
        "machine": describe_machine(["fastapi", "uvicorn", "eventsourcing", "psycopg",
                                     "confluent-kafka", "httpx", "omium"]),
        "setup": {
            "gateway": "uvicorn, 1 worker, 127.0.0.1; JWT auth, Redis rate limiter (unmetered "
                       "tier), PostgreSQL event store, audit acknowledged by Kafka",
            "load": "runs of 5 dependent commands: " + ", ".join(RUN_COMMANDS),
            "client": "httpx.AsyncClient on the same machine",
            "fixed_rate_duration_s": args.duration,
            "step_duration_s": args.step_duration,
            "load_average_1m_before_after": [round(load_before[0], 2),
                                             round(os.getloadavg()[0], 2)],
        },
        **measured,
    }


def to_markdown(results: dict[str, Any]) -> str:
    """The docs section for one run."""
    machine, fixed = results["machine"], results["fixed_rate"]
    rows = [f"| {s['concurrent_runs']} | {s['commands_per_s']} | {s['p50_ms']} | {s['p99_ms']} "
            f"| {s['errors']} |" for s in results["closed_loop"]]
    per = fixed["per_command"]
    return "\n".join([
        "## Command latency (`python -m bench.command_latency`)",
        "",
        f"Run {machine['date']} on {machine['cores']} cores ({machine['cpu']}), "
        f"{machine['memory_gib']} GiB, Python {machine['python']}, "
        f"FastAPI {machine['packages']['fastapi']}, uvicorn {machine['packages']['uvicorn']} "
        f"(1-min load average {results['setup']['load_average_1m_before_after'][0]} before). "
        "Real HTTP to a one-worker uvicorn gateway on 127.0.0.1: JWT, Redis token bucket, "
        "PostgreSQL event store, audit acknowledged by Kafka; the load generator runs on the "
        "same machine. Load: runs of five dependent commands (start, schedule step, start "
        "step, complete step, complete run).",
        "",
        f"**At {fixed['offered_commands_per_s']} commands/s offered** "
        f"({fixed['commands']} commands, {fixed['errors']} errors): "
        f"p50 {fixed['p50_ms']} ms · p95 {fixed['p95_ms']} ms · p99 {fixed['p99_ms']} ms "
        f"(max {fixed['max_ms']} ms). Start run p50/p99 {per['start_execution']['p50_ms']}/"
        f"{per['start_execution']['p99_ms']} ms; complete step "
        f"{per['complete_step']['p50_ms']}/{per['complete_step']['p99_ms']} ms.",
        "",
        f"**Maximum sustained: {results['max_sustained_commands_per_s']} commands/s** "
        f"(closed loop, {results['max_at_concurrent_runs']} concurrent runs).",
        "",
        "| concurrent runs | commands/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|",
        *rows,
    ])


def main() -> None:
    """Parse flags, run, write ``bench/results/command_latency.json`` and the docs section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50, help="offered commands/s")
    parser.add_argument("--duration", type=float, default=30, help="fixed-rate seconds")
    parser.add_argument("--warmup", type=float, default=5, help="seconds before measuring")
    parser.add_argument("--step-duration", type=float, default=10,
                        help="seconds per closed-loop concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8, 16, 32],
                        help="concurrent runs per closed-loop step")
    args = parser.parse_args()
    results = run(args)
    path = write_results("command_latency", results)
    update_doc_section("command_latency", to_markdown(results))
    console.print(to_markdown(results))
    console.print(f"[green]wrote[/] {path}")


if __name__ == "__main__":
    main()
