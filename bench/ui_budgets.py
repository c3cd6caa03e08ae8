"""The web UI's budgets (issue 15), measured in Debian's Chromium against the real stack.

Three figures, each beside its budget:

- **Initial JS**: the scripts and module preloads ``ui/dist/index.html`` names, gzipped (level 9,
  as a server would send them), against 300 KB.
- **Runs list with 10,000 runs**: 10,000 runs of a fresh tenant are published to Kafka as
  events and applied by ``omium project postgres`` (the read model the list reads, through its
  real path). A signed-in tab then opens ``/ui/runs`` and the page itself records when the first
  rows are in the DOM and when a filter change made as soon as they were there has been handled
  (the State select's value and the URL updated): time to interactive, against 1 s. Measured
  with an empty HTTP cache (a first visit) and with a warm one (a reload).
- **A live event on the run page at 50 events/s**: a run's events are stored through the event
  store's commands at 50/s while its page is open; ``omium relay`` puts them on Kafka,
  ``omium project redis`` into Redis, the gateway streams them over SSE and the page renders
  them. A MutationObserver in the page notes when each event's timeline row enters the DOM;
  delay = that time minus the return of the command that stored it (p50/p95/max), against
  500 ms. The same events are timed where they pass: in Redis (an XREAD in this process) and
  on the gateway's SSE stream (an HTTP client in this process), to say where the time goes.

The gateway (its own process: uvicorn, the checkout's ``ui/dist``), the relay and both
projections run as their own processes on a fresh event-store schema and topic prefix, removed
afterwards. Everything shares the machine's cores with the browser.

Run: ``.venv/bin/python -m bench.ui_budgets [--runs 10000 --rate 50 --seconds 20]`` with the
local stack up and ``ui/dist`` built. Writes ``bench/results/ui_budgets.json`` and its section
in ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]
from playwright.sync_api import Page, sync_playwright
from psycopg import sql
from rich.console import Console

from bench._machine import describe_machine
from bench._report import RESULTS_DIR, percentile, update_doc_section, write_results
from bench.relay_lag import Arrivals
from omium.commands import CommandApplications, event_store_env
from omium.commands.relay import event_id_for
from omium.gateway import mint_token
from omium.kernel.kafka import EventProducer, admin_client, ensure_topics, topic_specs
from omium.kernel.serde import AvroSerde, SchemaCatalog
from omium.kernel.settings import OmiumSettings, load_settings
from omium.projections.postgres import schema_for
from omium.projections.redis import RedisKeys
from omium.sdk.workflow import WorkflowDefinition
from omium.testing.samples import sample_event

console = Console()
ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "ui" / "dist"
CHROMIUM = "/usr/bin/chromium"
OMIUM = Path(sys.executable).with_name("omium")
BUDGET_JS_KB = 300.0
BUDGET_INTERACTIVE_S = 1.0
BUDGET_LIVE_MS = 500.0

# ----------------------------------------------------------------------------- bundle size


def bundle_size(dist: Path = DIST) -> dict[str, Any]:
    """The initial JS (``<script src>`` and ``<link rel=modulepreload>`` of index.html), gzipped."""
    html = (dist / "index.html").read_text(encoding="utf-8")
    scripts = re.findall(r'<script[^>]*\bsrc="([^"]+)"', html)
    preloads = re.findall(r'<link[^>]*rel="modulepreload"[^>]*href="([^"]+)"', html)
    preloads += re.findall(r'<link[^>]*href="([^"]+)"[^>]*rel="modulepreload"', html)
    styles = re.findall(r'<link[^>]*rel="stylesheet"[^>]*href="([^"]+)"', html)

    def sizes(urls: list[str]) -> list[dict[str, Any]]:
        found = []
        for url in dict.fromkeys(urls):
            data = (dist / url.removeprefix("/ui/")).read_bytes()
            found.append(
                {"file": url, "bytes": len(data), "gzip_bytes": len(gzip.compress(data, 9))}
            )
        return found

    js, css = sizes(scripts + preloads), sizes(styles)
    return {
        "files": js,
        "css": css,
        "initial_js_bytes": sum(f["bytes"] for f in js),
        "initial_js_gzip_kb": round(sum(f["gzip_bytes"] for f in js) / 1000, 1),
        "css_gzip_kb": round(sum(f["gzip_bytes"] for f in css) / 1000, 1),
    }


# ---------------------------------------------------------------------------------- the stack


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_gateway(schema: str, port: int) -> None:
    """The gateway on ``schema`` (``omium gateway`` always uses the default event store)."""
    import uvicorn

    from omium.gateway import create_app
    from omium.kernel.logs import configure_logging

    settings = load_settings()
    configure_logging("WARNING")
    app = create_app(settings, event_store_schema=schema)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


@dataclass
class Stack:
    """The bench's gateway, relay and projections on a fresh schema and topic prefix."""

    settings: OmiumSettings
    schema: str
    url: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def token(self, role: str, tenant: str) -> str:
        """A development JWT."""
        return mint_token(self.settings, subject=f"bench-{role}", tenant_id=tenant, roles=[role])


@contextmanager
def stack(base: OmiumSettings, logs: Path) -> Iterator[Stack]:
    """Start the processes; stop them and remove the topics, schemas and keys afterwards."""
    run = uuid.uuid4().hex[:8]
    prefix, schema = f"bench-ui-{run}", f"bench_ui_{run}"
    kafka = base.kafka.model_copy(update={"topic_prefix": prefix})
    settings = base.model_copy(update={"kafka": kafka})
    ensure_topics(kafka)
    port = _free_port()
    env = {
        **os.environ,
        "OMIUM_KAFKA__TOPIC_PREFIX": prefix,
        "OMIUM_RELAY__SCHEMA": schema,
        "OMIUM_LOG_LEVEL": "WARNING",
        # One browser tab's requests: the free tier would do, premium keeps limits out of it.
        "OMIUM_GATEWAY__RATE_LIMIT__DEFAULT_TIER": "premium",
    }
    bench = Stack(settings, schema, f"http://127.0.0.1:{port}")
    commands = {
        "gateway": [
            sys.executable,
            "-m",
            "bench.ui_budgets",
            "--serve-gateway",
            schema,
            "--port",
            str(port),
        ],
        "relay": [str(OMIUM), "relay", "--progress-every", "60"],
        "project-postgres": [str(OMIUM), "project", "postgres", "--report-every-s", "60"],
        "project-redis": [str(OMIUM), "project", "redis", "--report-every-s", "60"],
    }
    try:
        for name, argv in commands.items():
            log = (logs / f"ui_budgets-{name}.log").open("wb")
            bench.processes[name] = subprocess.Popen(
                argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )
            if name == "gateway":  # it creates the event store tables the relay follows
                _wait_for_gateway(bench)
        yield bench
    finally:
        for process in bench.processes.values():
            process.send_signal(signal.SIGTERM)
        for process in bench.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        _cleanup(settings, schema)


def _wait_for_gateway(bench: Stack, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    token = bench.token("viewer", "bench-probe")
    while time.monotonic() < deadline:
        if bench.processes["gateway"].poll() is not None:
            raise RuntimeError("the gateway exited (see .omium/logs/ui_budgets-gateway.log)")
        try:
            response = httpx.get(
                f"{bench.url}/api/v1/whoami", headers={"Authorization": f"Bearer {token}"}
            )
            if response.status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the gateway did not start")


def _cleanup(settings: OmiumSettings, schema: str) -> None:
    prefix = settings.kafka.topic_prefix
    admin_client(settings.kafka).delete_topics([s.name for s in topic_specs(settings.kafka)])
    with psycopg.connect(settings.postgres.dsn(), autocommit=True) as conn:
        for name in (schema, schema_for(prefix)):
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
    client = redis.Redis.from_url(settings.redis.url)
    for key in client.scan_iter(match=f"{prefix}:rm*", count=1000):
        client.delete(key)


# ------------------------------------------------------------------------- 10,000 runs seeded


def _seed_run(tenant: str, index: int) -> list[dict[str, Any]]:
    """One run's hash-chained events: started, one step, and (mostly) an end."""
    run_id = str(uuid.uuid4())
    kinds: list[tuple[str, dict[str, Any]]] = [
        ("ExecutionStarted", {}),
        ("StepScheduled", {"step_id": "plan"}),
        ("StepStarted", {"step_id": "plan"}),
    ]
    if index % 10 == 0:
        kinds += [("StepFailed", {"step_id": "plan"}), ("ExecutionFailed", {})]
    elif index % 10 != 1:  # one in ten stays running
        kinds += [("StepCompleted", {"step_id": "plan"}), ("ExecutionCompleted", {})]
    events: list[dict[str, Any]] = []
    for version, (event_type, payload) in enumerate(kinds, 1):
        events.append(
            sample_event(
                event_type,
                tenant_id=tenant,
                aggregate_id=run_id,
                aggregate_version=version,
                payload=payload,
                prev_hash=events[-1]["hash"] if events else "",
            )
        )
    return events


def seed_runs(bench: Stack, tenant: str, runs: int, timeout_s: float = 900.0) -> dict[str, Any]:
    """Publish ``runs`` runs to Kafka; wait until the PostgreSQL projection has them all."""
    serde = AvroSerde(SchemaCatalog.from_directory(bench.settings.schemas_dir))
    events = [e for index in range(runs) for e in _seed_run(tenant, index)]
    started = time.perf_counter()
    with EventProducer(bench.settings.kafka, serde) as producer:
        for event in events:
            producer.publish(event)
        producer.flush()
    published = time.perf_counter() - started
    table = sql.Identifier(schema_for(bench.settings.kafka.topic_prefix), "executions")
    query = sql.SQL("SELECT count(*) FROM {} WHERE tenant_id = %s").format(table)
    count = 0
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(bench.settings.postgres.dsn(), autocommit=True) as conn:
        while time.monotonic() < deadline:
            try:
                row = conn.execute(query, (tenant,)).fetchone()
                count = int(row[0]) if row else 0
            except psycopg.errors.UndefinedTable:
                count = 0
            if count >= runs:
                break
            time.sleep(1.0)
    projected = time.perf_counter() - started
    if count < runs:
        raise RuntimeError(f"the PostgreSQL projection applied {count} of {runs} runs")
    return {
        "runs": runs,
        "events": len(events),
        "publish_s": round(published, 1),
        "projected_s": round(projected, 1),
        "path": "Kafka (EventProducer, Avro) -> omium project postgres",
    }


# ------------------------------------------------------------------------- runs list timing

# Installed before the app's scripts: notes when the first run row is in the DOM, then changes
# the State filter at once (as a user's input would arrive) and notes when the app has handled
# it (the select shows it and the URL carries it), after the next frame.
_RUNS_PROBE = """
(() => {
  const bench = (window.__bench = { long: [] });
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      bench.long.push([Math.round(e.startTime), Math.round(e.duration)]);
    }
  }).observe({ type: 'longtask', buffered: true });
  const done = () => {
    const select = document.getElementById('f-state');
    return select && select.value === 'failed' && location.search.includes('status=failed');
  };
  const observer = new MutationObserver(() => {
    if (bench.rows !== undefined || !document.querySelector('[data-testid="run-row"]')) return;
    bench.rows = performance.now();
    setTimeout(() => {
      const select = document.getElementById('f-state');
      bench.input = performance.now();
      select.value = 'failed';
      select.dispatchEvent(new Event('change', { bubbles: true }));
      const check = () => {
        if (done()) {
          requestAnimationFrame(() => { bench.handled = performance.now(); });
        } else {
          setTimeout(check, 0);
        }
      };
      check();
    }, 0);
    observer.disconnect();
  });
  observer.observe(document, { childList: true, subtree: true });
})();
"""


def _session_script(token: str) -> str:
    """Signs the tab in as the UI's "keep me signed in" does (sessionStorage, never a URL)."""
    credential = json.dumps({"kind": "token", "value": token})
    return f"sessionStorage.setItem('omium.credential', {json.dumps(credential)});"


def _resources(page: Page) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = page.evaluate(
        """() => performance.getEntriesByType('resource').map((e) => ({
          name: e.name.replace(location.origin, ''), start: Math.round(e.startTime),
          end: Math.round(e.responseEnd), transfer: e.transferSize, body: e.encodedBodySize,
        }))"""
    )
    return entries


def runs_list_interactive(browser: Any, bench: Stack, tenant: str, *, cold: bool) -> dict[str, Any]:
    """Open /ui/runs signed in; when its first rows rendered and the filter was handled."""
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    try:
        context.add_init_script(_session_script(bench.token("viewer", tenant)))
        context.add_init_script(_RUNS_PROBE)
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        if cold:
            cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        else:  # a returning user: the hashed assets are in the cache (immutable for a year)
            page.goto(f"{bench.url}/ui/runs")
            page.wait_for_function("() => window.__bench && window.__bench.handled", timeout=30_000)
        page.goto(f"{bench.url}/ui/runs")
        page.wait_for_function("() => window.__bench && window.__bench.handled", timeout=30_000)
        marks: dict[str, Any] = page.evaluate("() => window.__bench")
        nav: dict[str, float] = page.evaluate(
            """() => { const n = performance.getEntriesByType('navigation')[0];
              return { response_end: n.responseEnd, dom_content_loaded: n.domContentLoadedEventEnd,
                       load: n.loadEventEnd }; }"""
        )
        rows = page.locator('[data-testid="run-row"]').count()
        resources = _resources(page)
    finally:
        context.close()
    return {
        "cache": "empty" if cold else "warm",
        "first_rows_ms": round(marks["rows"], 1),
        "filter_input_at_ms": round(marks["input"], 1),
        "filter_handled_ms": round(marks["handled"], 1),
        "filter_response_ms": round(marks["handled"] - marks["input"], 1),
        "interactive_s": round(marks["handled"] / 1000, 3),
        "rows_on_first_page": rows,
        "long_tasks_ms": marks["long"],  # [start, duration] of main-thread tasks > 50 ms
        "navigation": {k: round(v, 1) for k, v in nav.items()},
        "resources": resources,
    }


# ----------------------------------------------------------------------- live events timing

# Notes when each timeline row (data-event-id) enters the DOM, in epoch milliseconds.
_LIVE_PROBE = """
(() => {
  const seen = (window.__seen = {});
  const long = (window.__long = []);
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) long.push(e.duration);
  }).observe({ type: 'longtask', buffered: true });
  const note = (node) => {
    if (!(node instanceof Element)) return;
    const sel = '[data-event-id]';
    const rows = node.matches(sel) ? [node] : node.querySelectorAll(sel);
    const now = performance.timeOrigin + performance.now();
    for (const row of rows) {
      const id = row.getAttribute('data-event-id');
      if (!(id in seen)) seen[id] = now;
    }
  };
  new MutationObserver((records) => {
    for (const record of records) record.addedNodes.forEach(note);
  }).observe(document, { childList: true, subtree: true });
})();
"""


class Watch:
    """A thread noting when each event id shows up somewhere (epoch seconds)."""

    def __init__(self) -> None:
        """Nothing seen yet."""
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self, target: Any) -> None:
        """Run ``target`` in a daemon thread."""
        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop and join."""
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=10)


def watch_redis(bench: Stack, tenant: str, run_id: str) -> Watch:
    """The run's Redis stream: when each event was applied by the projection."""
    watch = Watch()
    stream = RedisKeys.for_prefix(bench.settings.kafka.topic_prefix).execution_events(
        tenant, run_id
    )
    client = redis.Redis.from_url(bench.settings.redis.url, decode_responses=True)

    def read() -> None:
        cursor = "0-0"
        while not watch.stop.is_set():
            found: Any = client.xread({stream: cursor}, count=500, block=200)
            now = time.time()
            for _, entries in found or ():
                for entry_id, fields in entries:
                    cursor = entry_id
                    watch.seen.setdefault(fields["event_id"], now)

    watch.start(read)
    return watch


def watch_sse(bench: Stack, tenant: str, run_id: str) -> Watch:
    """The gateway's SSE stream of the run, read by an HTTP client in this process."""
    watch = Watch()
    headers = {"Authorization": f"Bearer {bench.token('viewer', tenant)}"}
    url = f"{bench.url}/api/v1/executions/{run_id}/events"

    def read() -> None:
        with httpx.stream("GET", url, headers=headers, timeout=None) as response:
            for line in response.iter_lines():
                if watch.stop.is_set():
                    return
                if line.startswith("data: "):
                    watch.seen.setdefault(json.loads(line[6:])["event_id"], time.time())

    watch.start(read)
    return watch


_BUSY = ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration")


def _metrics(cdp: Any) -> dict[str, float]:
    """The page's main-thread time so far, by kind (seconds)."""
    found = cdp.send("Performance.getMetrics")["metrics"]
    return {m["name"]: float(m["value"]) for m in found if m["name"] in _BUSY}


def _hot_functions(profile: dict[str, Any], top: int = 12) -> list[dict[str, Any]]:
    """The profile's functions with the most self time (ms), with their file."""
    nodes = profile["nodes"]
    interval_ms = (
        (profile["endTime"] - profile["startTime"]) / 1000 / max(1, len(profile["samples"]))
    )
    totals: dict[tuple[str, str], float] = {}
    for node in nodes:
        frame = node["callFrame"]
        name = frame["functionName"] or "(anonymous)"
        where = f"{frame['url'].rsplit('/', 1)[-1]}:{frame['lineNumber']}" if frame["url"] else ""
        key = (name, where)
        totals[key] = totals.get(key, 0.0) + node.get("hitCount", 0) * interval_ms
    ranked = sorted(totals.items(), key=lambda item: -item[1])[:top]
    return [{"function": n, "where": w, "self_ms": round(ms)} for (n, w), ms in ranked]


def _chain(name: str, steps: int) -> dict[str, Any]:
    spec = {
        "name": name,
        "agents": {"worker": {"entrypoint": "bench.agents:work"}},
        "steps": [
            {"id": f"s{i}", "agent": "worker", **({"needs": [f"s{i - 1}"]} if i else {})}
            for i in range(steps)
        ],
    }
    return WorkflowDefinition.model_validate(spec).to_definition()


def drive(
    apps: CommandApplications, tenant: str, run: uuid.UUID, steps: int, rate: float, total: int
) -> dict[str, float]:
    """Store ``total`` events of the run at ``rate``/s; event id -> when its command returned.

    Steps in order, each scheduled and started, then failed, scheduled and started again as
    often as the total allows (a flaky agent), then completed; the run completes last.
    """
    ex = apps.executions
    per_step = max(3, (total - 1) // steps)
    retries = max(0, (per_step - 3) // 3)
    plan: list[tuple[str, str]] = []
    for index in range(steps):
        step = f"s{index}"
        plan += [("schedule", step), ("start", step)]
        plan += [("fail", step), ("schedule", step), ("start", step)] * retries
        plan.append(("complete", step))
    plan = plan[: total - 1] if len(plan) >= total else plan
    plan.append(("end", ""))
    committed: dict[str, float] = {}
    started = time.monotonic()
    for index, (action, step) in enumerate(plan):
        pause = started + index / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        if action == "schedule":
            result = ex.schedule_step(tenant, run, step_id=step)
        elif action == "start":
            result = ex.start_step(tenant, run, step_id=step)
        elif action == "fail":
            result = ex.fail_step(tenant, run, step_id=step, error="try again", error_type="Flaky")
        elif action == "complete":
            result = ex.complete_step(tenant, run, step_id=step, output={"step": step})
        else:
            result = ex.complete_execution(tenant, run, output={"steps": steps})
        committed[str(event_id_for(result.aggregate_id, result.version))] = time.time()
    return committed


def live_events(
    browser: Any, bench: Stack, tenant: str, *, rate: float, seconds: float, steps: int
) -> dict[str, Any]:
    """Drive a run at ``rate`` events/s with its page open; delays commit -> DOM."""
    token = bench.token("developer", tenant)
    definition = _chain("ui-budget-live", steps)
    response = httpx.post(
        f"{bench.url}/api/v1/workflows",
        headers={"Authorization": f"Bearer {token}"},
        json={"name": definition["name"], "definition": definition},
        timeout=30,
    )
    response.raise_for_status()
    workflow_id = uuid.UUID(response.json()["workflow_id"])
    env = event_store_env(bench.settings, schema=bench.schema, pool_size=2, max_overflow=2)
    with CommandApplications.create(env) as apps:
        run = apps.executions.start_execution(tenant, workflow_id=workflow_id, workflow_version=1)
        run_id = run.aggregate_id
        context = browser.new_context(viewport={"width": 1360, "height": 900})
        redis_watch = watch_redis(bench, tenant, str(run_id))
        kafka_watch = Arrivals(bench.settings)
        sse_watch: Watch | None = None
        try:
            context.add_init_script(_session_script(bench.token("viewer", tenant)))
            context.add_init_script(_LIVE_PROBE)
            page = context.new_page()
            cdp = context.new_cdp_session(page)
            cdp.send("Performance.enable")
            # The Kafka watch reads the topic from its start: let it pass the seeded runs first.
            first = str(event_id_for(run_id, run.version))
            kafka_watch.wait_for({first}, 120)
            page.goto(f"{bench.url}/ui/runs/{run_id}")
            # The page is following the run: its first event is on the timeline.
            page.wait_for_function(
                f"() => window.__seen && {json.dumps(first)} in window.__seen", timeout=60_000
            )
            sse_watch = watch_sse(bench, tenant, str(run_id))
            time.sleep(1.0)
            before = _metrics(cdp)
            long_before: int = page.evaluate("() => window.__long.length")
            cdp.send("Profiler.enable")
            cdp.send("Profiler.start")
            total = int(rate * seconds)
            started = time.monotonic()
            committed = drive(apps, tenant, run_id, steps, rate, total)
            elapsed = time.monotonic() - started
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                seen: dict[str, float] = page.evaluate("() => window.__seen")
                if set(committed) <= seen.keys():
                    break
                time.sleep(0.5)
            hot = _hot_functions(cdp.send("Profiler.stop")["profile"])
            busy = {k: round(v - before.get(k, 0.0), 2) for k, v in _metrics(cdp).items()}
            busy["seconds"] = round(time.monotonic() - started, 1)
            long_tasks: list[float] = page.evaluate("() => window.__long")[long_before:]
        finally:
            context.close()
            redis_watch.close()
            kafka_watch.close()
            if sse_watch is not None:
                sse_watch.close()
    dom = [(seen[e] / 1000 - t) * 1000 for e, t in committed.items() if e in seen]
    on_kafka = [
        (kafka_watch.seen[e] - t) * 1000 for e, t in committed.items() if e in kafka_watch.seen
    ]
    in_redis = [
        (redis_watch.seen[e] - t) * 1000 for e, t in committed.items() if e in redis_watch.seen
    ]
    on_sse = (
        [(sse_watch.seen[e] - t) * 1000 for e, t in committed.items() if e in sse_watch.seen]
        if sse_watch is not None
        else []
    )

    def stats(values: list[float]) -> dict[str, float]:
        return {
            "count": len(values),
            "p50_ms": round(percentile(values, 0.50), 1),
            "p95_ms": round(percentile(values, 0.95), 1),
            "max_ms": round(max(values, default=float("nan")), 1),
        }

    return {
        "offered_events_per_s": rate,
        "achieved_events_per_s": round(len(committed) / elapsed, 1),
        "events": len(committed),
        "workflow_steps": steps,
        "commit_to_dom": stats(dom),
        "commit_to_kafka": stats(on_kafka),
        "commit_to_redis": stats(in_redis),
        "commit_to_sse_client": stats(on_sse),
        "missing_in_dom": len(committed) - len(dom),
        # The renderer's main thread during the drive (CDP Performance metrics, seconds).
        "renderer_busy_s": busy,
        # Where its script time went: the CPU profile's top functions by self time.
        "hot_functions": hot,
        "long_tasks": {
            "count": len(long_tasks),
            "total_ms": round(sum(long_tasks), 1),
            "max_ms": round(max(long_tasks, default=0.0), 1),
        },
    }


def consume_wait(settings: OmiumSettings, timeout_s: float = 0.5) -> dict[str, float]:
    """How long ``Consumer.consume(500, timeout_s)`` takes when one message is waiting.

    The projections' runner polls this way (``poll_timeout_s`` 0.5 s, batches of 500):
    librdkafka returns when the batch is full or the timeout is over, so below 500 events per
    poll every batch waits out the timeout.
    """
    topic = f"{settings.kafka.topic_prefix}.consume-probe"
    admin = admin_client(settings.kafka)
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
    servers = settings.kafka.bootstrap_servers
    consumer = Consumer(
        {"bootstrap.servers": servers, "group.id": topic, "auto.offset.reset": "earliest"}
    )
    producer = Producer({"bootstrap.servers": servers})
    waits = []
    try:
        consumer.subscribe([topic])
        consumer.consume(10, 5.0)  # join the group
        for _ in range(3):
            producer.produce(topic, b"x")
            producer.flush()
            started = time.perf_counter()
            got = consumer.consume(500, timeout_s)
            if got:
                waits.append((time.perf_counter() - started) * 1000)
    finally:
        consumer.close()
        admin.delete_topics([topic])
    return {"timeout_ms": timeout_s * 1000, "median_wait_ms": round(sorted(waits)[len(waits) // 2])}


# ------------------------------------------------------------------------------------ report


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every measurement, in one run."""
    if not (DIST / "index.html").is_file():
        raise SystemExit("ui/dist is not built: cd ui && npm run build")
    base = load_settings()
    load_before = [round(x, 2) for x in os.getloadavg()]
    bundle = bundle_size()
    tenant = f"bench-ui-{uuid.uuid4().hex[:8]}"
    with stack(base, args.logs) as bench, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            console.print(f"seeding {args.runs} runs for {tenant} ...")
            seeded = seed_runs(bench, tenant, args.runs)
            console.print(seeded)
            lists = [
                runs_list_interactive(browser, bench, tenant, cold=cold)
                for cold in (True, False, True, False, True, False)
            ]
            console.print("driving a live run ...")
            live = live_events(
                browser, bench, tenant, rate=args.rate, seconds=args.seconds, steps=args.steps
            )
            version = browser.version
            consume = consume_wait(bench.settings)
        finally:
            browser.close()
    load_after = [round(x, 2) for x in os.getloadavg()]
    cold = [m for m in lists if m["cache"] == "empty"]
    warm = [m for m in lists if m["cache"] == "warm"]
    worst_cold = max(m["interactive_s"] for m in cold)
    median_cold = sorted(m["interactive_s"] for m in cold)[len(cold) // 2]
    p95_live = live["commit_to_dom"]["p95_ms"]
    return {
        "benchmark": "ui_budgets",
        "machine": {
            **describe_machine(["playwright", "fastapi", "uvicorn", "redis", "psycopg"]),
            "chromium": version,
            "load_average_before": load_before,
            "load_average_after": load_after,
        },
        "budgets": {
            "initial_js_kb": BUDGET_JS_KB,
            "runs_list_interactive_s": BUDGET_INTERACTIVE_S,
            "live_event_p95_ms": BUDGET_LIVE_MS,
        },
        "bundle": bundle,
        "seed": seeded,
        "runs_list": {
            "runs": args.runs,
            "cold_median_s": median_cold,
            "cold_worst_s": worst_cold,
            "warm_median_s": sorted(m["interactive_s"] for m in warm)[len(warm) // 2],
            "samples": lists,
        },
        "live": live,
        "projection_consume_wait": consume,
        "ratios": {
            "initial_js_kb_vs_budget": round(bundle["initial_js_gzip_kb"] / BUDGET_JS_KB, 3),
            "runs_list_interactive_s_vs_budget": round(median_cold / BUDGET_INTERACTIVE_S, 3),
            "live_event_p95_ms_vs_budget": round(p95_live / BUDGET_LIVE_MS, 3),
        },
    }


def _api_times(sample: dict[str, Any]) -> str:
    parts = []
    for entry in sample["resources"]:
        name = str(entry["name"]).split("?")[0]
        if name.startswith("/api/v1/") or name.endswith(".js"):
            short = name.rsplit("/", 1)[-1] if name.endswith(".js") else name[len("/api/v1") :]
            parts.append(f"{short} {entry['start']}-{entry['end']} ms")
    return "; ".join(parts)


def to_markdown(results: dict[str, Any]) -> str:
    """The section of docs/benchmarks.md."""
    machine, bundle, seed = results["machine"], results["bundle"], results["seed"]
    runs, live, ratios = results["runs_list"], results["live"], results["ratios"]
    dom, red, sse = live["commit_to_dom"], live["commit_to_redis"], live["commit_to_sse_client"]
    kaf, busy = live["commit_to_kafka"], live["renderer_busy_s"]
    files = ", ".join(f"`{f['file'].rsplit('/', 1)[-1]}`" for f in bundle["files"])
    return "\n".join(
        [
            "## Web UI budgets (`python -m bench.ui_budgets`)",
            "",
            f"Run {machine['date']} on {machine['cores']} cores ({machine['cpu']}), "
            f"{machine['memory_gib']} GiB, Chromium {machine['chromium']} (Debian, headless), "
            f"load average {machine['load_average_before']} before, "
            f"{machine['load_average_after']} after. The gateway (uvicorn, `ui/dist`), "
            "`omium relay`, `omium project postgres` and `omium project redis` run as their own "
            "processes on a fresh schema and topic prefix, on the same machine as the browser "
            "and the local stack.",
            "",
            "| budget | measured | ratio |",
            "|---|---|---|",
            f"| initial JS ≤ 300 KB gzipped | **{bundle['initial_js_gzip_kb']} KB** "
            f"({bundle['initial_js_bytes'] / 1000:.1f} KB raw; {files}; gzip -9) "
            f"+ {bundle['css_gzip_kb']} KB CSS | initial_js_kb_vs_budget "
            f"**{ratios['initial_js_kb_vs_budget']}** |",
            f"| runs list with {runs['runs']:,} runs interactive < 1 s "
            f"| **{runs['cold_median_s']} s** empty cache "
            f"(median of 3, worst {runs['cold_worst_s']} s); "
            f"{runs['warm_median_s']} s warm cache | runs_list_interactive_s_vs_budget "
            f"**{ratios['runs_list_interactive_s_vs_budget']}** |",
            f"| live event on the run page ≤ 500 ms at {live['offered_events_per_s']:g} events/s "
            f"| **p95 {dom['p95_ms']} ms** (p50 {dom['p50_ms']} · max {dom['max_ms']}; "
            f"{dom['count']} events at {live['achieved_events_per_s']}/s) "
            f"| live_event_p95_ms_vs_budget **{ratios['live_event_p95_ms_vs_budget']}** |",
            "",
            f"**Seeding.** {seed['runs']:,} runs ({seed['events']:,} events: started, one step, "
            "completed; one in ten failed, one in ten still running) published to Kafka as Avro "
            "events and applied by `omium project postgres`, the path a real run's facts take "
            f"into the read model the list reads: {seed['publish_s']} s to publish, "
            f"{seed['projected_s']} s until all {seed['runs']:,} rows were there.",
            "",
            '**Runs list.** A tab signed in as the UI\'s "keep me signed in" leaves it '
            "(sessionStorage) opens `/ui/runs`; the page records when the first row is in "
            "the DOM and, a State filter change dispatched at once, when the select and the URL "
            "show it after the next frame. Interactive = that moment, from navigation start. "
            "Three samples with an empty HTTP cache (CDP `Network.setCacheDisabled`: a first "
            "visit), three with a warm one (a reload; the hashed assets are immutable). The API "
            "pages the list (50 rows), so 10,000 runs cost one keyset-paged query a page.",
            "",
            f"**Live events.** A {live['workflow_steps']}-step workflow's run driven through the "
            f"event store's commands at {live['offered_events_per_s']:g} events/s "
            "(each step scheduled, started, failed and retried, completed) while its page is "
            "open; delay = the row's entry in the DOM (a MutationObserver in the page) minus the "
            "return of the command that stored the event. Where the time goes, same events: "
            f"commit → on Kafka (relay; a read-committed consumer) p50 {kaf['p50_ms']} · "
            f"p95 {kaf['p95_ms']} ms; "
            f"commit → in Redis (+ Redis projection) p50 {red['p50_ms']} · "
            f"p95 {red['p95_ms']} ms; commit → on the gateway's SSE stream (an HTTP client "
            f"beside the browser) p50 {sse['p50_ms']} · p95 {sse['p95_ms']} ms; commit → DOM "
            f"p50 {dom['p50_ms']} · p95 {dom['p95_ms']} ms. The page's main thread had "
            f"{live['long_tasks']['count']} long tasks (> 50 ms) totalling "
            f"{live['long_tasks']['total_ms']} ms (longest {live['long_tasks']['max_ms']} ms); "
            f"its main thread was busy {busy.get('TaskDuration', 0)} s of the "
            f"{busy.get('seconds', 0)} s drive (script {busy.get('ScriptDuration', 0)} s, "
            f"layout {busy.get('LayoutDuration', 0)} s, style "
            f"{busy.get('RecalcStyleDuration', 0)} s).",
            "",
            *_where_the_time_goes(results),
        ]
    )


def _where_the_time_goes(results: dict[str, Any]) -> list[str]:
    """The paragraphs that read the figures: which stage holds the time."""
    live, wait = results["live"], results.get("projection_consume_wait")
    dom, red, sse = live["commit_to_dom"], live["commit_to_redis"], live["commit_to_sse_client"]
    kaf = live["commit_to_kafka"]
    lines = [
        "**Where a live event's time goes** (p50 differences between the stages above): "
        f"the relay puts it on Kafka in {kaf['p50_ms']} ms; the Redis projection adds "
        f"{red['p50_ms'] - kaf['p50_ms']:.0f} ms; the gateway's SSE "
        f"{sse['p50_ms'] - red['p50_ms']:.0f} ms; the browser (reading the stream, the page's "
        f"50 ms render batch, React) {dom['p50_ms'] - sse['p50_ms']:.0f} ms.",
    ]
    cold = sorted(
        (m for m in results["runs_list"]["samples"] if m["cache"] == "empty"),
        key=lambda m: m["interactive_s"],
    )
    if cold:
        median = cold[len(cold) // 2]

        def span(prefix: str) -> str:
            found = [r for r in median["resources"] if str(r["name"]).startswith(prefix)]
            return f"{found[0]['start']}-{found[0]['end']} ms" if found else "—"

        script = next((r for r in median["resources"] if str(r["name"]).endswith(".js")), None)
        busy = sum(d for _, d in median["long_tasks_ms"] if _ < median["first_rows_ms"])
        lines += [
            "",
            "**Where the runs list's time goes** (the median empty-cache sample, ms from "
            f"navigation): the entry script arrives by {script['end'] if script else '—'}; "
            f"the session check (`/whoami`) runs {span('/api/v1/whoami')} once the script has "
            f"been parsed and run; the first page of runs {span('/api/v1/executions')} "
            f"and the workflows {span('/api/v1/workflows')}; first rows at "
            f"{median['first_rows_ms']}; the filter change handled "
            f"{median['filter_response_ms']} ms after it was made. Main-thread tasks over 50 ms "
            f"before the first rows: {busy} ms (parsing, compiling on first use and React's "
            "first renders, on a machine whose load average is in the header). All requests: "
            f"{_api_times(median)}.",
        ]
    if wait is not None:
        lines[0] += (
            " The projection's share is its poll: the projections' runner asks Kafka for a "
            f"batch with `consume(500, timeout={wait['timeout_ms'] / 1000:g} s)`, and "
            "librdkafka returns when the batch is full or the timeout is over, so below 500 "
            "events a poll every event waits out the rest of the timeout (measured in this run: "
            f"with one message waiting, `consume(500, {wait['timeout_ms'] / 1000:g})` returned "
            f"after {wait['median_wait_ms']} ms). At 50 events/s that is ~"
            f"{wait['timeout_ms'] / 2:.0f} ms on average and up to {wait['timeout_ms']:.0f} ms, "
            "on its own most of the 500 ms budget; a poll that returns what has arrived "
            "(block for the first message, then take what is already fetched) would remove it."
        )
    return lines


def main() -> None:
    """Parse flags, run, write ``bench/results/ui_budgets.json`` and the docs section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000, help="runs seeded for the list")
    parser.add_argument("--rate", type=float, default=50.0, help="live events per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the live run")
    parser.add_argument("--steps", type=int, default=20, help="steps of the live run's workflow")
    parser.add_argument("--logs", type=Path, default=Path(".omium/logs"))
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite the docs section from the results"
    )
    parser.add_argument("--serve-gateway", metavar="SCHEMA", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_gateway:
        serve_gateway(args.serve_gateway, args.port)
        return
    if args.report_only:
        stored = json.loads((RESULTS_DIR / "ui_budgets.json").read_text(encoding="utf-8"))
        update_doc_section("ui_budgets", to_markdown(stored))
        return
    args.logs.mkdir(parents=True, exist_ok=True)
    results = run(args)
    console.print(to_markdown(results))
    if args.no_write:
        console.print_json(data={k: v for k, v in results.items() if k != "machine"})
    else:
        path = write_results("ui_budgets", results)
        update_doc_section("ui_budgets", to_markdown(results))
        console.print(f"[green]wrote[/] {path}")


if __name__ == "__main__":
    main()
