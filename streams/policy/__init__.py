"""The policy processor: Rego policies (regopy bundles) on step outputs and calls."""

from streams.policy._feed import PolicyFeed
from streams.policy._processor import HALTS, RUNS, PolicyProcessor
from streams.policy._registry import CompiledPolicy, PolicyEvaluationFailure, PolicyRegistry

__all__ = [
    "HALTS",
    "RUNS",
    "CompiledPolicy",
    "PolicyEvaluationFailure",
    "PolicyFeed",
    "PolicyProcessor",
    "PolicyRegistry",
]
