"""Checking post-conditions: pure functions from a step's output to a pass/fail result.

Each condition model (``_conditions.py``) has one check function, registered with
:func:`register_check`. A new kind is a model with a new ``kind`` tag (added to the
``PostCondition`` union) plus a registered function; nothing else changes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from jsonschema import Draft202012Validator

from omium.sdk.providers import count_tokens
from omium.sdk.workflow._base import FailureKind
from omium.sdk.workflow._conditions import (
    ConditionBase,
    ContainsCondition,
    CustomCondition,
    GroundedCondition,
    JsonSchemaCondition,
    MaxTokensCondition,
    NotContainsCondition,
    RegexCondition,
)
from omium.sdk.workflow._entrypoints import resolve_entrypoint
from omium.sdk.workflow._grounded import check_claims, extract_claims

_MAX_REPORTED = 10


@dataclass(frozen=True)
class StepOutput:
    """What a step produced, as its post-conditions see it.

    Attributes:
        output: The agent's result: text, or JSON-like data (dicts, lists, scalars).
        sources: Source id -> source text, for the ``grounded`` check (e.g. what a research
            step fetched).
        tokens_out: Output tokens as the provider counted them (else they are estimated).
    """

    output: Any
    sources: Mapping[str, str] = field(default_factory=dict)
    tokens_out: int | None = None


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one post-condition.

    Attributes:
        kind: The condition's kind (``regex``, ``grounded`` ...).
        passed: Whether the output satisfied it.
        reason: Why it passed or failed, for people.
        details: Machine-readable facts (failed schema paths, unsupported claims ...).
        description: The condition's own description, when it has one.
    """

    kind: str
    passed: bool
    reason: str
    details: Mapping[str, Any] = field(default_factory=dict)
    description: str | None = None

    @property
    def failure_kind(self) -> FailureKind | None:
        """The failure a failed check is (``hallucination`` for ``grounded``), else None."""
        if self.passed:
            return None
        return "hallucination" if self.kind == "grounded" else "postcondition_failed"


C = TypeVar("C", bound=ConditionBase)
CheckFunction = Callable[[Any, StepOutput], CheckResult]

_CHECKS: dict[type[ConditionBase], CheckFunction] = {}


def register_check(
    condition_type: type[C],
) -> Callable[[Callable[[C, StepOutput], CheckResult]], Callable[[C, StepOutput], CheckResult]]:
    """Register the function that checks one condition model (a decorator)."""

    def register(
        function: Callable[[C, StepOutput], CheckResult],
    ) -> Callable[[C, StepOutput], CheckResult]:
        _CHECKS[condition_type] = function
        return function

    return register


def check_postcondition(condition: ConditionBase, output: StepOutput) -> CheckResult:
    """Check one post-condition against a step's output.

    Args:
        condition: The condition from the workflow definition.
        output: The step's output, sources and token count.

    Returns:
        The result; a missing ``field`` is a failed result, not an error.

    Raises:
        TypeError: No check is registered for the condition's type.
        EntrypointError: A ``custom`` check cannot be imported.
    """
    function = _CHECKS.get(type(condition))
    if function is None:
        raise TypeError(f"no check registered for {type(condition).__name__}")
    kind = str(getattr(condition, "kind", type(condition).__name__))
    subject = output
    if condition.field is not None:
        found, value = _select(output.output, condition.field)
        if not found:
            result = CheckResult(kind, False, f"the output has no field {condition.field!r}")
            return replace(result, description=condition.description)
        subject = StepOutput(value, output.sources, None)
    return replace(function(condition, subject), description=condition.description)


def check_postconditions(
    conditions: Sequence[ConditionBase], output: StepOutput
) -> list[CheckResult]:
    """Check every post-condition of a step, in order (all of them, even after a failure)."""
    return [check_postcondition(condition, output) for condition in conditions]


def gather_sources(output: Any, needed: Iterable[Any] = ()) -> dict[str, str]:
    """The sources a step's ``grounded`` check compares its claims with.

    They are the ``sources`` mappings (source id -> text) of the outputs of the steps it needs,
    in order, then of its own output, which wins on a clash. Outputs held as JSON text are
    parsed; entries that are not text are ignored.

    Args:
        output: The step's own output.
        needed: The outputs of the steps it needs.

    Returns:
        Source id -> text.
    """
    sources: dict[str, str] = {}
    for value in [*needed, output]:
        found, mapping = _select(value, "sources")
        if found and isinstance(mapping, Mapping):
            sources.update({str(k): v for k, v in mapping.items() if isinstance(v, str)})
    return sources


def output_text(value: Any) -> str:
    """The text checks look at: strings as they are, other values as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, default=str)


def _select(value: Any, path: str) -> tuple[bool, Any]:
    if isinstance(value, str | bytes):
        try:
            value = json.loads(value)
        except ValueError:
            return False, None
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return False, None
    return True, value


# The built-in checks ------------------------------------------------------------------------


@register_check(JsonSchemaCondition)
def _json_schema(condition: JsonSchemaCondition, subject: StepOutput) -> CheckResult:
    value = subject.output
    if isinstance(value, str | bytes):
        try:
            value = json.loads(value)
        except ValueError as exc:
            return CheckResult("json_schema", False, f"the output is not JSON: {exc}")
    validator = Draft202012Validator(condition.json_schema)
    errors = sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path)))
    if not errors:
        return CheckResult("json_schema", True, "the output matches the schema")
    found = [{"path": error.json_path, "message": error.message} for error in errors]
    first = found[0]
    return CheckResult(
        "json_schema",
        False,
        f"at {first['path']}: {first['message']}",
        {"errors": found[:_MAX_REPORTED], "error_count": len(found)},
    )


@register_check(RegexCondition)
def _regex(condition: RegexCondition, subject: StepOutput) -> CheckResult:
    flags = (re.IGNORECASE if condition.ignore_case else 0) | (
        re.MULTILINE if condition.multiline else 0
    )
    pattern = re.compile(condition.pattern, flags)
    text = output_text(subject.output)
    match = pattern.fullmatch(text) if condition.match == "full" else pattern.search(text)
    if match is not None:
        found = f"/{condition.pattern}/ matches at {match.start()}"
    else:
        found = f"/{condition.pattern}/ does not match"
    passed = (match is not None) == condition.must_match
    expectation = "" if passed else (" (must match)" if condition.must_match else " (must not)")
    return CheckResult("regex", passed, found + expectation)


@register_check(MaxTokensCondition)
def _max_tokens(condition: MaxTokensCondition, subject: StepOutput) -> CheckResult:
    counted = subject.tokens_out is not None
    tokens = subject.tokens_out
    if tokens is None:
        tokens = count_tokens(output_text(subject.output))
    passed = tokens <= condition.max_tokens
    how = "" if counted else " (estimated)"
    return CheckResult(
        "max_tokens",
        passed,
        f"{tokens} tokens{how}, limit {condition.max_tokens}",
        {"tokens": tokens, "estimated": not counted},
    )


@register_check(ContainsCondition)
def _contains(condition: ContainsCondition, subject: StepOutput) -> CheckResult:
    found, missing = _find(condition.values, output_text(subject.output), condition.ignore_case)
    passed = not missing if condition.mode == "all" else bool(found)
    if passed:
        return CheckResult("contains", True, f"contains {', '.join(map(repr, found))}")
    return CheckResult(
        "contains", False, f"missing {', '.join(map(repr, missing))}", {"missing": missing}
    )


@register_check(NotContainsCondition)
def _not_contains(condition: NotContainsCondition, subject: StepOutput) -> CheckResult:
    found, _ = _find(condition.values, output_text(subject.output), condition.ignore_case)
    if not found:
        return CheckResult("not_contains", True, "contains none of the banned values")
    return CheckResult(
        "not_contains", False, f"contains {', '.join(map(repr, found))}", {"found": found}
    )


def _find(values: list[str], text: str, ignore_case: bool) -> tuple[list[str], list[str]]:
    haystack = text.casefold() if ignore_case else text
    found: list[str] = []
    missing: list[str] = []
    for value in values:
        needle = value.casefold() if ignore_case else value
        (found if needle in haystack else missing).append(value)
    return found, missing


@register_check(GroundedCondition)
def _grounded(condition: GroundedCondition, subject: StepOutput) -> CheckResult:
    try:
        claims, uncited = extract_claims(subject.output)
    except ValueError as exc:
        return CheckResult("grounded", False, f"cannot read the claims: {exc}")
    unsupported = check_claims(claims, subject.sources, min_overlap=condition.min_overlap)
    details: dict[str, Any] = {
        "claims": len(claims),
        "unsupported": [
            {"claim": p.claim, "sources": list(p.sources), "problems": list(p.problems)}
            for p in unsupported[:_MAX_REPORTED]
        ],
        "uncited": uncited[:_MAX_REPORTED],
    }
    if unsupported:
        first = unsupported[0]
        reason = f"{len(unsupported)} of {len(claims)} claims unsupported; "
        reason += f"{_shorten(first.claim)!r}: {'; '.join(first.problems)}"
        return CheckResult("grounded", False, reason, details)
    if condition.require_citations and uncited:
        reason = f"{len(uncited)} sentences cite no source; first: {_shorten(uncited[0])!r}"
        return CheckResult("grounded", False, reason, details)
    if len(claims) < condition.min_citations:
        reason = f"{len(claims)} cited claims, at least {condition.min_citations} required"
        return CheckResult("grounded", False, reason, details)
    return CheckResult("grounded", True, f"all {len(claims)} cited claims supported", details)


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@register_check(CustomCondition)
def _custom(condition: CustomCondition, subject: StepOutput) -> CheckResult:
    function = resolve_entrypoint(condition.check)
    try:
        outcome = function(subject, dict(condition.options))
    except Exception as exc:  # a user's check may raise anything: it fails closed
        reason = f"{condition.check} raised {type(exc).__name__}: {exc}"
        return CheckResult("custom", False, reason, {"error_type": type(exc).__name__})
    return _custom_result(condition.check, outcome)


def _custom_result(check: str, outcome: Any) -> CheckResult:
    if isinstance(outcome, CheckResult):
        return replace(outcome, kind="custom")
    if isinstance(outcome, bool):
        return CheckResult("custom", outcome, f"{check} {'passed' if outcome else 'failed'}")
    if (
        isinstance(outcome, tuple)
        and len(outcome) == 2
        and isinstance(outcome[0], bool)
        and isinstance(outcome[1], str)
    ):
        return CheckResult("custom", outcome[0], outcome[1])
    reason = f"{check} returned {type(outcome).__name__}, not bool, (bool, str) or CheckResult"
    return CheckResult("custom", False, reason)
