"""The recovery processor: failures classified, grouped by signature, planned and acted on."""

from omium.streams.recovery._diagnosis import (
    DIAGNOSIS_AGENT,
    Diagnosis,
    DiagnosisError,
    DiagnosisResult,
    Evidence,
    FailureContext,
    ProposedFix,
    SimilarFailure,
    diagnose,
    diagnosis_messages,
    failure_context,
    parse_diagnosis,
    suggestion_arguments,
)
from omium.streams.recovery._diagnosis_processor import FAILURES, DiagnosisProcessor
from omium.streams.recovery._learning import ActionStats, action_key, choose
from omium.streams.recovery._planning import (
    NOT_RETRYABLE_ERRORS,
    Plan,
    RecoverySettings,
    backoff_ms,
    normalise_message,
    plan,
    retryable_failure,
    signature,
)
from omium.streams.recovery._processor import (
    ATTEMPTS,
    BY_SIGNATURE,
    OPEN,
    PENDING,
    RUNS,
    SIGNATURES,
    RecoveryProcessor,
)

__all__ = [
    # processor
    "ATTEMPTS",
    "BY_SIGNATURE",
    "OPEN",
    "PENDING",
    "RUNS",
    "SIGNATURES",
    "RecoveryProcessor",
    # planning (pure)
    "Plan",
    "RecoverySettings",
    "backoff_ms",
    "normalise_message",
    "plan",
    "retryable_failure",
    "signature",
    "NOT_RETRYABLE_ERRORS",
    # learning (pure)
    "ActionStats",
    "action_key",
    "choose",
    # root-cause diagnosis
    "DiagnosisProcessor",
    "FAILURES",
    "DIAGNOSIS_AGENT",
    "Diagnosis",
    "DiagnosisError",
    "DiagnosisResult",
    "Evidence",
    "FailureContext",
    "ProposedFix",
    "SimilarFailure",
    "diagnose",
    "diagnosis_messages",
    "failure_context",
    "parse_diagnosis",
    "suggestion_arguments",
]
