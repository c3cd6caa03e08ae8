"""Rego compile checks with regopy."""

from __future__ import annotations

import pytest

from omium.commands.errors import InvalidPolicyError
from omium.commands.policies import check_module_compiles, module_package

BUDGET = """
# Halt a run whose cost goes over budget.
package omium.budget

import rego.v1

deny contains msg if {
    input.cost_usd > data.budget_usd
    msg := sprintf("cost %v over budget", [input.cost_usd])
}
"""


def test_a_valid_module_compiles_and_names_its_package() -> None:
    assert check_module_compiles(BUDGET) == "omium.budget"


@pytest.mark.parametrize(
    ("module", "message"),
    [
        ("package p\nallow := {\n", "policy.rego:2:10: this is unclosed"),
        ("package p\n\nallow if { input.x = = 1 }\n", "policy.rego:3:20"),
        ("package p\nallow if { no_such_function(1) }\n", "Function not found: no_such_function"),
        ("package p\nx := 1\nx := 2\n", "evaluation failed"),
        ("allow := true\n", "must start with 'package"),
        ("package 'quoted'\n", "must start with 'package"),
        ("   \n", "empty"),
    ],
)
def test_a_module_that_does_not_compile_is_refused_with_the_compilers_message(
    module: str, message: str
) -> None:
    with pytest.raises(InvalidPolicyError) as refused:
        check_module_compiles(module)

    assert message in refused.value.compiler_message
    assert (refused.value.reason, refused.value.field) == ("compile_error", "module")


def test_the_compiler_prints_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(InvalidPolicyError):
        check_module_compiles("package p\nallow := {\n")

    assert capfd.readouterr().out == ""


def test_the_package_line_may_follow_comments() -> None:
    assert module_package("# header\n\n  package a.b_c.d  # trailing\n") == "a.b_c.d"
