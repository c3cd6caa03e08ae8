"""The policy processor: Rego policies (regopy bundles) on step outputs and calls."""

from omium.streams.policy._feed import PolicyFeed
from omium.streams.policy._mapping import (
    SPAN_TARGETS,
    add_usage,
    new_run,
    run_view,
    span_document,
    step_document,
)
from omium.streams.policy._processor import HALTS, RUNS, PolicyProcessor
from omium.streams.policy._registry import (
    CompiledPolicy,
    PolicyEvaluationFailure,
    PolicyInput,
    PolicyRegistry,
)

__all__ = [
    "HALTS",
    "RUNS",
    "CompiledPolicy",
    "PolicyEvaluationFailure",
    "PolicyFeed",
    "PolicyInput",
    "PolicyProcessor",
    "PolicyRegistry",
    # the input documents, for evaluating the same policies elsewhere (the worker's gate)
    "SPAN_TARGETS",
    "add_usage",
    "new_run",
    "run_view",
    "span_document",
    "step_document",
]
