"""What a worker's step runs share: the write side, stores, providers and telemetry."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omium.commands import CommandApplications
from omium.kernel.errors import ConfigurationError
from omium.sdk.providers import LLMProvider
from omium.sdk.workflow import WorkflowDefinition
from omium.worker._budget import RunBudget
from omium.worker._definitions import DefinitionCache
from omium.worker._heartbeat import Heartbeats
from omium.worker._policy_gate import PolicyGate
from omium.worker._state import StateStore
from omium.worker._telemetry import Telemetry


@dataclass
class WorkerServices:
    """Everything a step run needs, built once per worker process.

    Attributes:
        apps: The command applications: every outcome is reported as a command.
        definitions: Workflow definitions, cached.
        states: Checkpoint state (restore verified, save content-addressed).
        telemetry: Spans, metrics and detected failures.
        heartbeats: Claims on the steps this worker runs.
        redis: The Redis client (run budgets).
        providers: LLM providers by the name agents use (``scripted``, ``openai``).
        prefix: Key prefix shared with the topics (``kafka.topic_prefix``).
        worker_id: This worker's unique id.
        default_model: Model of agents whose definition names none.
        consensus_poll_s: How often a consensus step checks its round for a decision.
        consensus_grace_s: How long after the deadline it waits for the consensus processor
            before deciding the round itself.
        policies: The deny-mode policies a step's output must pass before the worker goes on
            to the next step by itself (``None``: it never does; the orchestrator decides).
        pipeline: Whether a worker goes on to a run's next step itself when nobody else must
            decide (see :mod:`omium.worker._pipeline`); ``False``: always orchestrated.
    """

    apps: CommandApplications
    definitions: DefinitionCache
    states: StateStore
    telemetry: Telemetry
    heartbeats: Heartbeats
    redis: Any
    providers: Mapping[str, LLMProvider]
    prefix: str
    worker_id: str
    default_model: str = "gpt-4o-mini"
    consensus_poll_s: float = 0.1
    consensus_grace_s: float = 3.0
    policies: PolicyGate | None = None
    pipeline: bool = True

    def provider(self, name: str) -> LLMProvider:
        """The provider an agent names.

        Raises:
            ConfigurationError: No provider has that name.
        """
        provider = self.providers.get(name)
        if provider is None:
            known = ", ".join(sorted(self.providers))
            raise ConfigurationError(f"no LLM provider {name!r} (known: {known})")
        return provider

    def budget(self, execution_id: str, definition: WorkflowDefinition) -> RunBudget:
        """The usage counters of a run, held to its workflow's budget."""
        return RunBudget(
            self.redis,
            prefix=self.prefix,
            execution_id=execution_id,
            budget=definition.policies.budget,
        )
