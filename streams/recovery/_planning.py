"""Pure recovery planning: failure signatures, backoff, and the choice of a plan.

Nothing here touches Kafka or state; the processor feeds it the counts it keeps.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_HEX = re.compile(r"\b(?:0x)?[0-9a-f]{8,}\b")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_SPACE = re.compile(r"\s+")

RETRYABLE = frozenset({"exception", "timeout"})
"""Kinds worth retrying as they are: the same attempt may well succeed next time."""
WRONG_ANSWER = frozenset({"postcondition_failed", "hallucination"})
"""Kinds where the agent produced a bad result: try another agent/model, or an earlier state."""


@dataclass(frozen=True)
class RecoverySettings:
    """A workflow's recovery settings (defaults, overridden per failure by its details).

    Attributes:
        max_retries: Retries of a step (for retryable kinds) before trying something else.
        backoff_ms: Delay before the first retry; doubled each retry.
        max_backoff_ms: Upper bound of the delay.
        fallback_agent: Agent to hand the step to when retrying no longer helps.
        fallback_model: Model to fall back to.
        escalate_after_similar: Escalate once this many earlier failures (any run) share the
            signature: a systemic fault a retry will not fix.
        max_attempts: Attempts of a step after which the run is aborted.
    """

    max_retries: int = 3
    backoff_ms: int = 1000
    max_backoff_ms: int = 60_000
    fallback_agent: str | None = None
    fallback_model: str | None = None
    escalate_after_similar: int = 5
    max_attempts: int = 8

    def overridden(self, details: Mapping[str, str]) -> RecoverySettings:
        """These settings with ``recovery.<field>`` entries of a failure's details applied."""
        changes: dict[str, Any] = {}
        for name in (
            "max_retries",
            "backoff_ms",
            "max_backoff_ms",
            "escalate_after_similar",
            "max_attempts",
        ):
            if (value := details.get(f"recovery.{name}")) is not None and value.isdigit():
                changes[name] = int(value)
        for name in ("fallback_agent", "fallback_model"):
            if details.get(f"recovery.{name}"):
                changes[name] = details[f"recovery.{name}"]
        return replace(self, **changes)


@dataclass(frozen=True)
class Plan:
    """What to do about one failure."""

    action: str  # retry | rollback | fallback | escalate | abort
    reason: str
    backoff_ms: int | None = None
    checkpoint_id: str | None = None
    fallback_agent: str | None = None
    fallback_model: str | None = None


def normalise_message(message: str) -> str:
    """A failure message with its variable parts (ids, numbers, quoted values) blanked."""
    text = message.lower()
    for pattern, token in ((_UUID, "<id>"), (_QUOTED, "<v>"), (_HEX, "<hex>"), (_NUMBER, "<n>")):
        text = pattern.sub(token, text)
    return _SPACE.sub(" ", text).strip()[:200]


def signature(*, workflow: str | None, step: str | None, kind: str, message: str) -> str:
    """The signature failures are grouped by: workflow, step, kind and normalised message."""
    text = "|".join((workflow or "-", step or "-", kind, normalise_message(message)))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def backoff_ms(settings: RecoverySettings, retry: int) -> int:
    """Delay before retry number ``retry`` (1-based): exponential, capped."""
    return min(settings.max_backoff_ms, settings.backoff_ms * 2 ** (retry - 1))


def plan(
    kind: str,
    *,
    attempts: int,
    similar: int,
    settings: RecoverySettings,
    checkpoint_id: str | None,
) -> Plan:
    """Choose a plan for a failure.

    Args:
        kind: The failure kind.
        attempts: Failures of this step in this run so far, this one included.
        similar: Earlier failures with the same signature, in any run.
        settings: The workflow's recovery settings.
        checkpoint_id: The run's last good checkpoint, if any.
    """
    if kind == "budget_exceeded":
        return Plan("abort", "the run's budget is spent; retrying would spend more")
    if attempts >= settings.max_attempts:
        return Plan("abort", f"step failed {attempts} times (max {settings.max_attempts})")
    if kind in ("policy_violation", "consensus_failed"):
        return Plan("escalate", f"{kind} needs a human decision")
    if similar >= settings.escalate_after_similar:
        return Plan("escalate", f"{similar} earlier failures share this signature: systemic")
    if kind in RETRYABLE and attempts <= settings.max_retries:
        delay = backoff_ms(settings, attempts)
        return Plan(
            "retry", f"{kind}: retry {attempts} of {settings.max_retries}", backoff_ms=delay
        )
    return _after_retries(kind, attempts, settings, checkpoint_id)


def _after_retries(
    kind: str, attempts: int, settings: RecoverySettings, checkpoint_id: str | None
) -> Plan:
    if settings.fallback_agent or settings.fallback_model:
        return Plan(
            "fallback",
            f"{kind} after {attempts} attempt(s): hand the step to the fallback",
            fallback_agent=settings.fallback_agent,
            fallback_model=settings.fallback_model,
        )
    if checkpoint_id is not None:
        return Plan(
            "rollback",
            f"{kind} after {attempts} attempt(s): resume from the last good checkpoint",
            checkpoint_id=checkpoint_id,
        )
    return Plan("escalate", f"{kind} after {attempts} attempt(s) and nothing else to try")
