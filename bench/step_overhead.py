"""Per-step overhead: Omium against DBOS, on the same PostgreSQL, 1- and 5-step trivial workflows.

A trivial step returns at once, so what is measured is what the engine adds per step.

- **Omium**: a run of a workflow of sequential trivial steps, from ``start_execution`` to the
  run's ``ExecutionCompleted``, through the real path: relay (outbox → Kafka), orchestrator (run
  events → first step, run completion), execution worker (claim, ``start_step``, state, the
  agent, checks, and from the second step on *steps without round trips*: the completion, the
  *after* checkpoint and the next step's start in one save, the policy gate before it; telemetry
  to Kafka). Relay, orchestrator and worker run as threads of this process, on a topic prefix and
  an event store schema of their own. Twice: with the default checkpoints (after each step) and
  with none.
- **DBOS** (``dbos`` from PyPI, in its own virtualenv under ``.omium/bench/``, so it never touches
  the project's dependencies): a ``@DBOS.workflow`` calling ``@DBOS.step`` functions, its system
  database on the same PostgreSQL, driven run by run from a long-lived subprocess so its runs
  interleave with Omium's.

Runs alternate (Omium with checkpoints, DBOS, Omium without, for 1 and then 5 steps), so both
see the same machine. A run's time: Omium, from just before ``start_execution`` to the
``ExecutionCompleted`` event's time (the completing command's decision; the test process polls
the store only to know when to start the next run); DBOS, the workflow call. Per step:
``(p50(t5) - p50(t1)) / 4``, what one more step costs at the median; ``per_step_p50_vs_dbos``
divides Omium's (with checkpoints) by DBOS's.

Then a timed pass (apart from the rest): wall-time wrappers around the worker's phases over
5-step runs, so the per-step time is split by phase from a measurement.

Run: ``.venv/bin/python -m bench.step_overhead [--runs 200]`` with the local stack up.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console

from bench._machine import describe_machine
from bench._report import percentile, update_doc_section, write_results
from omium.cli._pipeline import Pipeline
from omium.commands import CommandApplications, event_store_env
from omium.kernel.kafka import admin_client, ensure_topics
from omium.kernel.settings import OmiumSettings, load_settings
from omium.sdk.workflow import parse_workflow_dict

console = Console()
LENGTHS = (1, 5)
DBOS_SERVER = """
import json, sys, time
from dbos import DBOS
DBOS(config={"name": "omium-bench", "system_database_url": sys.argv[1],
              "run_admin_server": False})

@DBOS.step()
def trivial(i: int) -> int:
    return i

@DBOS.workflow()
def steps(n: int) -> int:
    return sum(trivial(i) for i in range(n))

DBOS.launch()
for n in (1, 5):
    steps(n)  # warm-up
print("READY", flush=True)
for line in sys.stdin:
    n = int(line)
    started = time.perf_counter()
    steps(n)
    print(json.dumps(time.perf_counter() - started), flush=True)
DBOS.destroy()
"""


def trivial(ctx: Any) -> dict[str, Any]:
    """The Omium agent of every step: does nothing."""
    return {}


def _workflow(name: str, steps: int, checkpoints: bool) -> dict[str, Any]:
    return {
        "name": name,
        "agents": {"noop": {"entrypoint": "bench.step_overhead:trivial"}},
        "defaults": {"checkpoint": {"before": False, "after": checkpoints}},
        "steps": [{"id": f"s{i}", "agent": "noop"} for i in range(1, steps + 1)],
    }


# ---------------------------------------------------------------------------- Omium


class OmiumRuns:
    """Relay, orchestrator and worker in threads, and registered 1- and 5-step workflows."""

    def __init__(self, settings: OmiumSettings) -> None:
        """Prepare a topic prefix and schema of this run's own."""
        self.prefix = f"bench{uuid.uuid4().hex[:8]}"
        self.schema = f"bench_{uuid.uuid4().hex[:8]}"
        kafka = settings.kafka.model_copy(update={"topic_prefix": self.prefix})
        self.settings = settings.model_copy(update={"kafka": kafka})
        self.workflows: dict[tuple[int, bool], Any] = {}
        self.apps: CommandApplications | None = None
        self.pipeline: Pipeline | None = None

    @contextmanager
    def running(self) -> Iterator[OmiumRuns]:
        """Start the parts, register the workflows, warm up; drop everything afterwards."""
        ensure_topics(self.settings.kafka)
        env = event_store_env(self.settings, schema=self.schema, pool_size=2, max_overflow=4)
        parts = ("relay", "orchestrator", "worker")
        try:
            with (
                CommandApplications.create(env) as apps,
                Pipeline(self.settings, schema=self.schema, parts=parts, concurrency=2) as pipe,
            ):
                self.apps, self.pipeline = apps, pipe
                for steps in LENGTHS:
                    for checkpoints in (True, False):
                        name = f"bench-{steps}-{'ckpt' if checkpoints else 'bare'}"
                        workflow = parse_workflow_dict(_workflow(name, steps, checkpoints))
                        self.workflows[steps, checkpoints] = apps.workflows.register_workflow(
                            "bench", name=workflow.name, definition=workflow.to_definition()
                        ).aggregate_id
                        for _ in range(3):  # warm-up (imports, groups, caches)
                            self.run(steps, checkpoints, timeout_s=120)
                yield self
        finally:
            _drop(self.settings, self.prefix, self.schema)

    def run(self, steps: int, checkpoints: bool, timeout_s: float = 30) -> dict[str, Any]:
        """One run: its time, and its steps' start times (from the events)."""
        assert self.apps is not None and self.pipeline is not None
        executions = self.apps.executions
        workflow = self.workflows[steps, checkpoints]
        started = time.time()
        run = executions.start_execution("bench", workflow_id=workflow, workflow_version=1)
        deadline = time.monotonic() + timeout_s
        while True:
            state = executions.get_execution("bench", run.aggregate_id).state
            if state == "completed":
                break
            self.pipeline.check()
            if state in ("failed", "halted", "cancelled") or time.monotonic() > deadline:
                raise RuntimeError(f"bench run {run.aggregate_id} ended {state}")
            time.sleep(0.01)
        events: list[Any] = list(executions.repository.event_store.get(run.aggregate_id))
        at = {type(e).__name__: e.timestamp.timestamp() for e in events}
        starts = [e.timestamp.timestamp() for e in events if type(e).__name__ == "StepStarted"]
        return {
            "seconds": at["ExecutionCompleted"] - started,
            "step_gaps": [b - a for a, b in itertools.pairwise(starts)],
        }


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


class DbosRuns:
    """A DBOS process that runs one workflow per request."""

    def __init__(self, settings: OmiumSettings) -> None:
        """Install DBOS in its own virtualenv if needed."""
        self.settings = settings
        self.version: str | None = None
        self.error: str | None = None
        self._process: subprocess.Popen[str] | None = None

    @contextmanager
    def running(self) -> Iterator[DbosRuns]:
        """Start the DBOS process (or remember why it could not start)."""
        script = None
        try:
            python = self._install()
            pg = self.settings.postgres
            url = (
                f"postgresql://{pg.user}:{pg.password.get_secret_value()}@{pg.host}:{pg.port}"
                "/omium_dbos_bench"
            )
            with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as file:
                file.write(DBOS_SERVER)
            script = Path(file.name)
            self._process = subprocess.Popen(
                [str(python), str(script), url],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert self._process.stdout is not None
            line = self._process.stdout.readline()
            if line.strip() != "READY":
                _, err = self._process.communicate(timeout=30)
                raise RuntimeError(f"DBOS did not start: {line} {err[-500:]}")
        except (subprocess.SubprocessError, OSError, RuntimeError) as exc:
            detail = getattr(exc, "stderr", "") or ""
            self.error = f"{type(exc).__name__}: {exc} {str(detail)[-500:]}".strip()
        try:
            yield self
        finally:
            if self._process is not None and self._process.poll() is None:
                assert self._process.stdin is not None
                self._process.stdin.close()
                try:
                    self._process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self._process.kill()
            if script is not None:
                script.unlink(missing_ok=True)

    def _install(self) -> Path:
        venv = self.settings.stack.data_dir / "bench" / "dbos-venv"
        python = venv / "bin" / "python"
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", "dbos"],
                check=True,
                capture_output=True,
                timeout=600,
            )
        self.version = subprocess.run(
            [str(python), "-c", "from importlib.metadata import version;print(version('dbos'))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return python

    def run(self, steps: int) -> float | None:
        """Seconds of one workflow call (``None`` when DBOS is not running)."""
        process = self._process
        if self.error is not None or process is None:
            return None
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(f"{steps}\n")
        process.stdin.flush()
        return float(json.loads(process.stdout.readline()))


# ---------------------------------------------------------------------------- the runs


def measure(settings: OmiumSettings, runs: int) -> dict[str, Any]:
    """Interleaved runs of every kind; per kind and length, the run times in seconds."""
    times: dict[str, dict[str, list[float]]] = {
        kind: {str(n): [] for n in LENGTHS} for kind in ("omium", "omium_bare", "dbos")
    }
    gaps: dict[str, list[float]] = {"omium": [], "omium_bare": []}
    with (
        OmiumRuns(settings).running() as omium,
        DbosRuns(settings).running() as dbos,
        console.status("interleaved runs") as status,
    ):
        for index in range(runs):
            status.update(f"interleaved runs: {index + 1}/{runs} of each kind")
            for steps in LENGTHS:
                for kind, checkpoints in (("omium", True), (None, None), ("omium_bare", False)):
                    if kind is None:
                        took = dbos.run(steps)
                        if took is not None:
                            times["dbos"][str(steps)].append(took)
                        continue
                    assert checkpoints is not None
                    result = omium.run(steps, checkpoints)
                    times[kind][str(steps)].append(result["seconds"])
                    gaps[kind].extend(result["step_gaps"])
        dbos_info = {"version": dbos.version} if dbos.error is None else {"error": dbos.error}
    return {"times_s": times, "step_to_step_s": gaps, "dbos": dbos_info}


def summary(times: dict[str, list[float]]) -> dict[str, float]:
    """Medians, p99s and the per-step figures, in milliseconds."""
    one, five = times["1"], times["5"]
    p50_1, p50_5 = statistics.median(one), statistics.median(five)
    return {
        "run_1_step_p50_ms": p50_1 * 1000,
        "run_1_step_p99_ms": percentile(one, 0.99) * 1000,
        "run_5_steps_p50_ms": p50_5 * 1000,
        "run_5_steps_p99_ms": percentile(five, 0.99) * 1000,
        "per_step_p50_ms": (p50_5 - p50_1) / 4 * 1000,
        "per_step_p99_ms": (percentile(five, 0.99) - percentile(one, 0.99)) / 4 * 1000,
        "per_step_mean_ms": (statistics.mean(five) - statistics.mean(one)) / 4 * 1000,
    }


# ---------------------------------------------------------------------------- where it goes


class PhaseTimer:
    """Wall time spent in chosen functions of the worker, by phase (patched in, then out)."""

    def __init__(self) -> None:
        """Nothing timed yet."""
        self.totals: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        self._inside = threading.local()
        self._undo: list[Callable[[], None]] = []

    def time(self, owner: Any, name: str, label: str, *, within: str | None = None) -> None:
        """Time ``owner.name`` as ``label`` (only inside the phase ``within``, when given)."""
        original = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            if within is not None and not getattr(self._inside, within, False):
                return original(*args, **kwargs)
            setattr(self._inside, label, True)
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                took = time.perf_counter() - started
                setattr(self._inside, label, False)
                with self._lock:
                    total = self.totals.setdefault(label, [0.0, 0])
                    total[0] += took
                    total[1] += 1

        setattr(owner, name, timed)
        self._undo.append(lambda: setattr(owner, name, original))

    def clear(self) -> None:
        """Forget what was timed so far."""
        with self._lock:
            self.totals.clear()

    def restore(self) -> None:
        """Unpatch everything."""
        for undo in reversed(self._undo):
            undo()

    def per_step(self, steps: int) -> dict[str, dict[str, float]]:
        """Per phase: milliseconds per step and calls per step."""
        with self._lock:
            return {
                label: {"ms": round(total / steps * 1000, 3), "calls": round(calls / steps, 2)}
                for label, (total, calls) in self.totals.items()
            }


def profile(settings: OmiumSettings, runs: int) -> dict[str, Any]:
    """Timestamps around the worker's phases over 5-step runs, per step."""
    from omium.commands import CommandApplication, ExecutionsApplication
    from omium.worker import _attempt, _executor, _pipeline
    from omium.worker._heartbeat import Heartbeats
    from omium.worker._policy_gate import PolicyGate

    timer = PhaseTimer()
    advance = "combined save (advance_step)"
    timer.time(_attempt.AttemptRunner, "run", "whole attempt")
    timer.time(_attempt, "call_agent", "agent call (own thread, timeout)")
    timer.time(_attempt, "check_output", "output checks")
    timer.time(_attempt.AttemptRunner, "_context", "step context")
    timer.time(_pipeline.StepPipeline, "advance", "going on to the next step")
    timer.time(ExecutionsApplication, "advance_step", advance)
    timer.time(CommandApplication, "load", "  load: fast-forward read", within=advance)
    timer.time(CommandApplication, "_save", "  save: one transaction", within=advance)
    timer.time(PolicyGate, "check_output", "policy gate")
    timer.time(Heartbeats, "claim", "claims (Redis SET NX)")
    timer.time(Heartbeats, "release", "claim releases (Redis)")
    timer.time(_pipeline.StepPipeline, "_prepare", "checkpoint blob, next state")
    timer.time(_pipeline, "new_attempt", "next attempt set-up")
    timer.time(_executor.StepExecutor, "_finish", "spans and metrics (Kafka produce)")
    result: dict[str, Any] = {}
    try:
        with OmiumRuns(settings).running() as omium:
            for checkpoints in (True, False):
                timer.clear()
                runs_ = [omium.run(5, checkpoints) for _ in range(runs)]
                gaps = [gap for run in runs_ for gap in run["step_gaps"]]
                key = "with_checkpoints" if checkpoints else "without_checkpoints"
                result[key] = {
                    "runs": runs,
                    "step_to_step_p50_ms": statistics.median(gaps) * 1000,
                    "per_step": timer.per_step(runs * 5),
                }
    finally:
        timer.restore()
    return result


# ---------------------------------------------------------------------------- report


def ratios(results: dict[str, Any]) -> dict[str, float]:
    """Issue 10's figure, from this one run."""
    dbos = results["dbos"].get("summary")
    if dbos is None:
        return {}
    ours = results["omium"]["summary"]["per_step_p50_ms"]
    bare = results["omium_bare"]["summary"]["per_step_p50_ms"]
    return {
        "per_step_p50_vs_dbos": round(ours / dbos["per_step_p50_ms"], 2),
        "per_step_p50_without_checkpoints_vs_dbos": round(bare / dbos["per_step_p50_ms"], 2),
    }


def markdown(results: dict[str, Any]) -> str:
    """The docs/benchmarks.md section."""
    machine, load = results["machine"], results["load_average"]
    dbos = results["dbos"]
    kinds = [
        ("Omium, checkpoints", results["omium"]["summary"]),
        ("Omium, no checkpoints", results["omium_bare"]["summary"]),
        (f"DBOS {dbos.get('version', '')}".strip(), dbos.get("summary")),
    ]
    rows = [
        ("run, 1 step: p50 / p99", "run_1_step_p50_ms", "run_1_step_p99_ms"),
        ("run, 5 steps: p50 / p99", "run_5_steps_p50_ms", "run_5_steps_p99_ms"),
        ("**per step: p50** ((p50(t5) - p50(t1)) / 4)", "per_step_p50_ms", None),
        ("per step: mean", "per_step_mean_ms", None),
    ]
    lines = [
        "## Per-step overhead vs DBOS (`python -m bench.step_overhead`)",
        "",
        f"Run {machine['date']} on {machine['cores']} cores ({machine['cpu'][:40]}), load "
        f"average {load['before'][0]:.2f} before and {load['after'][0]:.2f} after; "
        f"{results['runs']} runs of each kind and length, interleaved (Omium with checkpoints, "
        "DBOS, Omium without), after a warm-up; sequential trivial steps (the agent returns at "
        "once), same PostgreSQL for both. Omium: relay, orchestrator and execution worker as "
        "threads of one process; from the second step on a worker goes on to the next step "
        "itself (steps without round trips: completion, *after* checkpoint and the next "
        "step's start in one save); start_execution → ExecutionCompleted. DBOS: a workflow of "
        "@DBOS.step functions in a long-lived process, system database on the same PostgreSQL.",
        "",
        "| measure | " + " | ".join(name for name, _ in kinds) + " |",
        "|---|" + "---|" * len(kinds),
    ]
    for label, key, p99 in rows:
        cells = []
        for _, figures in kinds:
            if figures is None:
                cells.append("—")
            elif p99 is None:
                cells.append(f"{figures[key]:.2f} ms")
            else:
                cells.append(f"{figures[key]:.1f} / {figures[p99]:.1f} ms")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    gaps = results["step_to_step_p50_ms"]
    lines += [
        "",
        "Omium's step-to-step time inside a run (``StepStarted`` to the next ``StepStarted``, "
        f"p50): {gaps['omium']:.2f} ms with checkpoints, {gaps['omium_bare']:.2f} ms without.",
        "",
        "| ratio | value |",
        "|---|---|",
        *[f"| `{name}` | {value} |" for name, value in results["ratios"].items()],
    ]
    if "error" in dbos:
        lines += ["", f"DBOS was not measured: {dbos['error']}"]
    lines += ["", results["reading"], "", *where_it_goes(results)]
    return "\n".join(lines)


def where_it_goes(results: dict[str, Any]) -> list[str]:
    """The timed split of a step, as a table."""
    profiled = results.get("profile")
    if not profiled:
        return []
    with_ckpt, without = profiled["with_checkpoints"], profiled["without_checkpoints"]
    lines = [
        f"Where a step's time goes: wall time around the worker's phases (perf_counter "
        f"wrappers), {with_ckpt['runs']} 5-step runs of each kind after the timed runs, per "
        "step (5 per run: the first is started the orchestrated way, the last completes alone). "
        "Phases nest: *going on to the next step* holds the policy gate, the claim, the "
        "checkpoint blob and the combined save; the save's load and transaction are indented. "
        f"Step to step (p50) here: {with_ckpt['step_to_step_p50_ms']:.2f} ms with checkpoints, "
        f"{without['step_to_step_p50_ms']:.2f} ms without.",
        "",
        "| phase | with checkpoints (ms / calls per step) | without |",
        "|---|---|---|",
    ]
    for label, figures in with_ckpt["per_step"].items():
        other = without["per_step"].get(label, {"ms": 0.0, "calls": 0})
        lines.append(
            f"| {label} | {figures['ms']:.3f} / {figures['calls']} | "
            f"{other['ms']:.3f} / {other['calls']} |"
        )
    return [*lines, "", remaining(with_ckpt["per_step"])]


def remaining(per_step: dict[str, dict[str, float]]) -> str:
    """Where the time of a step goes, in words, from the timed phases (with checkpoints)."""

    def ms(label: str) -> float:
        return per_step.get(label, {"ms": 0.0})["ms"]

    attempt = ms("whole attempt")
    save = ms("combined save (advance_step)")
    parts = {
        "the combined save": save,
        "handing the agent to its thread and back (for its timeout)": ms(
            "agent call (own thread, timeout)"
        ),
        "spans and metrics (queued for the sender thread; a chain's last step waits for "
        "their acknowledgement)": ms("spans and metrics (Kafka produce)"),
        "the Redis claims and releases": ms("claims (Redis SET NX)") + ms("claim releases (Redis)"),
        "the policy gate": ms("policy gate"),
        "the checkpoint blob and the next step's starting state": ms("checkpoint blob, next state"),
        "setting up the next attempt and its context": ms("next attempt set-up")
        + ms("step context"),
    }
    named = sum(parts.values())
    ranked = sorted(parts.items(), key=lambda kv: kv[1], reverse=True)
    listed = ", ".join(f"{name} {value:.2f} ms" for name, value in ranked)
    return (
        f"**Where the remaining time goes** (measured above, with checkpoints): a step costs "
        f"the worker {attempt:.2f} ms on average, of which {listed}; "
        f"{max(attempt - named, 0.0):.2f} ms is the rest of the attempt (output checks, the "
        f"run's view, Python between the phases). The combined save is "
        f"{ms('  save: one transaction'):.2f} ms for the transaction (one round trip to "
        f"PostgreSQL and its commit: the durability point) and "
        f"{ms('  load: fast-forward read'):.2f} ms for reading the run (it is taken from the "
        "cache at the version the worker saved; another process's write since makes the save "
        "fail on the store's unique key and the worker falls back). On this 2-core machine "
        "every hand-over between threads and processes (agent thread, Redis, PostgreSQL, the "
        "relay and the orchestrator catching up on the run's events) waits for a core: the "
        "higher the load average, the further both engines' figures are from a quiet machine's."
    )


def reading(results: dict[str, Any]) -> str:
    """What the figures say, in one paragraph."""
    ours = results["omium"]["summary"]["per_step_p50_ms"]
    text = (
        f"Omium adds {ours:.2f} ms per step at the median (with checkpoints). From the second "
        "step on, the worker that completed a step records its completion, its checkpoint and "
        "the next step's start in one event-store transaction and runs the next step at once; "
        "the events still reach Kafka one by one through the relay, so the orchestrator, the "
        "policy processor and the projections see every step as before, and the run can still "
        "be taken over, rolled back, halted and replayed."
    )
    ratio = results["ratios"].get("per_step_p50_vs_dbos")
    if ratio is not None:
        theirs = results["dbos"]["summary"]["per_step_p50_ms"]
        text += (
            f" DBOS records a step with one PostgreSQL write in the calling process "
            f"({theirs:.2f} ms): Omium's step costs {ratio:.2f} times DBOS's"
            + (" (goal ≤ 1.0: met)." if ratio <= 1.0 else " (goal ≤ 1.0: not met).")
        )
    return text


def main() -> None:
    """Measure both, write ``bench/results/step_overhead.json`` and the docs section."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="runs of each kind and length")
    parser.add_argument("--profile-runs", type=int, default=40, help="0: no phase timing")
    args = parser.parse_args()
    settings = load_settings()
    load_before = os.getloadavg()
    measured = measure(settings, args.runs)
    load_after = os.getloadavg()
    results: dict[str, Any] = {
        "benchmark": "step_overhead",
        "machine": describe_machine(["confluent-kafka", "psycopg", "eventsourcing"]),
        "runs": args.runs,
        "load_average": {
            "before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in load_after],
        },
        "omium": {"times_s": measured["times_s"]["omium"]},
        "omium_bare": {"times_s": measured["times_s"]["omium_bare"]},
        "dbos": dict(measured["dbos"]),
        "step_to_step_p50_ms": {
            kind: statistics.median(gaps) * 1000 if gaps else float("nan")
            for kind, gaps in measured["step_to_step_s"].items()
        },
    }
    for kind in ("omium", "omium_bare"):
        results[kind]["summary"] = summary(results[kind]["times_s"])
    dbos_times = measured["times_s"]["dbos"]
    if "error" not in results["dbos"] and all(dbos_times.values()):
        results["dbos"].update(times_s=dbos_times, summary=summary(dbos_times))
    results["ratios"] = ratios(results)
    if args.profile_runs:
        with console.status("phase timing"):
            results["profile"] = profile(settings, args.profile_runs)
    results["reading"] = reading(results)
    path = write_results("step_overhead", results)
    update_doc_section("step_overhead", markdown(results))
    console.print(markdown(results))
    console.print(f"[dim]written {path}[/]")


if __name__ == "__main__":
    main()
