"""The recovery processor: failures classified, grouped by signature, planned and acted on."""

from streams.recovery._planning import (
    Plan,
    RecoverySettings,
    backoff_ms,
    normalise_message,
    plan,
    signature,
)
from streams.recovery._processor import (
    ATTEMPTS,
    BY_SIGNATURE,
    RUNS,
    SIGNATURES,
    RecoveryProcessor,
)

__all__ = [
    # processor
    "ATTEMPTS",
    "BY_SIGNATURE",
    "RUNS",
    "SIGNATURES",
    "RecoveryProcessor",
    # planning (pure)
    "Plan",
    "RecoverySettings",
    "backoff_ms",
    "normalise_message",
    "plan",
    "signature",
]
