"""One converted input evaluated by several policies gives what each policy gives alone."""

from __future__ import annotations

from typing import Any

import pytest

from omium.streams.policy import CompiledPolicy, PolicyEvaluationFailure, PolicyInput
from tests.streams.events import BUDGET_POLICY, SECRETS_POLICY


def _policy(name: str, module: str, package_prefix: str = "streams") -> CompiledPolicy:
    return CompiledPolicy.compile(
        tenant_id="t",
        policy_id=name,
        version=1,
        mode="deny",
        targets=[],
        package=f"{package_prefix}.{name}",
        module=module,
    )


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"cost_usd": 0.5, "output": "fine"}, ([], [])),
        ({"cost_usd": 2, "output": "fine"}, (["step cost 2 over 1 USD"], [])),
        (
            {"cost_usd": 3, "output": "a secret", "n": [1, {"x": None}]},
            (
                ["step cost 3 over 1 USD"],
                ["leaks a secret"],
            ),
        ),
    ],
)
def test_a_shared_input_gives_each_policy_its_own_answer(
    document: dict[str, Any], expected: tuple[list[str], list[str]]
) -> None:
    budget, secrets = _policy("budget", BUDGET_POLICY), _policy("secrets", SECRETS_POLICY)
    shared = PolicyInput(document)

    assert (budget.evaluate(shared), secrets.evaluate(shared)) == expected
    assert (budget.evaluate(shared), secrets.evaluate(shared)) == expected  # set again: same
    assert (budget.evaluate(document), secrets.evaluate(document)) == expected


def test_inputs_do_not_leak_between_documents() -> None:
    budget = _policy("budget", BUDGET_POLICY)
    costly, cheap = PolicyInput({"cost_usd": 5}), PolicyInput({"cost_usd": 0.1})

    assert budget.evaluate(costly) == ["step cost 5 over 1 USD"]
    assert budget.evaluate(cheap) == []
    assert budget.evaluate(costly) == ["step cost 5 over 1 USD"]


def test_a_policy_that_did_not_compile_still_fails_closed_on_a_shared_input() -> None:
    broken = _policy("broken", "package t.broken\ndeny contains if {", "t")

    with pytest.raises(PolicyEvaluationFailure, match="does not compile"):
        broken.evaluate(PolicyInput({"cost_usd": 1}))
