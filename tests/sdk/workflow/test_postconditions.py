"""Every post-condition kind, passing and failing, plus ``field`` selection and the registry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from pydantic import TypeAdapter

from omium.sdk.workflow import (
    CheckResult,
    EntrypointError,
    PostCondition,
    StepOutput,
    check_postcondition,
    check_postconditions,
    output_text,
)

CONDITION: TypeAdapter[Any] = TypeAdapter(PostCondition)


def check(spec: dict[str, Any], output: Any, **extra: Any) -> CheckResult:
    return check_postcondition(CONDITION.validate_python(spec), StepOutput(output, **extra))


REPORT_SCHEMA = {
    "type": "object",
    "required": ["title", "sections"],
    "properties": {"title": {"type": "string"}, "sections": {"type": "array", "minItems": 1}},
}


def test_json_schema_passes_on_objects_and_json_text() -> None:
    spec = {"kind": "json_schema", "schema": REPORT_SCHEMA}

    assert check(spec, {"title": "T", "sections": ["a"]}).passed
    assert check(spec, '{"title": "T", "sections": ["a"]}').passed


def test_json_schema_failures_name_the_path() -> None:
    spec = {"kind": "json_schema", "schema": REPORT_SCHEMA}

    result = check(spec, {"title": 3, "sections": []})
    assert not result.passed and result.failure_kind == "postcondition_failed"
    assert result.details["error_count"] == 2
    assert {e["path"] for e in result.details["errors"]} == {"$.title", "$.sections"}
    assert result.reason.startswith("at $.")

    broken = check(spec, '{"title": "T", "sec')
    assert not broken.passed and broken.reason.startswith("the output is not JSON")


@pytest.mark.parametrize(
    ("extra", "text", "passed"),
    [
        ({}, "# Title\nbody", True),
        ({}, "no title", False),
        ({"match": "full"}, "# Title\nbody", False),
        ({"must_match": False}, "no title", True),
        ({"must_match": False}, "# Title", False),
        ({"ignore_case": True, "pattern": "^# title"}, "# TITLE", True),
        ({"multiline": True, "pattern": "^body$"}, "# Title\nbody", True),
    ],
)
def test_regex(extra: dict[str, Any], text: str, passed: bool) -> None:
    result = check({"kind": "regex", "pattern": r"^# \S", **extra}, text)

    assert result.passed is passed, result.reason


def test_max_tokens_uses_the_provider_count_when_known() -> None:
    spec = {"kind": "max_tokens", "max_tokens": 3}

    estimated = check(spec, "one two three four")
    assert not estimated.passed and estimated.details == {"tokens": 4, "estimated": True}
    assert check(spec, "one two three").passed
    counted = check(spec, "one two three four", tokens_out=2)
    assert counted.passed and counted.details == {"tokens": 2, "estimated": False}


def test_contains_all_any_and_case() -> None:
    spec = {"kind": "contains", "value": ["Summary", "Sources"]}

    assert check(spec, "Summary ... Sources").passed
    missing = check(spec, "Summary only")
    assert not missing.passed and missing.details == {"missing": ["Sources"]}
    assert check({**spec, "mode": "any"}, "Summary only").passed
    assert not check({"kind": "contains", "value": "summary"}, "Summary").passed
    assert check({"kind": "contains", "value": "summary", "ignore_case": True}, "Summary").passed


def test_not_contains() -> None:
    spec = {"kind": "not_contains", "value": ["TODO", "lorem ipsum"], "ignore_case": True}

    assert check(spec, "A finished report.").passed
    found = check(spec, "Lorem Ipsum dolor; todo: cite")
    assert not found.passed and found.details == {"found": ["TODO", "lorem ipsum"]}


def test_text_checks_see_structured_output_as_json() -> None:
    assert output_text({"a": "b"}) == '{"a": "b"}'
    assert output_text(None) == ""
    assert check({"kind": "contains", "value": '"status": "ok"'}, {"status": "ok"}).passed


def test_field_selects_part_of_the_output() -> None:
    output = {"report": {"sections": [{"title": "Intro"}]}, "notes": "TODO"}
    spec = {"kind": "contains", "value": "Intro", "field": "report.sections.0.title"}

    assert check(spec, output).passed
    assert check({**spec, "field": "report"}, '{"report": "Intro here"}').passed
    missing = check({**spec, "field": "report.sections.3"}, output)
    assert not missing.passed
    assert missing.reason == "the output has no field 'report.sections.3'"


def test_results_carry_the_description() -> None:
    spec = {"kind": "contains", "value": "x", "description": "mentions x"}

    assert check(spec, "x").description == "mentions x"


SOURCES = {
    "oslo": "In 2019 Oslo recorded zero pedestrian deaths after removing parking in its centre.",
    "helsinki": "Helsinki lowered speed limits to 30 km/h on most streets in 2019.",
}


def test_grounded_text_claims_pass_when_supported() -> None:
    report = (
        "# Safer streets\n"
        "Oslo recorded zero pedestrian deaths in 2019 [source:oslo]. "
        "Helsinki lowered speed limits to 30 km/h [source:helsinki].\n"
        "Both cities removed parking or lowered limits. [source:oslo, helsinki]"
    )

    result = check({"kind": "grounded", "min_citations": 3}, report, sources=SOURCES)

    assert result.passed, result.reason
    assert result.details["claims"] == 3


def test_grounded_catches_a_changed_number() -> None:
    report = "Oslo recorded zero pedestrian deaths in 2021 [source:oslo]."

    result = check({"kind": "grounded"}, report, sources=SOURCES)

    assert not result.passed and result.failure_kind == "hallucination"
    [problem] = result.details["unsupported"]
    assert problem["problems"] == ["2021 in no cited source"]


def test_grounded_catches_an_unknown_source_and_an_unrelated_claim() -> None:
    report = (
        "Oslo recorded zero pedestrian deaths [source:oslo]. "
        "Copenhagen built bicycle superhighways everywhere [source:cph]. "
        "Helsinki introduced congestion charging for lorries [source:helsinki]."
    )

    result = check({"kind": "grounded"}, report, sources=SOURCES)

    assert not result.passed
    problems = {p["claim"]: p["problems"] for p in result.details["unsupported"]}
    assert problems["Copenhagen built bicycle superhighways everywhere."] == [
        "cites unknown source 'cph'"
    ]
    [overlap] = problems["Helsinki introduced congestion charging for lorries."]
    assert overlap.startswith("only 20% of its words")
    assert result.reason.startswith("2 of 3 claims unsupported")


def test_grounded_catches_the_scripted_hallucination() -> None:
    from omium.sdk.providers import HALLUCINATION

    report = "Oslo recorded zero pedestrian deaths in 2019 [source:oslo]. "
    report += HALLUCINATION.format(source="oslo")

    result = check({"kind": "grounded"}, report, sources=SOURCES)

    assert not result.passed
    assert "4700 in no cited source" in result.details["unsupported"][0]["problems"]


def test_grounded_counts_citations_and_uncited_sentences() -> None:
    report = (
        "# Title\nOslo recorded zero pedestrian deaths [source:oslo]. Cities are changing fast."
    )

    assert not check({"kind": "grounded", "min_citations": 2}, report, sources=SOURCES).passed
    assert check({"kind": "grounded"}, report, sources=SOURCES).passed
    strict = check({"kind": "grounded", "require_citations": True}, report, sources=SOURCES)
    assert not strict.passed
    assert strict.details["uncited"] == ["Cities are changing fast."]
    assert not check({"kind": "grounded"}, "No citations at all here.", sources=SOURCES).passed


def test_grounded_structured_claims_with_quotes() -> None:
    claims: dict[str, Any] = {
        "claims": [
            {"text": "Oslo had no pedestrian deaths", "source": "oslo", "quote": "ZERO pedestrian"},
            {"text": "Helsinki cut limits", "sources": ["helsinki"], "quote": "to 30 km/h"},
        ]
    }
    assert check({"kind": "grounded", "min_citations": 2}, claims, sources=SOURCES).passed

    claims["claims"][1]["quote"] = "to 20 km/h"
    result = check({"kind": "grounded"}, claims, sources=SOURCES)
    assert not result.passed
    assert result.details["unsupported"][0]["problems"] == ["quote not found in the cited sources"]


def test_grounded_reads_facts_lists_and_refuses_malformed_claims() -> None:
    facts = [{"text": "Oslo recorded zero pedestrian deaths in 2019", "source": "oslo"}]

    assert check({"kind": "grounded"}, {"facts": facts}, sources=SOURCES).passed
    assert check({"kind": "grounded"}, facts, sources=SOURCES).passed
    malformed = check({"kind": "grounded"}, [{"text": "no source"}], sources=SOURCES)
    assert not malformed.passed and "needs a 'source'" in malformed.reason
    assert not check({"kind": "grounded"}, 42, sources=SOURCES).passed


def length_at_most(output: StepOutput, options: Mapping[str, Any]) -> tuple[bool, str]:
    size = len(output_text(output.output))
    return size <= options["limit"], f"{size} characters"


def always(output: StepOutput, options: Mapping[str, Any]) -> bool:
    return bool(options.get("answer", True))


def explode(output: StepOutput, options: Mapping[str, Any]) -> bool:
    raise RuntimeError("broken check")


def detailed(output: StepOutput, options: Mapping[str, Any]) -> CheckResult:
    return CheckResult("mine", False, "custom reason", {"score": 0.2})


def wrong_type(output: StepOutput, options: Mapping[str, Any]) -> str:
    return "yes"


def test_custom_checks_return_bool_tuple_or_result() -> None:
    here = __name__

    short = check(
        {"kind": "custom", "check": f"{here}:length_at_most", "options": {"limit": 5}}, "abc"
    )
    assert short.passed and short.reason == "3 characters"
    assert not check(
        {"kind": "custom", "check": f"{here}:always", "options": {"answer": False}}, "x"
    ).passed
    result = check({"kind": "custom", "check": f"{here}:detailed"}, "x")
    assert (result.kind, result.passed, result.details) == ("custom", False, {"score": 0.2})


def test_custom_checks_fail_closed() -> None:
    raised = check({"kind": "custom", "check": f"{__name__}:explode"}, "x")
    assert not raised.passed and "RuntimeError: broken check" in raised.reason
    odd = check({"kind": "custom", "check": f"{__name__}:wrong_type"}, "x")
    assert not odd.passed and "returned str" in odd.reason
    with pytest.raises(EntrypointError) as caught:
        check({"kind": "custom", "check": "no_such_module_here:check"}, "x")
    assert caught.value.reason == "import_failed"


def test_check_postconditions_runs_all_of_them() -> None:
    specs = [
        CONDITION.validate_python({"kind": "contains", "value": "a"}),
        CONDITION.validate_python({"kind": "contains", "value": "z"}),
        CONDITION.validate_python({"kind": "max_tokens", "max_tokens": 10}),
    ]

    results = check_postconditions(specs, StepOutput("a b c"))

    assert [r.passed for r in results] == [True, False, True]
