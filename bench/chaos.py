"""Fault injection under load: nothing acknowledged is lost, nothing happens twice, runs finish.

``python -m bench.chaos`` starts its own stack (``--data-dir``, default ``.omium/chaos``; the
three KRaft brokers of ``--profile ha``, PostgreSQL, Redis, OpenSearch and moto on ports apart
from the shared stack's, see ``bench/_chaos/_stack.py``) and its own Omium processes (gateway,
relay, each stream processor, the orchestrator, an execution worker, each projection), all on
127.0.0.1. It drives steady load through the gateway (research-report runs with checkpoints, LLM
calls of the scripted provider, a hallucination, a rollback and three reviewers' votes; consensus
rounds with votes) and injects one fault at a time, round-robin over the chosen kinds, until
``--duration`` has passed: kill -9 of each kind of Omium process, kill -9 of one broker (brought
back), PostgreSQL, Redis and OpenSearch stopped and started, a process paused (SIGSTOP) past its
session timeout and resumed. Then it checks from the outside (``bench/_chaos/_check.py``) and runs
``omium verify --all``. The table is printed and written to ``bench/results/chaos.json``.

Exit status 0 when nothing acknowledged was lost or duplicated, every run ended, every fault was
recovered from and the hash chains verify; 1 otherwise. See docs/reliability.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench._chaos._check import Checker, Findings
from bench._chaos._faults import Faults, Injection
from bench._chaos._load import Gateway, Ledger, Load, set_up
from bench._chaos._stack import OMIUM, ROOT, ChaosStack, Ports
from bench._machine import describe_machine
from bench._report import RESULTS_DIR

console = Console(highlight=False)

DEFAULT_FAULTS = (
    "kill-gateway",
    "kill-relay",
    "kill-commands",
    "kill-consensus",
    "kill-recovery",
    "kill-policy",
    "kill-approvals",
    "kill-orchestrator",
    "kill-execute",
    "kill-project-postgres",
    "kill-project-redis",
    "kill-project-opensearch",
    "restart-postgres",
    "restart-redis",
    "restart-opensearch",
    "pause-process",
    # Last: librdkafka can hang in send_offsets_to_transaction after a broker death (see
    # docs/reliability.md), and the runner then restarts every process.
    "kill-broker",
)


def main(argv: list[str] | None = None) -> int:
    """Run the faults; 0 when every guarantee held."""
    args = _parse(argv)
    faults = [f for f in args.faults.split(",") if f]
    unknown = sorted(set(faults) - set(DEFAULT_FAULTS))
    if unknown:
        console.print(
            f"[red]unknown faults: {', '.join(unknown)}[/] (known: {', '.join(DEFAULT_FAULTS)})"
        )
        return 2
    stack = ChaosStack(Path(args.data_dir), Ports().shifted(args.port_offset))
    if stack.reap_orphans():
        console.print("[dim]stopped Omium processes a previous run left behind[/]")
    began = time.monotonic()
    try:  # a stack that started only in part is stopped too: its ports would fail the next run
        with console.status(
            "Starting the runner's stack (3 brokers, PostgreSQL, Redis, OpenSearch, moto)"
        ):
            stack.up()
            from omium.kernel.kafka import ensure_topics

            ensure_topics(stack.settings.kafka, timeout_s=60)
        console.print(f"Stack up in {time.monotonic() - began:.0f} s: {stack.data_dir}")
        document = _run(stack, faults, args)
    finally:
        with console.status("Stopping the Omium processes"):
            stack.stop_all()
        if not args.keep_stack:
            with console.status("Stopping the runner's stack"):
                stack.down()
    path = Path(args.output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    console.print(f"Results in {path}")
    return 0 if document["ok"] else 1


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.chaos", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=600.0,
        help="Seconds of faults (default 600); the checks come after.",
    )
    parser.add_argument(
        "--faults",
        default=",".join(DEFAULT_FAULTS),
        help="Comma-separated fault kinds (default: all).",
    )
    parser.add_argument(
        "--max-per-fault",
        type=int,
        default=0,
        help="Injections per kind at most (0: until --duration).",
    )
    parser.add_argument(
        "--run-every", type=float, default=10.0, help="Seconds between research-report runs."
    )
    parser.add_argument(
        "--round-every", type=float, default=6.0, help="Seconds between consensus rounds."
    )
    parser.add_argument(
        "--outage", type=float, default=8.0, help="Seconds a broker or store stays down."
    )
    parser.add_argument(
        "--gap", type=float, default=3.0, help="Seconds of plain load between faults."
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=300.0,
        help="Seconds allowed for runs to end and read models to catch up.",
    )
    parser.add_argument(
        "--canary-timeout",
        type=float,
        default=120.0,
        help="Seconds a canary may take before the fault counts as not recovered.",
    )
    parser.add_argument(
        "--port-offset",
        type=int,
        default=0,
        help="Added to every port of the runner's stack (to run two side by side).",
    )
    parser.add_argument(
        "--data-dir", default=str(ROOT / ".omium" / "chaos"), help="The runner's stack.data_dir."
    )
    parser.add_argument(
        "--output", default=str(RESULTS_DIR / "chaos.json"), help="Where the JSON report goes."
    )
    parser.add_argument(
        "--keep-stack", action="store_true", help="Leave the runner's infrastructure running."
    )
    return parser.parse_args(argv)  # fmt: skip


def _run(stack: ChaosStack, faults: list[str], args: argparse.Namespace) -> dict[str, Any]:
    with console.status("Starting the Omium processes"):
        stack.start_all()
    tenant = f"chaos-{uuid.uuid4().hex[:8]}"
    ledger = Ledger()
    gateway = Gateway(stack.gateway_url, stack.settings, tenant, ledger, give_up_s=120.0)
    setup = set_up(gateway)
    injector = Faults(
        stack, gateway, setup, tenant, outage_s=args.outage, canary_timeout_s=args.canary_timeout
    )
    began = time.monotonic()
    if injector.canary() is None:
        raise RuntimeError(
            "the canary does not go through before any fault; last read: "
            f"{injector.last_canary or 'no run or round accepted by the gateway'}; "
            f"logs in {stack.logs}"
        )
    canary_s = time.monotonic() - began
    console.print(f"Tenant {tenant}; a canary takes {canary_s:.1f} s without faults.")
    injections: list[Injection] = []
    load_began = time.monotonic()
    with Load(gateway, setup, run_every_s=args.run_every, round_every_s=args.round_every):
        time.sleep(args.gap)
        deadline = time.monotonic() + args.duration
        turn = 0
        while time.monotonic() < deadline:
            fault = faults[turn % len(faults)]
            turn += 1
            if args.max_per_fault and turn > args.max_per_fault * len(faults):
                break
            injection = injector.inject(fault)
            injections.append(injection)
            recovery = (
                "not recovered" if injection.recovery_s is None else f"{injection.recovery_s:.1f} s"
            )
            console.print(f"  {fault} ({injection.target}): recovered in {recovery}")
            stack.check_alive()
            time.sleep(args.gap)
    load_s = time.monotonic() - load_began
    findings = _settle(stack, tenant, ledger, args.settle)
    verified = _verify(stack)
    gateway.close()
    return _document(faults, injections, ledger, findings, verified, canary_s, load_s, args)


def _settle(stack: ChaosStack, tenant: str, ledger: Ledger, settle_s: float) -> Findings:
    """Wait for the runs to end and the read models to catch up, then check."""
    checker = Checker(stack.settings, tenant)
    deadline = time.monotonic() + settle_s
    runs = [a.aggregate_id for a in ledger.acks if a.kind in ("start", "canary")]
    with console.status(f"Waiting for {len(runs)} runs to end"):
        checker.wait_runs(runs, settle_s)
    with console.status("Checking every acknowledged command"):
        while True:
            findings = checker.check(list(ledger.acks))
            if not (findings.lost() or findings.unfinished()) or time.monotonic() > deadline:
                return findings
            time.sleep(10)


def _verify(stack: ChaosStack) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMIUM_")}
    env.update(stack.env)
    with console.status("omium verify --all"):
        done = subprocess.run(
            [OMIUM, "verify", "--all", "--json"],
            env=env, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
    try:
        report = json.loads(done.stdout)
    except ValueError:
        report = {"ok": False, "error": done.stderr[-2000:]}
    return {
        "exit_code": done.returncode,
        "ok": done.returncode == 0 and bool(report.get("ok")),
        "aggregates": report.get("aggregates"),
        "kafka_events": report.get("kafka_events"),
        "kafka_duplicates": report.get("kafka_duplicates"),
        "breaks": report.get("breaks", [])[:10],
        "error": report.get("error"),
    }


def _document(
    faults: list[str],
    injections: list[Injection],
    ledger: Ledger,
    findings: Findings,
    verified: dict[str, Any],
    canary_s: float,
    load_s: float,
    args: argparse.Namespace,
) -> dict[str, Any]:
    ordered = sorted(injections, key=lambda i: i.began)

    def window(at: float) -> str:
        fault = "baseline"
        for injection in ordered:
            if injection.began <= at:
                fault = injection.fault
        return fault

    per: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"acknowledged": 0, "lost": 0, "duplicated": 0, "runs": 0, "unfinished": 0,
                 "examples": []}
    )  # fmt: skip
    unfinished = set(findings.unfinished())
    for finding in findings.acks:
        row = per[window(finding.ack.at)]
        row["acknowledged"] += 1
        row["lost"] += bool(finding.missing)
        row["duplicated"] += bool(finding.duplicated)
        if finding.ack.kind in ("start", "canary"):
            row["runs"] += 1
            row["unfinished"] += finding.ack.aggregate_id in unfinished
        if (finding.missing or finding.duplicated) and len(row["examples"]) < 5:
            row["examples"].append(
                {"kind": finding.ack.kind, "aggregate_id": finding.ack.aggregate_id,
                 "version": finding.ack.version, "missing": finding.missing,
                 "duplicated": finding.duplicated}
            )  # fmt: skip
    entries = []
    for fault in faults:
        done = [i for i in injections if i.fault == fault]
        if not done:
            continue
        recoveries = [i.recovery_s for i in done]
        measured = [r for r in recoveries if r is not None]
        row = per[fault]
        entries.append({
            "fault": fault,
            "count": len(done),
            "targets": sorted({i.target for i in done}),
            "acknowledged": row["acknowledged"],
            "lost": row["lost"],
            "duplicated": row["duplicated"],
            "runs": row["runs"],
            "unfinished_runs": row["unfinished"],
            "recovery_s": round(max(measured), 1) if measured else None,
            "recovery_s_each": [None if r is None else round(r, 1) for r in recoveries],
            "recovered": len(measured) == len(done),
            "examples": row["examples"],
            "notes": [n for i in done for n in i.notes],
        })  # fmt: skip
    statuses: dict[str, int] = defaultdict(int)
    for status in findings.runs.values():
        statuses[status] += 1
    totals = {
        "acknowledged": len(findings.acks),
        "lost": len(findings.lost()),
        "duplicated": len(findings.duplicated()),
        "runs": len(findings.runs),
        "unfinished_runs": len(findings.unfinished()),
        "run_statuses": dict(statuses),
        "effect_duplicates": findings.effect_duplicates,
        "kafka_messages_read": findings.kafka_messages,
        "refused": dict(ledger.refused),
        "given_up": dict(ledger.given_up),
        "server_errors": dict(ledger.server_errors),
        "baseline": {k: v for k, v in per["baseline"].items() if k != "examples"},
    }
    ok = (
        totals["lost"] == 0
        and totals["duplicated"] == 0
        and totals["unfinished_runs"] == 0
        and all(e["recovered"] for e in entries)
        and verified["ok"]
    )
    _print(entries, totals, verified)
    load = os.getloadavg()
    return {
        "name": "chaos",
        "ok": ok,
        "machine": describe_machine(["confluent-kafka", "psycopg", "redis", "httpx", "fastapi"]),
        "load_average": {"1m": load[0], "5m": load[1], "15m": load[2]},
        "config": {
            "duration_s": args.duration,
            "load_s": round(load_s, 1),
            "run_every_s": args.run_every,
            "round_every_s": args.round_every,
            "outage_s": args.outage,
            "gap_s": args.gap,
            "brokers": 3,
            "replication_factor": 3,
            "min_insync_replicas": 2,
            "canary_s_without_faults": round(canary_s, 1),
        },
        "faults": entries,
        "totals": totals,
        "verify": verified,
    }


def _print(entries: list[dict[str, Any]], totals: dict[str, Any], verified: dict[str, Any]) -> None:
    table = Table(
        title="Faults under load (recovery_s: from the fault's removal until a canary run and "
        "round are seen everywhere)"
    )
    for column in (
        "fault",
        "count",
        "acknowledged",
        "lost",
        "duplicated",
        "unfinished runs",
        "recovery_s (max)",
    ):
        table.add_column(column, justify="left" if column == "fault" else "right")
    for e in entries:
        recovery = "-" if e["recovery_s"] is None else f"{e['recovery_s']:.1f}"
        if not e["recovered"]:
            recovery += " (not all)"
        table.add_row(
            e["fault"], str(e["count"]), str(e["acknowledged"]), _mark(e["lost"]),
            _mark(e["duplicated"]), _mark(e["unfinished_runs"]), recovery,
        )  # fmt: skip
    console.print(table)
    console.print(
        f"Total: {totals['acknowledged']} acknowledged, {_mark(totals['lost'])} lost, "
        f"{_mark(totals['duplicated'])} duplicated; {totals['runs']} runs "
        f"{totals['run_statuses']}; effects twice: {totals['effect_duplicates'] or 'none'}; "
        f"5xx answers: {totals['server_errors'] or 'none'}; "
        f"given up: {totals['given_up'] or 'none'}"
    )
    console.print(
        "omium verify --all: "
        + ("[green]every hash chain intact[/]" if verified["ok"] else f"[red]FAILED[/] {verified}")
    )


def _mark(count: int) -> str:
    return f"[red]{count}[/]" if count else "0"


if __name__ == "__main__":
    raise SystemExit(main())
