"""The agents of ``examples/workflows/research_report.yaml``.

Each agent is a plain function that receives the step's :class:`omium.worker.StepContext` and
returns its output (a JSON object). They talk to their model only through ``ctx.complete``, so
the worker records every call (tokens, cost, a span) and enforces the run's budget; with the
scripted provider (the default) the answers come from ``research_report.script.yaml``.
"""

from __future__ import annotations

import json
from typing import Any

from omium.worker import StepContext


def researcher(ctx: StepContext) -> dict[str, Any]:
    """Collect facts about ``input.topic``, each with the id of the source it comes from."""
    topic = ctx.input["topic"]
    completion = ctx.complete(
        f"Collect at least three facts about: {topic}.\n"
        'Answer with JSON: {"facts": [{"text": ..., "source": ID}], "sources": {ID: text}}.',
        system="You are a careful researcher. Quote only what your sources say.",
    )
    answer = json.loads(completion.text)
    return {"facts": answer["facts"], "sources": answer["sources"]}


def writer(ctx: StepContext) -> dict[str, Any]:
    """Write a short report on the researcher's facts; every claim cites its source."""
    research = ctx.outputs["research"]
    facts = "\n".join(f"- {fact['text']} [source:{fact['source']}]" for fact in research["facts"])
    completion = ctx.complete(
        "Write a short report (a '# ' title, then one paragraph) from these facts. "
        "Cite every fact with its [source:ID] marker and add nothing the facts do not say.\n"
        f"{facts}",
        system="You are a science journalist.",
    )
    ctx.state["drafts_written"] = ctx.state.get("drafts_written", 0) + 1
    return {"report": completion.text.strip()}


def reviewer(ctx: StepContext) -> dict[str, Any]:
    """Vote on the draft: one of ``input.choices``, with a one-line reason."""
    report = ctx.outputs["draft"]["report"]
    choices = ctx.input.get("choices") or ["publish", "revise"]
    completion = ctx.complete(
        f"{ctx.input.get('subject') or 'Review this report.'}\n"
        f'Answer with JSON: {{"choice": one of {choices}, "reason": ...}}.\n\n{report}',
        system=f"You are {ctx.agent.replace('_', ' ')}.",
    )
    vote = json.loads(completion.text)
    return {"choice": vote["choice"], "reason": vote.get("reason", "")}
