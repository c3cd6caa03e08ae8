"""The demo's run: start the parts, register, run, follow, read the timeline back, check it."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from omium.cli import _demo as d
from omium.cli._demo_timeline import Recorded, of_type, read_run, rows
from omium.cli._pipeline import Pipeline
from omium.kernel.errors import OmiumError
from omium.kernel.kafka import ensure_topics
from omium.kernel.serde import AvroSerde, SchemaCatalog
from omium.kernel.settings import OmiumSettings
from omium.sdk.providers import providers_from_settings
from omium.sdk.workflow import WorkflowDefinition, load_workflow

ENDED = ("completed", "failed", "halted", "cancelled")


@dataclass(frozen=True)
class DemoRun:
    """What the demo ran."""

    tenant: str
    workflow: WorkflowDefinition
    workflow_id: UUID
    version: int
    execution_id: UUID
    view: Any
    events: list[Recorded]


def run_demo(
    settings: OmiumSettings,
    *,
    tenant: str,
    schema: str,
    timeout_s: float,
    verbose: bool,
    projections: Sequence[str],
    console: Console,
    log_file: Path,
) -> bool:
    """Run the demo; return whether the run went as designed."""
    started = time.monotonic()
    try:
        ensure_topics(settings.kafka, timeout_s=10)
    except OmiumError as exc:
        console.print(
            f"[bold red]The local stack is not reachable[/] ({exc}).\n"
            "Start it with [bold]omium up --profile full[/] (or [bold]make demo[/])."
        )
        return False
    console.print(f"[dim]{d.settings_summary(settings)}; logs in {log_file}[/]")
    pipeline = Pipeline(
        settings,
        schema=schema,
        providers=_providers(settings),
        instance_id=f"demo-{tenant}",
        projections=projections,
    )
    with console.status("Starting the relay, 4 stream processors, the orchestrator and a worker"):
        pipeline.start()
    console.print(
        f"Started {', '.join(pipeline.parts + [f'{p} read model' for p in projections])}"
        f" (one thread each) in {d.elapsed(started)}."
    )
    try:
        run = _run(pipeline, tenant, timeout_s, console)
        if run is None:
            return False
        _show(run, console, verbose=verbose)
        ok = _verify(run, console)
        _where_to_look(run, settings, pipeline, console, log_file)
    finally:
        with console.status("Stopping every part"):
            pipeline.stop()
    console.print(
        f"Demo finished in {d.elapsed(started)}: "
        + (
            "[bold green]the run went as designed.[/]"
            if ok
            else "[bold red]the run did NOT go as designed.[/]"
        )
    )
    return ok


def _providers(settings: OmiumSettings) -> dict[str, Any]:
    script = settings.llm.script_path or d.SCRIPT_FILE
    return dict(providers_from_settings(settings.llm.model_copy(update={"script_path": script})))


# ---------------------------------------------------------------------------- the run


def _run(pipeline: Pipeline, tenant: str, timeout_s: float, console: Console) -> DemoRun | None:
    apps = pipeline.apps
    assert apps is not None
    workflow = load_workflow(d.WORKFLOW_FILE)
    policies = d.publish_policies(apps, tenant)
    workflow_id, version = d.register_workflow(apps, tenant, workflow.to_definition())
    console.print(
        f"Tenant [bold]{tenant}[/]: published policies {', '.join(policies)}; "
        f"registered workflow [bold]{workflow.name}[/] v{version} "
        f"({len(workflow.agents)} agents, steps "
        f"{' → '.join(workflow.topological_order())})."
    )
    since = d.now()
    started = apps.executions.start_execution(
        tenant,
        workflow_id=workflow_id,
        workflow_version=version,
        input={"requested_by": "omium demo"},
        **workflow.run_budget(),
    )
    execution_id = started.aggregate_id
    console.print(f"Started run [bold]{execution_id}[/].")
    view = _follow(pipeline, tenant, execution_id, timeout_s, console)
    if view is None:
        return None
    with console.status("Reading the run's events back from Kafka"):
        events = read_run(
            pipeline.settings.kafka,
            AvroSerde(SchemaCatalog.from_directory(pipeline.settings.schemas_dir)),
            str(execution_id),
            since=since,
        )
    return DemoRun(tenant, workflow, workflow_id, version, execution_id, view, events)


def _follow(
    pipeline: Pipeline, tenant: str, execution_id: UUID, timeout_s: float, console: Console
) -> Any | None:
    apps = pipeline.apps
    assert apps is not None
    deadline = time.monotonic() + timeout_s
    started = time.monotonic()
    with console.status("Running") as status:
        while True:
            try:
                pipeline.check()
            except RuntimeError as exc:
                console.print(f"[bold red]A part of the pipeline stopped:[/] {exc}")
                return None
            view = apps.executions.get_execution(tenant, execution_id)
            steps = ", ".join(f"{s.step_id} {s.status} (attempt {s.attempts})" for s in view.steps)
            status.update(f"Run {view.state} after {d.elapsed(started)}: {steps or 'starting'}")
            if view.state in ENDED:
                console.print(f"Run {view.state} in {d.elapsed(started)}.")
                return view
            if time.monotonic() > deadline:
                console.print(
                    f"[bold red]The run is still {view.state} after {timeout_s:g}s:[/] {steps}"
                )
                return None
            time.sleep(0.2)


# ---------------------------------------------------------------------------- showing it


def _show(run: DemoRun, console: Console, *, verbose: bool) -> None:
    table = Table(
        title=f"Timeline of run {run.execution_id}",
        title_justify="left",
        show_lines=False,
        expand=True,
    )
    for column, options in (
        ("+s", {"justify": "right", "width": 6}),
        ("by", {"width": 12}),
        ("event", {"width": 24}),
        ("step", {"width": 8}),
        ("details", {}),
    ):
        table.add_column(column, **options)
    for row in rows(run.events, verbose=verbose):
        table.add_row(
            f"{row.offset_s:.2f}",
            row.by,
            f"[{row.style}]{row.what}[/]" if row.style else row.what,
            row.step,
            row.detail,
        )
    console.print(table)
    console.print(_steps_table(run))
    console.print(_recovery_panel(run))
    console.print(_consensus_panel(run))
    console.print(_policy_and_cost_panel(run))


def _steps_table(run: DemoRun) -> Table:
    table = Table(title="Steps", title_justify="left")
    for column in ("step", "agent", "status", "attempts", "checkpoints", "output"):
        table.add_column(column)
    for step in run.view.steps:
        spec = run.workflow.step(step.step_id)
        points = [c.position for c in run.view.checkpoints if c.step_id == step.step_id]
        agent = step.agent or (
            "consensus of " + ", ".join(spec.consensus.participants) if spec.consensus else "-"
        )
        table.add_row(
            step.step_id,
            agent,
            step.status,
            str(step.attempts),
            ", ".join(points) or "-",
            _summary(step.output),
        )
    return table


def _summary(output: Any) -> str:
    if not isinstance(output, dict):
        return "-"
    if "decision" in output:
        return f"decision {output['decision']} ({json.dumps(output.get('tally'))})"
    if "report" in output:
        return str(output["report"]).splitlines()[0][:60]
    if "facts" in output:
        return f"{len(output['facts'])} facts, {len(output.get('sources') or {})} sources"
    return ", ".join(sorted(output))[:60]


def _recovery_panel(run: DemoRun) -> Panel:
    lines = []
    for failure in of_type(run.events, "FailureDetected"):
        p = failure.payload
        lines.append(
            f"[red]Detected[/] on {p['step_id']} attempt {p['attempt']} by "
            f"{p['detected_by']}: [bold]{p['kind']}[/] — {p['message'][:160]}"
        )
    for plan in of_type(run.events, "RecoveryPlanned"):
        p = plan.payload
        lines.append(
            f"[yellow]Planned[/] by the recovery processor: [bold]{p['plan']}[/] "
            f"({p['reason']}; {p['similar_failure_count']} similar failure(s) before)"
        )
    for rollback in of_type(run.events, "ExecutionRolledBack"):
        p = rollback.payload
        lines.append(
            f"[yellow]Rolled back[/] to checkpoint {p['checkpoint_id']} "
            f"({p['position']} {p['resume_step_id']}); the worker restored its state "
            "(SHA-256 verified) and ran the step again"
        )
    for done in of_type(run.events, "StepCompleted"):
        p = done.payload
        if p["attempt"] > 1:
            lines.append(
                f"[green]Recovered[/]: {p['step_id']} passed every post-condition "
                f"on attempt {p['attempt']}"
            )
    return Panel(
        "\n".join(lines) or "No failure.", title="Failure and recovery", title_align="left"
    )


def _consensus_panel(run: DemoRun) -> Panel:
    votes = [
        f"  {v.payload['voter']}: [bold]{v.payload['decision']}[/] — "
        f"{v.payload.get('rationale') or ''}"
        for v in of_type(run.events, "VoteCast")
    ]
    decided = of_type(run.events, "ConsensusReached", "ConsensusFailed")
    outcome = "no decision recorded"
    if decided:
        p = decided[0].payload
        outcome = (
            f"[bold]{p.get('decision') or p.get('reason')}[/] "
            f"(tally {json.dumps(p['tally'])}, decided by {decided[0].source})"
        )
    return Panel(
        "\n".join(["Votes:", *votes, f"Outcome: {outcome}"]), title="Consensus", title_align="left"
    )


def _policy_and_cost_panel(run: DemoRun) -> Panel:
    calls = [
        s.payload for s in of_type(run.events, "SpanRecorded") if s.payload["kind"] == "llm_call"
    ]
    tokens = sum(c["tokens_in"] + c["tokens_out"] for c in calls)
    cost = sum(c["cost_usd"] for c in calls)
    budget = run.workflow.policies.budget
    lines = [f"LLM calls: {len(calls)} · tokens {tokens:,} · cost ${cost:.6f}"]
    if budget is not None:
        lines.append(
            f"Budget ({budget.on_exceed} on exceed): ${budget.max_cost_usd} · "
            f"{budget.max_tokens:,} tokens · {budget.max_llm_calls} calls — "
            f"used {cost / (budget.max_cost_usd or 1):.2%} of the cost"
        )
    violations = of_type(run.events, "PolicyViolated", "PolicyEvaluationError")
    checked = len(of_type(run.events, "StepCompleted")) + len(calls)
    lines.append(
        f"Policies ({', '.join(n for n, _, _ in d.POLICIES)}) evaluated by the policy "
        f"processor on {checked} step outputs and LLM calls:"
    )
    for name, _, mode in d.POLICIES:
        found = [v for v in violations if v.payload["policy_id"] == name]
        verdict = (
            "no violation"
            if not found
            else "; ".join(
                "; ".join(v.payload.get("messages") or [v.payload.get("error", "")]) for v in found
            )
        )
        lines.append(f"  {name} ({mode}): {verdict}")
    return Panel("\n".join(lines), title="Policies and cost", title_align="left")


# ---------------------------------------------------------------------------- checks


def _verify(run: DemoRun, console: Console) -> bool:
    events = run.events
    failures = [f.payload for f in of_type(events, "FailureDetected")]
    completed_drafts = [
        e.payload for e in of_type(events, "StepCompleted") if e.payload["step_id"] == "draft"
    ]
    decided = [e.payload for e in of_type(events, "ConsensusReached")]
    denies = [v for v in of_type(events, "PolicyViolated") if v.payload["mode"] == "deny"]
    checks = [
        ("the run completed", run.view.state == "completed"),
        (
            "the hallucinated draft was detected (grounded post-condition)",
            any(f["kind"] == "hallucination" and f["step_id"] == "draft" for f in failures),
        ),
        (
            "recovery planned a rollback",
            any(p.payload["plan"] == "rollback" for p in of_type(events, "RecoveryPlanned")),
        ),
        ("the run was rolled back to a checkpoint", bool(of_type(events, "ExecutionRolledBack"))),
        ("the draft passed on a later attempt", any(p["attempt"] > 1 for p in completed_drafts)),
        ("the reviewers reached consensus", any(p["decision"] == "publish" for p in decided)),
        ("no deny-mode policy was violated", not denies),
    ]
    table = Table(title="Went as designed?", title_justify="left", show_header=False)
    table.add_column("")
    table.add_column("check")
    for text, passed in checks:
        table.add_row("[green]✓[/]" if passed else "[red]✗[/]", text)
    console.print(table)
    return all(passed for _, passed in checks)


def _where_to_look(
    run: DemoRun, settings: OmiumSettings, pipeline: Pipeline, console: Console, log_file: Path
) -> None:
    api = f"http://{settings.gateway.host}:{settings.gateway.port}/api/v1"
    x = run.execution_id
    read_model = (
        "kept current by this demo"
        if "postgres" in pipeline.projections
        else "fill it with `omium project postgres`"
    )
    auth = '-H "Authorization: Bearer $TOKEN"'
    lines = [
        f"The API: start [bold]omium gateway[/] (OpenAPI UI on {api.removesuffix('/api/v1')}/docs),"
        " then",
        f"  export TOKEN=$(omium token --sub you --tenant {run.tenant} --role viewer)",
        f"  export RUN={api}/executions/{x}",
        f"  curl {auth} $RUN/timeline    [dim]# steps and every event, from the PostgreSQL "
        f"read model ({read_model})[/]",
        f"  curl {auth} $RUN             [dim]# the run as the write side has it[/]",
        f"  curl -N {auth} $RUN/events   [dim]# its events as a live stream (SSE; needs "
        "`omium project redis`)[/]",
        f"  curl {auth} {api}/traces/{x.hex}   [dim]# its spans (`omium project opensearch`)[/]",
        f"The web UI: open [bold]{api.removesuffix('/api/v1')}/ui/runs/{x}[/] and sign in with "
        "$TOKEN [dim](the run's DAG, timeline, rollback and consensus; docs/ui.md)[/]",
        f"Kafka: topics {settings.kafka.topic_prefix}.* on {settings.kafka.bootstrap_servers}, "
        f"every message about the run keyed {x}",
        f"OpenSearch: {settings.opensearch.url}/{settings.kafka.topic_prefix}-spans/_search"
        f"?q=execution_id:{x}",
        f"Logs of every part: {log_file}",
    ]
    if pipeline.warnings:
        lines.append(
            "[yellow]Read model warnings:[/] "
            + "; ".join(f"{name}: {error}" for name, error in pipeline.warnings.items())
        )
    console.print(Panel("\n".join(lines), title="Where to look", title_align="left"))
