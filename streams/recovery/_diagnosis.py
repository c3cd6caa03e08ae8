"""Root-cause diagnosis of a failure by a model, for a human to review.

:func:`failure_context` gathers what is known about a failed step (the run's input and the
step's, upstream outputs, the error and failed post-conditions, the run's checkpoints, the
agents that could take over, and what the recovery processor learned about failures like it);
:func:`diagnose` shows it to a model through the ordinary provider layer and reads back a
:class:`Diagnosis`: probable cause, evidence quoted from the context, similar failures, and a
fix Omium can apply (``retry``, ``rollback`` to a named checkpoint, ``fallback`` to an agent,
``abort``). Every evidence quote is checked against the context (``verified``), so a quote the
model made up is marked as such. :func:`suggestion_arguments` turns the result into the
arguments of ``ExecutionsApplication.suggest_fix``.

A scripted provider answers deterministically: rules for the agent :data:`DIAGNOSIS_AGENT`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from omium.kernel.errors import OmiumError
from omium.sdk.providers import Completion, LLMProvider, Message
from omium.sdk.workflow import WorkflowValidationError, parse_workflow_dict

DIAGNOSIS_AGENT = "omium.diagnosis"
"""The ``agent`` of diagnosis calls (what a scripted provider's rules match on)."""

_MAX_FIELD_CHARS = 4000
_SPACE = re.compile(r"\s+")


class DiagnosisError(OmiumError):
    """The model's answer is not a usable diagnosis.

    Attributes:
        text: The answer, cut to 2,000 characters.
    """

    def __init__(self, message: str, *, text: str) -> None:
        """Build the error with the answer that could not be read."""
        super().__init__(message)
        self.text = text[:2000]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Evidence(_Model):
    """A quote supporting the diagnosis, and where it is from."""

    source: str = Field(min_length=1, max_length=100)
    quote: str = Field(min_length=1, max_length=2000)
    verified: bool = False
    """Whether the quote is in the context the model was shown (set by Omium, not the model)."""


class SimilarFailure(_Model):
    """Earlier failures like this one and what fixed them."""

    description: str = Field(min_length=1, max_length=1000)
    fixed_by: str | None = None
    success_rate: float | None = Field(default=None, ge=0, le=1)


class ProposedFix(_Model):
    """A fix Omium can apply."""

    action: Literal["retry", "rollback", "fallback", "abort"]
    step_id: str | None = None
    checkpoint_id: str | None = None
    agent: str | None = None
    model: str | None = None
    input: dict[str, Any] | None = None
    reason: str | None = Field(default=None, max_length=2000)


class Diagnosis(_Model):
    """What the model concluded."""

    probable_cause: str = Field(min_length=1, max_length=4000)
    evidence: list[Evidence] = Field(default_factory=list)
    similar_failures: list[SimilarFailure] = Field(default_factory=list)
    fix: ProposedFix
    confidence: float | None = Field(default=None, ge=0, le=1)


@dataclass(frozen=True)
class FailureContext:
    """What the model is shown about a failure (JSON-compatible values).

    Attributes:
        execution_id: The run.
        state: The run's state.
        step_id: The failed step, if any.
        agent: The agent that ran it.
        kind: The failure kind (``exception``, ``hallucination`` ...), when known.
        message: The error or failure message.
        details: The failure's details (failed post-conditions, error type ...).
        run_input: The run's input.
        step_input: The step's static input from the workflow definition.
        step_output: The step's last recorded output, if any.
        upstream_outputs: Outputs of the steps that completed, by step id.
        postconditions: The step's post-conditions, as the definition gives them.
        policies: Policies of the workflow (names and modes).
        checkpoints: The run's checkpoints (id, step, position), oldest first.
        agents: Agents the workflow defines (fallback candidates).
        statistics: What recovery learned about this failure's signature, per action.
        failure_id: The ``FailureDetected`` id, when known.
    """

    execution_id: str
    state: str
    step_id: str | None
    agent: str | None
    kind: str | None
    message: str
    details: Mapping[str, str] = field(default_factory=dict)
    run_input: Mapping[str, Any] = field(default_factory=dict)
    step_input: Mapping[str, Any] = field(default_factory=dict)
    step_output: Any = None
    upstream_outputs: Mapping[str, Any] = field(default_factory=dict)
    postconditions: Sequence[Any] = ()
    policies: Sequence[Any] = ()
    checkpoints: Sequence[Mapping[str, Any]] = ()
    agents: Sequence[str] = ()
    statistics: Sequence[Mapping[str, Any]] = ()
    failure_id: str | None = None

    def as_document(self) -> dict[str, Any]:
        """The context as the JSON document the model reads (long values cut)."""
        document = {
            "execution_id": self.execution_id,
            "run_state": self.state,
            "failed_step": self.step_id,
            "agent": self.agent,
            "failure_kind": self.kind,
            "error": self.message,
            "failure_details": dict(self.details),
            "run_input": self.run_input,
            "step_input": self.step_input,
            "step_output": self.step_output,
            "upstream_outputs": self.upstream_outputs,
            "postconditions": list(self.postconditions),
            "policies": list(self.policies),
            "checkpoints": list(self.checkpoints),
            "agents": list(self.agents),
            "learned_recovery_statistics": list(self.statistics),
        }
        return {key: _cut(value) for key, value in document.items()}


@dataclass(frozen=True)
class DiagnosisResult:
    """A diagnosis and the call that produced it."""

    diagnosis: Diagnosis
    completion: Completion


_INSTRUCTIONS = """You are Omium's recovery analyst. A step of a multi-agent workflow run failed.
Find the most probable root cause from the context and propose ONE fix Omium can apply:
- "retry": run the failed step again (a transient fault);
- "rollback": resume from a checkpoint named in "checkpoints" (bad state from an earlier step);
- "fallback": hand the step to another agent named in "agents";
- "abort": end the run (nothing will fix it).
Quote evidence verbatim from the context (step_input, step_output, error, failure_details,
postconditions, policies, upstream_outputs); never invent quotes. Use the learned recovery
statistics for similar failures and what fixed them. Never propose to skip or weaken a policy.
Answer with ONE JSON object and nothing else:
{"probable_cause": str, "evidence": [{"source": str, "quote": str}],
 "similar_failures": [{"description": str, "fixed_by": str|null, "success_rate": number|null}],
 "fix": {"action": "retry"|"rollback"|"fallback"|"abort", "step_id": str|null,
         "checkpoint_id": str|null, "agent": str|null, "reason": str},
 "confidence": number between 0 and 1}"""


def diagnosis_messages(context: FailureContext) -> list[Message]:
    """The chat messages of a diagnosis call."""
    document = json.dumps(context.as_document(), sort_keys=True, indent=1, default=str)
    return [
        Message("system", _INSTRUCTIONS),
        Message("user", f"Diagnose this failure of step {context.step_id!r}.\n{document}"),
    ]


def diagnose(
    provider: LLMProvider,
    context: FailureContext,
    *,
    model: str,
    timeout_s: float | None = None,
    max_tokens: int = 1500,
) -> DiagnosisResult:
    """Ask a model for a diagnosis of a failure.

    Raises:
        ProviderError: The call failed (rate limit, timeout ...).
        DiagnosisError: The answer is not a diagnosis.
    """
    completion = provider.complete(
        diagnosis_messages(context),
        model=model,
        max_tokens=max_tokens,
        temperature=0.0,
        timeout_s=timeout_s,
        agent=DIAGNOSIS_AGENT,
        step_id=context.step_id,
    )
    return DiagnosisResult(parse_diagnosis(completion.text, context), completion)


def parse_diagnosis(text: str, context: FailureContext) -> Diagnosis:
    """Read a model's answer: the first JSON object in it, checked, with quotes verified.

    Raises:
        DiagnosisError: No JSON object, or not a valid diagnosis.
    """
    raw = _json_object(text)
    try:
        diagnosis = Diagnosis.model_validate(raw)
    except ValidationError as exc:
        errors = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise DiagnosisError(f"the answer is not a diagnosis: {errors}", text=text) from None
    haystack = _normalised(json.dumps(context.as_document(), default=str, ensure_ascii=False))
    haystack += " " + _normalised(" ".join(_strings(context.as_document())))
    evidence = [
        e.model_copy(update={"verified": _normalised(e.quote) in haystack})
        for e in diagnosis.evidence
    ]
    similar = diagnosis.similar_failures or _learned_similar(context)
    fix = diagnosis.fix
    if fix.step_id is None and fix.action in ("retry", "fallback"):
        fix = fix.model_copy(update={"step_id": context.step_id})
    return diagnosis.model_copy(
        update={"evidence": evidence, "similar_failures": similar, "fix": fix}
    )


def suggestion_arguments(
    result: DiagnosisResult,
    context: FailureContext,
    *,
    suggestion_id: str,
    requested_by: str,
) -> dict[str, Any]:
    """Keyword arguments of ``ExecutionsApplication.suggest_fix`` (after tenant and run)."""
    diagnosis = result.diagnosis
    completion = result.completion
    return {
        "suggestion_id": suggestion_id,
        "diagnosis": diagnosis.model_dump(mode="json", exclude={"fix"}),
        "fix": diagnosis.fix.model_dump(mode="json", exclude_none=True),
        "requested_by": requested_by,
        "failure_id": context.failure_id,
        "step_id": context.step_id,
        "usage": {
            "provider": completion.provider,
            "model": completion.model,
            "tokens_in": completion.tokens_in,
            "tokens_out": completion.tokens_out,
            "cost_usd": completion.cost_usd,
        },
    }


def failure_context(
    run: Any,
    definition: Mapping[str, Any] | None,
    *,
    step_id: str | None,
    failure: Mapping[str, Any] | None = None,
    statistics: Sequence[Mapping[str, Any]] = (),
) -> FailureContext:
    """Build the context from a run's view and its workflow definition.

    Args:
        run: An ``ExecutionView`` (the write side's view of the run).
        definition: The workflow definition (a dict), when known.
        step_id: The failed step (default: the run's last failed step).
        failure: The ``FailureDetected`` payload, when known (kind, message, details ...).
        statistics: ``RecoveryPlanned.statistics`` of the plan made for the failure.
    """
    steps = {step.step_id: step for step in run.steps}
    if step_id is None:
        failed = [s.step_id for s in run.steps if s.status == "failed" or s.error]
        step_id = failed[-1] if failed else None
    step = steps.get(step_id) if step_id is not None else None
    failure = failure or {}
    message = str(failure.get("message") or (step.error if step is not None else "") or "")
    spec = _step_spec(definition, step_id)
    return FailureContext(
        execution_id=str(run.id),
        state=str(run.state),
        step_id=step_id,
        agent=failure.get("agent") or (step.agent if step is not None else None),
        kind=failure.get("kind"),
        message=message or "(no error recorded)",
        details={str(k): str(v) for k, v in dict(failure.get("details") or {}).items()},
        run_input=dict(run.input),
        step_input=spec.get("input") or {},
        step_output=step.output if step is not None else None,
        upstream_outputs={
            s.step_id: s.output for s in run.steps if s.status == "completed" and s.output
        },
        postconditions=list(spec.get("postconditions") or []),
        policies=list((definition or {}).get("policies") or []),
        checkpoints=[
            {"checkpoint_id": c.checkpoint_id, "step_id": c.step_id, "position": c.position}
            for c in run.checkpoints
        ],
        agents=_agents(definition),
        statistics=[dict(s) for s in statistics],
        failure_id=str(failure["failure_id"]) if failure.get("failure_id") else None,
    )


def _step_spec(definition: Mapping[str, Any] | None, step_id: str | None) -> dict[str, Any]:
    if not definition or step_id is None:
        return {}
    try:
        parsed = parse_workflow_dict(dict(definition))
        step = parsed.step(step_id)
    except (WorkflowValidationError, KeyError, ValueError):
        return {}
    dumped: dict[str, Any] = step.model_dump(mode="json", exclude_none=True)
    return dumped


def _agents(definition: Mapping[str, Any] | None) -> list[str]:
    agents = (definition or {}).get("agents")
    if isinstance(agents, Mapping):
        return sorted(str(name) for name in agents)
    if isinstance(agents, list):
        return [str(a.get("name")) for a in agents if isinstance(a, Mapping) and a.get("name")]
    return []


def _learned_similar(context: FailureContext) -> list[SimilarFailure]:
    similar = []
    for stats in context.statistics:
        tries = int(stats.get("tries") or 0)
        if tries == 0:
            continue
        successes = int(stats.get("successes") or 0)
        similar.append(
            SimilarFailure(
                description=f"{tries} earlier plan(s) with {stats.get('action_key')} for "
                "failures with this signature",
                fixed_by=str(stats.get("action_key")) if successes else None,
                success_rate=successes / tries,
            )
        )
    return similar


def _json_object(text: str) -> Any:
    start = text.find("{")
    while start != -1:
        try:
            value, _ = json.JSONDecoder().raw_decode(text[start:])
        except ValueError:
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    raise DiagnosisError("the answer holds no JSON object", text=text)


def _normalised(text: str) -> str:
    return _SPACE.sub(" ", text).strip().lower()


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _strings(item)]
    return []


def _cut(value: Any) -> Any:
    if isinstance(value, str):
        return value if len(value) <= _MAX_FIELD_CHARS else value[:_MAX_FIELD_CHARS] + " [cut]"
    if isinstance(value, Mapping):
        return {str(k): _cut(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_cut(item) for item in value[:50]]
    return value
