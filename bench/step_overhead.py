"""Per-step overhead: Omium against DBOS, on the same PostgreSQL, 5 trivial steps per workflow.

A trivial step returns at once, so what is measured is what the engine adds per step.

- **Omium**: a run of a workflow with 5 sequential trivial steps, from ``start_execution`` to the
  run being completed in the event store, through the real path: relay (outbox → Kafka),
  orchestrator (run events → next step, exactly once), execution worker (claim, ``start_step``,
  restore state, run the agent, checks, ``complete_step``, *after* checkpoint, telemetry to
  Kafka). Relay, orchestrator and worker run as threads of this process, on a topic prefix and an
  event store schema of their own.
- **DBOS** (``dbos`` from PyPI, in its own virtualenv under ``.omium/bench/``, so it never touches
  the project's dependencies): a ``@DBOS.workflow`` calling 5 ``@DBOS.step`` functions, its
  system database on the same PostgreSQL.

Both report the mean time of a 5-step run and of a 1-step run; the per-step overhead is
``(t5 - t1) / 4`` (what one more step costs), next to ``t5 / 5``.

Run: ``.venv/bin/python -m bench.step_overhead [--runs 20]`` with the local stack up.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

# rocksdict before regopy (loaded by ``commands``), see omium/cli/_demo.py.
import rocksdict  # noqa: F401
from rich.console import Console

from bench._machine import describe_machine
from bench._report import percentile, update_doc_section, write_results
from commands import CommandApplications, event_store_env
from omium.cli._pipeline import Pipeline
from omium.kernel.kafka import admin_client, ensure_topics
from omium.kernel.settings import OmiumSettings, load_settings
from omium.sdk.workflow import parse_workflow_dict

console = Console()
DBOS_SCRIPT = '''
import json, sys, time
from dbos import DBOS
url, runs = sys.argv[1], int(sys.argv[2])
DBOS(config={"name": "omium-bench", "system_database_url": url, "run_admin_server": False})

@DBOS.step()
def trivial(i: int) -> int:
    return i

@DBOS.workflow()
def steps(n: int) -> int:
    return sum(trivial(i) for i in range(n))

DBOS.launch()
out = {}
for n in (1, 5):
    steps(n)  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        steps(n)
        times.append(time.perf_counter() - started)
    out[str(n)] = times
DBOS.destroy()
print("RESULT " + json.dumps(out))
'''


def trivial(ctx: Any) -> dict[str, Any]:
    """The Omium agent of every step: does nothing."""
    return {}


def _workflow(name: str, steps: int) -> dict[str, Any]:
    return {
        "name": name,
        "agents": {"noop": {"entrypoint": "bench.step_overhead:trivial"}},
        "steps": [{"id": f"s{i}", "agent": "noop"} for i in range(1, steps + 1)],
    }


# ---------------------------------------------------------------------------- Omium


def measure_omium(settings: OmiumSettings, runs: int) -> dict[str, list[float]]:
    """Seconds per run of a 1-step and a 5-step workflow through relay, orchestrator, worker."""
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    kafka = settings.kafka.model_copy(update={"topic_prefix": prefix})
    settings = settings.model_copy(update={"kafka": kafka})
    ensure_topics(kafka)
    env = event_store_env(settings, schema=schema, pool_size=2, max_overflow=4)
    parts = ("relay", "orchestrator", "worker")
    try:
        with CommandApplications.create(env) as apps, Pipeline(
            settings, schema=schema, parts=parts, concurrency=2
        ) as pipeline:
            results = {}
            for steps in (1, 5):
                workflow = parse_workflow_dict(_workflow(f"bench-{steps}", steps))
                wid = apps.workflows.register_workflow(
                    "bench", name=workflow.name, definition=workflow.to_definition()
                ).aggregate_id
                _one_run(apps, pipeline, wid, timeout_s=120)  # warm-up (imports, groups, caches)
                results[str(steps)] = [_one_run(apps, pipeline, wid) for _ in range(runs)]
            return results
    finally:
        _drop(settings, prefix, schema)


def _one_run(
    apps: CommandApplications, pipeline: Pipeline, workflow_id: Any, timeout_s: float = 30
) -> float:
    started = time.perf_counter()
    run = apps.executions.start_execution("bench", workflow_id=workflow_id, workflow_version=1)
    deadline = time.monotonic() + timeout_s
    while True:
        state = apps.executions.get_execution("bench", run.aggregate_id).state
        if state == "completed":
            return time.perf_counter() - started
        pipeline.check()
        if state in ("failed", "halted", "cancelled") or time.monotonic() > deadline:
            raise RuntimeError(f"bench run {run.aggregate_id} ended {state}")
        time.sleep(0.005)


def _drop(settings: OmiumSettings, prefix: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    admin = admin_client(settings.kafka)
    topics = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
    if topics:
        for future in admin.delete_topics(topics).values():
            future.exception(timeout=30)


# ---------------------------------------------------------------------------- DBOS


def measure_dbos(settings: OmiumSettings, runs: int) -> dict[str, Any]:
    """DBOS's figures, or ``{"error": why}`` when it cannot be installed or run."""
    venv = settings.stack.data_dir / "bench" / "dbos-venv"
    python = venv / "bin" / "python"
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(python), "-m", "pip", "install", "-q", "dbos"], check=True,
                           capture_output=True, timeout=600)
        version = subprocess.run([str(python), "-c", "from importlib.metadata import version;"
                                  "print(version('dbos'))"], capture_output=True, text=True,
                                 check=True).stdout.strip()
        pg = settings.postgres
        url = (f"postgresql://{pg.user}:{pg.password.get_secret_value()}@{pg.host}:{pg.port}"
               "/omium_dbos_bench")
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as script:
            script.write(DBOS_SCRIPT)
        done = subprocess.run([str(python), script.name, url, str(runs)], capture_output=True,
                              text=True, timeout=600, check=True)
    except (subprocess.SubprocessError, OSError) as exc:
        detail = getattr(exc, "stderr", "") or ""
        return {"error": f"{type(exc).__name__}: {exc} {str(detail)[-500:]}".strip()}
    finally:
        if "script" in locals():
            Path(script.name).unlink(missing_ok=True)
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    return {"version": version, "times": json.loads(line.removeprefix("RESULT "))}


# ---------------------------------------------------------------------------- report


def summary(times: dict[str, list[float]]) -> dict[str, float]:
    """Mean and p50/p99 of both run lengths, and the per-step figures, in milliseconds."""
    t1, t5 = statistics.mean(times["1"]), statistics.mean(times["5"])
    return {
        "run_1_step_ms": t1 * 1000,
        "run_5_steps_ms": t5 * 1000,
        "run_5_steps_p50_ms": percentile(times["5"], 0.5) * 1000,
        "run_5_steps_p99_ms": percentile(times["5"], 0.99) * 1000,
        "per_step_marginal_ms": (t5 - t1) / 4 * 1000,
        "per_step_average_ms": t5 / 5 * 1000,
    }


def markdown(results: dict[str, Any]) -> str:
    """The docs/benchmarks.md section."""
    machine = results["machine"]
    omium = results["omium"]
    dbos = results["dbos"]
    rows = [
        ("mean run, 1 step", "run_1_step_ms"),
        ("mean run, 5 steps", "run_5_steps_ms"),
        ("run, 5 steps p50 / p99", None),
        ("**per step: (t5 - t1) / 4**", "per_step_marginal_ms"),
        ("per step: t5 / 5", "per_step_average_ms"),
    ]
    dbos_label = f"DBOS {dbos['version']}" if "summary" in dbos else "DBOS"
    lines = [
        "## Per-step overhead vs DBOS (`python -m bench.step_overhead`)",
        "",
        f"Run {machine['date']} on {machine['cores']} cores ({machine['cpu'][:40]}), "
        f"{results['runs']} runs of each length after a warm-up; 5 sequential trivial steps "
        "(the agent returns at once), same PostgreSQL for both. Omium: relay, orchestrator and "
        "execution worker as threads of one process, default checkpoints (after each step), "
        "start_execution → run completed in the event store. DBOS: a workflow of @DBOS.step "
        "functions, system database on the same PostgreSQL.",
        "",
        f"| measure | Omium | {dbos_label} |",
        "|---|---|---|",
    ]
    for label, key in rows:
        ours, theirs = _cell(omium["summary"], key), _cell(dbos.get("summary"), key)
        lines.append(f"| {label} | {ours} | {theirs} |")
    if "error" in dbos:
        lines += ["", f"DBOS was not measured: {dbos['error']}"]
    lines += ["", results["reading"]]
    return "\n".join(lines)


def _cell(figures: dict[str, float] | None, key: str | None) -> str:
    if figures is None:
        return "—"
    if key is None:
        return f"{figures['run_5_steps_p50_ms']:.1f} / {figures['run_5_steps_p99_ms']:.1f} ms"
    return f"{figures[key]:.1f} ms"


def main() -> None:
    """Measure both, write ``bench/results/step_overhead.json`` and the docs section."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    settings = load_settings()
    with console.status("Omium: 1- and 5-step runs through relay, orchestrator and worker"):
        omium = measure_omium(settings, args.runs)
    with console.status("DBOS: the same workflows"):
        dbos = measure_dbos(settings, args.runs)
    results: dict[str, Any] = {
        "machine": describe_machine(["confluent-kafka", "psycopg", "eventsourcing"]),
        "runs": args.runs,
        "omium": {"times_s": omium, "summary": summary(omium)},
        "dbos": dbos if "error" in dbos else {**dbos, "summary": summary(dbos["times"])},
    }
    results["reading"] = reading(results)
    path = write_results("step_overhead", results)
    update_doc_section("step_overhead", markdown(results))
    console.print(markdown(results))
    console.print(f"[dim]written {path}[/]")


def reading(results: dict[str, Any]) -> str:
    """What the figures say, in one paragraph."""
    omium = results["omium"]["summary"]["per_step_marginal_ms"]
    text = (
        f"Omium adds about {omium:.0f} ms per step. A step is not a function call in one "
        "process: its start, its result and its checkpoint are commands on the event store, "
        "each relayed to Kafka and read back by the orchestrator, which then schedules the next "
        "step through the event store and Kafka again (four Kafka hops and about six event "
        "store transactions per step, each Kafka hop a committed transaction), so a step can "
        "be taken over by another worker, rolled back, checked by policies and replayed."
    )
    dbos = results["dbos"]
    if "summary" in dbos:
        ratio = omium / max(dbos["summary"]["per_step_marginal_ms"], 1e-6)
        text += (
            f" DBOS records a step with one PostgreSQL write in the calling process "
            f"({dbos['summary']['per_step_marginal_ms']:.1f} ms, about {ratio:.0f} times less): "
            "cheaper, but the workflow's steps all run in that process, with no event log "
            "for other services to follow."
        )
    return text


if __name__ == "__main__":
    main()
