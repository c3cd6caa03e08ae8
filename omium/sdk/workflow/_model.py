"""The workflow definition model: agents, steps (a list or a DAG), policies and recovery.

Field-level rules (types, ranges, patterns) are pydantic's; rules that look across the whole
definition (unknown steps or agents, cycles, duplicate ids) are in ``_checks.py`` and run from
:class:`WorkflowDefinition`'s validator, so a definition built in Python is checked as well.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import timedelta
from typing import Annotated, Any, Literal, Self

from pydantic import (
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    ValidationInfo,
    model_validator,
)

from omium.kernel.dag import descendants, ready_steps, topological_order
from omium.sdk.workflow._base import (
    NAME_PATTERN,
    AgentName,
    DefinitionModel,
    Entrypoint,
    FailureKind,
    PolicyName,
    RecoveryAction,
    StepId,
)
from omium.sdk.workflow._conditions import PostCondition

CONSENSUS_AGENT = "@consensus"
"""The ``agent`` a consensus step has in the exported definition (no agent may be named so)."""

DEFER_CHECKS = "omium_defer_checks"
"""Validation-context key: skip the cross-field checks (the loader runs them to report paths)."""


class AgentLimits(DefinitionModel):
    """Limits of an agent; an LLM call or a step that would exceed them fails."""

    max_tokens: PositiveInt | None = None
    """Most output tokens per LLM call."""
    max_cost_usd: NonNegativeFloat | None = None
    """Most cost (USD) of one step run by this agent."""
    timeout_s: PositiveFloat | None = None
    """Default timeout of the steps this agent runs (a step's own ``timeout_s`` wins)."""


class AgentSpec(DefinitionModel):
    """An agent: a Python function the worker calls, and the model it talks to."""

    entrypoint: Entrypoint
    """``package.module:function`` called with the step's context."""
    provider: str = Field(default="scripted", pattern=r"^[a-z][a-z0-9_-]*$")
    """LLM provider name: ``scripted`` (deterministic, the default) or ``openai``."""
    model: str | None = Field(default=None, min_length=1)
    """Model name passed to the provider (also selects the price per token)."""
    description: str | None = None
    limits: AgentLimits = AgentLimits()


class Backoff(DefinitionModel):
    """Exponential backoff: wait ``initial_s * multiplier**(n-1)`` after attempt n, <= ``max_s``."""

    initial_s: NonNegativeFloat = 1.0
    multiplier: float = Field(default=2.0, ge=1.0)
    max_s: NonNegativeFloat = 60.0

    @model_validator(mode="after")
    def _check_order(self) -> Self:
        if self.max_s < self.initial_s:
            raise ValueError("max_s must be at least initial_s")
        return self

    def delay_s(self, attempt: int) -> float:
        """The wait before attempt ``attempt + 1`` after attempt ``attempt`` (1-based) failed."""
        exponent = max(attempt, 1) - 1
        # Cap the exponent's effect early: a large attempt number must not overflow the float.
        delay = self.initial_s * self.multiplier ** min(exponent, 64)
        return float(min(delay, self.max_s))


class RetryPolicy(DefinitionModel):
    """How often a step is attempted before its failure goes to recovery."""

    max_attempts: int = Field(default=3, ge=1, le=100)
    """Attempts in total, the first one included (1 = no retry)."""
    backoff: Backoff = Backoff()


class CheckpointSpec(DefinitionModel):
    """When the run's state is checkpointed around a step."""

    before: bool = False
    """Checkpoint before the step runs (a rollback target that re-runs the step)."""
    after: bool = True
    """Checkpoint after the step succeeded (a rollback target that keeps its result)."""


class ConsensusSpec(DefinitionModel):
    """A decision several agents vote on; the step completes with the decision.

    Rules: ``majority`` (more than half), ``unanimous``, ``k_of_n`` (at least ``k`` agree) and
    ``weighted`` (agreeing weight >= ``threshold`` of the total weight).
    """

    participants: list[AgentName] = Field(min_length=1)
    """The agents that vote (each runs once and returns its choice)."""
    rule: Literal["majority", "unanimous", "weighted", "k_of_n"] = "majority"
    weights: dict[AgentName, PositiveFloat] | None = None
    """Per participant, only for ``weighted`` (1 when not listed)."""
    threshold: float | None = Field(default=None, gt=0, le=1)
    """Share of the total weight a choice needs, only (and required) for ``weighted``."""
    k: PositiveInt | None = None
    """Agreeing votes needed, only (and required) for ``k_of_n``."""
    deadline_s: PositiveFloat = 300.0
    """Votes are taken for this long; then the round is decided with the votes it has."""
    choices: list[str] | None = Field(default=None, min_length=2)
    """The allowed choices (e.g. ``[approve, revise]``); any text when unset."""
    subject: str | None = None
    """What is being decided, shown to voters and in the timeline."""

    @model_validator(mode="after")
    def _check_rule(self) -> Self:
        if len(set(self.participants)) != len(self.participants):
            raise ValueError("participants must be unique")
        if self.rule == "weighted" and self.threshold is None:
            raise ValueError("rule 'weighted' needs a threshold")
        if self.rule != "weighted" and (self.weights is not None or self.threshold is not None):
            raise ValueError("weights and threshold are only for rule 'weighted'")
        if self.rule == "k_of_n":
            if self.k is None:
                raise ValueError("rule 'k_of_n' needs k")
            if self.k > len(self.participants):
                raise ValueError(f"k={self.k} is more than the {len(self.participants)} voters")
        elif self.k is not None:
            raise ValueError("k is only for rule 'k_of_n'")
        return self


class ApprovalEscalationSpec(DefinitionModel):
    """Who decides an approval nobody decided in time (``on_timeout: escalate``)."""

    approvers: list[str] = Field(default_factory=list)
    """Who may decide once escalated (token subjects)."""
    approver_role: Literal["operator", "admin"] | None = None
    """The least role a decider must hold once escalated."""
    timeout_s: PositiveFloat = 3600.0
    """How long they have, from the escalation; then ``on_timeout`` applies."""
    on_timeout: Literal["approve", "reject"] = "reject"
    """What happens when they do not decide in time either."""

    @model_validator(mode="after")
    def _check_deciders(self) -> Self:
        if not self.approvers and self.approver_role is None:
            raise ValueError("an escalation names its approvers and/or approver_role")
        return self


class ApprovalSpec(DefinitionModel):
    """A human decision the step waits for before it starts (other branches go on meanwhile)."""

    timeout_s: PositiveFloat = 3600.0
    """How long the decision may take; then ``on_timeout`` applies."""
    on_timeout: Literal["approve", "reject", "escalate"] = "reject"
    """What happens when nobody decided in time: the step runs, the run fails, or (escalate)
    the decision passes to ``escalation``'s deciders."""
    approvers: list[str] = Field(default_factory=list)
    """Who may decide (token subjects); anyone with the operator role when empty."""
    approver_role: Literal["operator", "admin"] | None = None
    """The least role a decider must hold (deciding needs operator in any case)."""
    prompt: str | None = Field(default=None, max_length=2000)
    """What the approver is asked."""
    escalation: ApprovalEscalationSpec | None = None
    """Who decides after the deadline; required by (and only with) ``on_timeout: escalate``."""

    @model_validator(mode="after")
    def _check_escalation(self) -> Self:
        if self.on_timeout == "escalate" and self.escalation is None:
            raise ValueError("on_timeout 'escalate' needs an escalation")
        if self.on_timeout != "escalate" and self.escalation is not None:
            raise ValueError("escalation is only for on_timeout 'escalate'")
        return self


class Step(DefinitionModel):
    """One unit of work: an agent call, or (with ``consensus``) a vote among agents."""

    id: StepId
    agent: str | None = None
    """The agent that runs the step (an ``agents`` key); not set on consensus steps."""
    needs: list[StepId] | None = None
    """Steps that must complete first. When no step has ``needs``, steps run in list order;
    otherwise a step without ``needs`` starts at once."""
    description: str | None = None
    input: dict[str, Any] = Field(default_factory=dict)
    """Static input given to the agent alongside the outputs of the steps it needs."""
    checkpoint: CheckpointSpec | None = None
    """When to checkpoint; ``defaults.checkpoint`` when unset."""
    postconditions: list[PostCondition] = Field(default_factory=list)
    """Checks the output must pass; a failed check is a failure (``hallucination`` for
    ``grounded``, ``postcondition_failed`` otherwise)."""
    timeout_s: PositiveFloat | None = None
    """Longest one attempt may take; the agent's ``limits.timeout_s`` or
    ``defaults.timeout_s`` when unset."""
    retry: RetryPolicy | None = None
    """Attempts and backoff; ``defaults.retry`` when unset."""
    consensus: ConsensusSpec | None = None
    approval: ApprovalSpec | None = None
    """A human approval the step waits for before it starts (a retry does not ask again)."""

    @property
    def is_consensus(self) -> bool:
        """Whether this is a consensus step."""
        return self.consensus is not None


class StepDefaults(DefinitionModel):
    """Settings for steps that do not set their own."""

    timeout_s: PositiveFloat = 300.0
    retry: RetryPolicy = RetryPolicy()
    checkpoint: CheckpointSpec = CheckpointSpec()


class Budget(DefinitionModel):
    """Limits for a whole run; crossing one is a ``budget_exceeded`` failure."""

    max_cost_usd: NonNegativeFloat | None = None
    max_tokens: PositiveInt | None = None
    """Input plus output tokens of all LLM calls."""
    max_llm_calls: PositiveInt | None = None
    on_exceed: Literal["halt", "warn"] = "halt"
    """``halt`` stops the run; ``warn`` only records a policy violation."""


DURATION_PATTERN = r"^[0-9]+(\.[0-9]+)?(s|m|h|d|w)$"
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


class CheckpointRetention(DefinitionModel):
    """How many and how old checkpoints of each step a run keeps (``policies.checkpoints``).

    Rules apply per step and position (``before``/``after``); a checkpoint must pass every rule
    set to stay, and the latest checkpoint of each step at each position always stays. A pruned
    checkpoint keeps its record (id, step, checksum) in the history but not its state: nothing
    can roll back to it, fork from it or restore it, and its blob is collected once no
    checkpoint refers to it.
    """

    keep_last: PositiveInt | None = None
    """Keep the latest N checkpoints of each step (and position)."""
    max_age: Annotated[str, Field(pattern=DURATION_PATTERN)] | None = None
    """Let checkpoints older than this go: a number and a unit, ``s``, ``m``, ``h``, ``d`` or
    ``w`` (``7d``, ``12h``, ``1.5h``)."""

    @model_validator(mode="after")
    def _needs_a_rule(self) -> Self:
        if self.keep_last is None and self.max_age is None:
            raise ValueError("checkpoints needs keep_last or max_age")
        return self

    def max_age_delta(self) -> timedelta | None:
        """``max_age`` as a duration (``None`` when not set)."""
        if self.max_age is None:
            return None
        return timedelta(seconds=float(self.max_age[:-1]) * _DURATION_UNITS[self.max_age[-1]])


class PolicySpec(DefinitionModel):
    """Policies checked on every step output and LLM call of the run."""

    use: list[PolicyName] = Field(default_factory=list)
    """Names of policies (Rego modules) registered with Omium."""
    budget: Budget | None = None
    checkpoints: CheckpointRetention | None = None
    """Checkpoint retention (none: every checkpoint is kept)."""


class RecoveryRule(DefinitionModel):
    """What to do about one kind of failure."""

    action: RecoveryAction
    """``retry`` the step, ``rollback`` to the last good checkpoint, ``fallback`` to another
    agent/model, ``escalate`` to a human, or ``abort`` the run."""
    fallback_agent: AgentName | None = None
    fallback_model: str | None = Field(default=None, min_length=1)
    escalate_after: PositiveInt | None = None
    """Escalate instead once this many failures of this kind hit the same step."""

    @model_validator(mode="after")
    def _check_fallback(self) -> Self:
        if self.action == "fallback" and not (self.fallback_agent or self.fallback_model):
            raise ValueError("action 'fallback' needs fallback_agent or fallback_model")
        return self


class Escalation(DefinitionModel):
    """How a human approval asked for by ``escalate`` ends when nobody answers."""

    deadline_s: PositiveFloat = 3600.0
    default_action: Literal["approve", "reject"] = "reject"


DEFAULT_RECOVERY: Mapping[str, RecoveryRule] = {
    "exception": RecoveryRule(action="retry"),
    "timeout": RecoveryRule(action="retry"),
    "postcondition_failed": RecoveryRule(action="rollback"),
    "hallucination": RecoveryRule(action="rollback"),
    "policy_violation": RecoveryRule(action="escalate"),
    "budget_exceeded": RecoveryRule(action="abort"),
    "consensus_failed": RecoveryRule(action="escalate"),
}
"""The rule for each failure kind that ``recovery`` does not set."""


class RecoverySpec(DefinitionModel):
    """Recovery per failure kind; kinds not set use :data:`DEFAULT_RECOVERY`."""

    exception: RecoveryRule | None = None
    timeout: RecoveryRule | None = None
    postcondition_failed: RecoveryRule | None = None
    hallucination: RecoveryRule | None = None
    policy_violation: RecoveryRule | None = None
    budget_exceeded: RecoveryRule | None = None
    consensus_failed: RecoveryRule | None = None
    escalate_after: PositiveInt | None = 3
    """Escalate any failure kind once this many failures hit the same step (unset: never)."""
    escalation: Escalation = Escalation()

    def rule_for(self, kind: FailureKind) -> RecoveryRule:
        """The rule for a failure kind (this spec's, else the default)."""
        rule: RecoveryRule | None = getattr(self, kind)
        return rule if rule is not None else DEFAULT_RECOVERY[kind]


class WorkflowDefinition(DefinitionModel):
    """A multi-agent workflow: agents, the steps they run, policies and recovery."""

    schema_uri: str | None = Field(default=None, alias="$schema")
    """The JSON Schema this file follows (for editors); ignored otherwise."""
    format_version: Literal[1] = 1
    name: str = Field(min_length=1, max_length=200, pattern=NAME_PATTERN)
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    agents: dict[AgentName, AgentSpec] = Field(min_length=1)
    steps: list[Step] = Field(min_length=1)
    defaults: StepDefaults = StepDefaults()
    policies: PolicySpec = PolicySpec()
    recovery: RecoverySpec = RecoverySpec()
    metadata: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_references(self, info: ValidationInfo) -> Self:
        if isinstance(info.context, Mapping) and info.context.get(DEFER_CHECKS):
            return self
        # Imported here: _checks imports this module's classes.
        from omium.sdk.workflow._checks import find_issues, format_path

        issues = find_issues(self)
        if issues:
            raise ValueError("; ".join(f"{format_path(i.path)}: {i.message}" for i in issues))
        return self

    # Lookups ------------------------------------------------------------------------------

    def step(self, step_id: str) -> Step:
        """The step with this id.

        Raises:
            KeyError: No such step.
        """
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def agent_of(self, step: Step) -> AgentSpec | None:
        """The agent that runs a step (None for consensus steps)."""
        return None if step.agent is None else self.agents.get(step.agent)

    def timeout_for(self, step: Step) -> float:
        """Effective timeout: the step's, else its agent's limit, else ``defaults.timeout_s``."""
        if step.timeout_s is not None:
            return step.timeout_s
        agent = self.agent_of(step)
        if agent is not None and agent.limits.timeout_s is not None:
            return agent.limits.timeout_s
        return self.defaults.timeout_s

    def retry_for(self, step: Step) -> RetryPolicy:
        """Effective retry policy: the step's, else ``defaults.retry``."""
        return step.retry if step.retry is not None else self.defaults.retry

    def checkpoint_for(self, step: Step) -> CheckpointSpec:
        """Effective checkpoint settings: the step's, else ``defaults.checkpoint``."""
        return step.checkpoint if step.checkpoint is not None else self.defaults.checkpoint

    def run_budget(self) -> dict[str, Any]:
        """The limits a run of this version records on ``ExecutionStarted``.

        ``max_cost_usd`` and ``max_tokens`` of ``policies.budget``, ``None`` when not set.
        """
        budget = self.policies.budget
        return {
            "max_cost_usd": None if budget is None else budget.max_cost_usd,
            "max_tokens": None if budget is None else budget.max_tokens,
        }

    # The step graph -----------------------------------------------------------------------

    @property
    def is_sequential(self) -> bool:
        """True when no step sets ``needs``: the steps run one after another in list order."""
        return all(step.needs is None for step in self.steps)

    def dependencies(self) -> dict[str, list[str]]:
        """Step id -> ids of the steps it needs (resolved for sequential workflows)."""
        if self.is_sequential:
            ids = [step.id for step in self.steps]
            return {sid: ids[i - 1 : i] if i else [] for i, sid in enumerate(ids)}
        return {step.id: list(step.needs or []) for step in self.steps}

    def topological_order(self) -> list[str]:
        """Every step id, each after the steps it needs; ties keep list order."""
        return topological_order(self.dependencies())

    def ready_steps(
        self, completed: Collection[str], *, started: Collection[str] = ()
    ) -> list[str]:
        """Steps that may start now: not completed or started, and all their needs completed."""
        return ready_steps(self.dependencies(), completed, started=started)

    def downstream_of(self, step_id: str) -> list[str]:
        """Steps that depend on ``step_id`` directly or transitively, in topological order."""
        return descendants(self.dependencies(), step_id)

    # Export -------------------------------------------------------------------------------

    def to_definition(self) -> dict[str, Any]:
        """The definition as a JSON-compatible dict for ``register_workflow``.

        Every step gets explicit ``needs`` (the resolved graph) and an ``agent``
        (:data:`CONSENSUS_AGENT` for consensus steps), which is what the command side
        validates. Parsing the result gives an equivalent definition.
        """
        data = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        data.pop("$schema", None)
        needs = self.dependencies()
        for step in data["steps"]:
            step["needs"] = needs[step["id"]]
            if "consensus" in step:
                step["agent"] = CONSENSUS_AGENT
        return data
