"""The building blocks together on the research-report example, without a worker.

The scripted provider answers as the demo's agents would be answered, and the example's own
post-conditions, recovery rules and budget are applied to the answers, step by step.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from omium.sdk.providers import Completion, ScriptedProvider
from omium.sdk.workflow import (
    StepOutput,
    WorkflowDefinition,
    check_postconditions,
    gather_sources,
    load_workflow,
)


def ask(
    provider: ScriptedProvider, workflow: WorkflowDefinition, agent: str, step: str
) -> Completion:
    spec = workflow.agents[agent]
    assert spec.model is not None
    return provider.complete(
        [{"role": "user", "content": f"Do the {step} step."}],
        model=spec.model,
        max_tokens=spec.limits.max_tokens,
        agent=agent,
        step_id=step,
    )


def test_the_example_runs_its_checks_recovery_and_budget(example_path: Path) -> None:
    workflow = load_workflow(example_path)
    provider = ScriptedProvider.from_file(example_path.with_name("research_report.script.yaml"))

    research = json.loads(ask(provider, workflow, "researcher", "research").text)
    results = check_postconditions(workflow.step("research").postconditions, StepOutput(research))
    assert all(r.passed for r in results), results

    draft = workflow.step("draft")
    hallucinated = {"report": ask(provider, workflow, "writer", "draft").text}
    output = StepOutput(hallucinated, gather_sources(hallucinated, [research]))
    [grounded, *others] = check_postconditions(draft.postconditions, output)
    assert not grounded.passed and grounded.failure_kind == "hallucination"
    assert grounded.kind == "grounded"
    assert "4700 in no cited source" in grounded.details["unsupported"][0]["problems"]
    assert all(r.passed for r in others)
    assert workflow.recovery.rule_for("hallucination").action == "rollback"
    assert workflow.checkpoint_for(draft).before  # the rollback target exists

    report = {"report": ask(provider, workflow, "writer", "draft").text}
    results = check_postconditions(
        draft.postconditions, StepOutput(report, gather_sources(report, [research]))
    )
    assert all(r.passed for r in results), [r.reason for r in results]

    consensus = workflow.step("review").consensus
    assert consensus is not None
    votes = {
        agent: json.loads(ask(provider, workflow, agent, "review").text)["choice"]
        for agent in consensus.participants
    }
    assert consensus.choices is not None and set(votes.values()) <= set(consensus.choices)
    [(decision, support)] = Counter(votes.values()).most_common(1)
    assert (decision, support) == ("publish", 2)  # a majority of three

    budget = workflow.policies.budget
    assert budget is not None and budget.max_cost_usd is not None and budget.max_tokens is not None
    calls = [c.completion for c in provider.calls if c.completion is not None]
    assert len(calls) == len(provider.calls) == 6
    assert 0 < sum(c.cost_usd for c in calls) < budget.max_cost_usd
    assert sum(c.total_tokens for c in calls) < budget.max_tokens
    assert [c.fault for c in provider.calls].count("hallucinated") == 1
