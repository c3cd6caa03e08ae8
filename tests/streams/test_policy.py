"""The policy processor on real Kafka: deny, warn, hot reload, evaluation errors, bad modules."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from omium.commands import CommandApplications, InvalidPolicyError, event_store_env
from omium.kernel.serde import AvroSerde
from omium.kernel.settings import KafkaSettings, OmiumSettings
from omium.streams.base import ProcessorConfig
from omium.streams.policy import PolicyFeed, PolicyProcessor
from tests.streams.conftest import RunningRuntime
from tests.streams.events import TENANT, llm_call, policy_published, step_completed

pytestmark = pytest.mark.integration

BUDGET = """package omium.budget
import rego.v1
deny contains msg if {
  input.cost_usd > 1
  msg := sprintf("step cost %v over 1 USD", [input.cost_usd])
}
"""

SECRETS_V1 = """package omium.secrets
import rego.v1
deny contains "leaks a secret" if contains(input.output, "secret")
"""

SECRETS_V2 = """package omium.secrets
import rego.v1
deny contains "leaks a secret" if contains(input.output, "secret")
deny contains "leaks a password" if contains(input.output, "password")
"""

MODELS = """package omium.models
import rego.v1
allowed := {"gpt-small", "scripted"}
deny contains sprintf("model %v is not allowed", [input.model]) if not allowed[input.model]
"""

# Two values for one complete rule: an evaluation error (conflict), whatever the input.
BROKEN = """package omium.broken
import rego.v1
level := 1 if input.cost_usd >= 0
level := 2 if input.cost_usd >= 0
deny contains "too high" if level > 5
"""

POLICY_OUTPUTS = ("PolicyViolated", "PolicyEvaluationError")


@pytest.fixture
def policy_factory(
    config_factory: Callable[..., ProcessorConfig],
    runtime_factory: Callable[..., RunningRuntime],
    kafka: KafkaSettings,
    serde: AvroSerde,
) -> Callable[[], PolicyProcessor]:
    """Starts a policy processor on this test's topics."""

    def start() -> PolicyProcessor:
        processor = PolicyProcessor(PolicyFeed(kafka, serde))
        runtime_factory(processor, config_factory("policy"))
        return processor

    return start


def _outputs(
    read_events: Callable[..., list[dict[str, Any]]], count: int, timeout_s: float = 30
) -> list[dict[str, Any]]:
    return read_events(
        "policies",
        count=count,
        where=lambda e: e["event_type"] in POLICY_OUTPUTS,
        settle_s=1.5,
        timeout_s=timeout_s,
    )


def _wait_for_version(processor: PolicyProcessor, name: str, version: int) -> None:
    deadline = time.monotonic() + 30
    while processor.feed.registry.version_of(TENANT, name) != version:
        assert time.monotonic() < deadline, f"{name} v{version} never loaded"
        time.sleep(0.1)


def test_deny_records_a_violation_and_halts_the_run_once(
    policy_factory: Callable[[], PolicyProcessor],
    publish: Callable[..., None],
    read_events: Callable[..., list[dict[str, Any]]],
) -> None:
    run, fine = uuid.uuid4(), uuid.uuid4()
    publish(policy_published("budget", BUDGET))
    policy_factory()

    publish(
        step_completed(run, cost_usd=2.5),
        step_completed(run, cost_usd=3.0, step_id="write"),
        step_completed(fine, cost_usd=0.2),
    )

    violations = _outputs(read_events, 2)
    assert sorted(v["payload"]["step_id"] for v in violations) == ["plan", "write"]
    assert violations[0]["payload"]["messages"] == ["step cost 2.5 over 1 USD"]
    assert {v["payload"]["execution_id"] for v in violations} == {run}
    commands = read_events("commands", count=1, settle_s=1.0)
    assert [(c["payload"]["command"], c["payload"]["target_id"]) for c in commands] == [
        ("executions.halt_execution", str(run))
    ]


def test_warn_records_a_violation_without_halting(
    policy_factory: Callable[[], PolicyProcessor],
    publish: Callable[..., None],
    read_events: Callable[..., list[dict[str, Any]]],
) -> None:
    run = uuid.uuid4()
    publish(policy_published("models", MODELS, mode="warn", targets=["llm_call"]))
    policy_factory()

    publish(llm_call(run, model="gpt-huge"), llm_call(run, model="gpt-small"))

    (violation,) = _outputs(read_events, 1)
    assert violation["payload"]["mode"] == "warn"
    assert violation["payload"]["messages"] == ["model gpt-huge is not allowed"]
    assert violation["payload"]["span_id"]
    assert read_events("commands", count=1, timeout_s=2) == []


def test_a_new_policy_version_is_used_as_soon_as_it_is_published(
    policy_factory: Callable[[], PolicyProcessor],
    publish: Callable[..., None],
    read_events: Callable[..., list[dict[str, Any]]],
) -> None:
    run = uuid.uuid4()
    publish(policy_published("secrets", SECRETS_V1))
    processor = policy_factory()
    _wait_for_version(processor, "secrets", 1)
    publish(step_completed(run, output="the password is hunter2"))
    assert _outputs(read_events, 1, timeout_s=3) == []  # v1 does not look for passwords

    publish(policy_published("secrets", SECRETS_V2, version=2))
    _wait_for_version(processor, "secrets", 2)
    publish(step_completed(run, output="the password is hunter2", step_id="again"))

    (violation,) = _outputs(read_events, 1)
    assert (violation["payload"]["policy_version"], violation["payload"]["messages"]) == (
        2,
        ["leaks a password"],
    )


def test_an_evaluation_error_fails_closed_in_deny_mode_only(
    policy_factory: Callable[[], PolicyProcessor],
    publish: Callable[..., None],
    read_events: Callable[..., list[dict[str, Any]]],
) -> None:
    denied, warned = uuid.uuid4(), uuid.uuid4()
    publish(
        policy_published("broken", BROKEN, mode="deny", tenant_id=TENANT),
        policy_published("broken", BROKEN, mode="warn", tenant_id="tenant-other"),
    )
    policy_factory()

    publish(step_completed(denied), step_completed(warned, tenant_id="tenant-other"))

    errors = {e["tenant_id"]: e["payload"] for e in _outputs(read_events, 2)}
    assert errors[TENANT]["fail_closed"] is True
    assert errors["tenant-other"]["fail_closed"] is False
    assert "evaluation failed" in errors[TENANT]["error"]
    commands = read_events("commands", count=1, settle_s=1.0)
    assert [c["payload"]["target_id"] for c in commands] == [str(denied)]


def test_a_malformed_module_is_refused_at_publish_time_and_fails_closed_if_it_arrives(
    stack: OmiumSettings,
    policy_factory: Callable[[], PolicyProcessor],
    publish: Callable[..., None],
    read_events: Callable[..., list[dict[str, Any]]],
) -> None:
    apps = CommandApplications.create(event_store_env(stack, backend="popo"))
    with apps, pytest.raises(InvalidPolicyError):
        apps.policies.publish_policy(
            TENANT, name="bad", module="package omium.bad\ndeny contains {", mode="deny"
        )
    run = uuid.uuid4()
    publish(policy_published("bad", "package omium.bad\ndeny contains {"))
    policy_factory()

    publish(step_completed(run))

    (error,) = _outputs(read_events, 1)
    assert error["event_type"] == "PolicyEvaluationError"
    assert "does not compile" in error["payload"]["error"]
    assert error["payload"]["fail_closed"] is True
