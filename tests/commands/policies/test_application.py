"""Policies application, run on the in-memory store and on PostgreSQL."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from omium.commands import (
    ConflictError,
    InvalidCommandError,
    InvalidPolicyError,
    NotFoundError,
    PoliciesApplication,
)
from tests.commands.helpers import event_names
from tests.commands.policies.test_rego import BUDGET

WARN_ONLY = 'package omium.budget\n\nwarn contains msg if { input.cost_usd > 5; msg := "high" }\n'


@pytest.fixture
def policies(app_factory: Callable[..., Any]) -> PoliciesApplication:
    return app_factory(PoliciesApplication)  # type: ignore[no-any-return]


def test_publish_versions_of_a_policy_and_query_them(
    policies: PoliciesApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant = tenant_factory()

    first = policies.publish_policy(
        tenant,
        name="budget",
        module=BUDGET,
        mode="deny",
        description="hard cap",
        expected_version=0,
    )
    second = policies.publish_policy(
        tenant, name="budget", module=WARN_ONLY, mode="warn", expected_version=1
    )

    assert (first.events, first.data) == (
        ("PolicyPublished",),
        {"policy_version": 1, "package": "omium.budget"},
    )
    assert (second.version, second.data["policy_version"]) == (2, 2)
    latest = policies.find_policy(tenant, "budget")
    assert (latest.id, latest.policy_version, latest.mode, latest.module) == (
        first.aggregate_id,
        2,
        "warn",
        WARN_ONLY,
    )
    v1 = policies.get_policy(tenant, first.aggregate_id, policy_version=1)
    assert (v1.mode, v1.description, v1.package) == ("deny", "hard cap", "omium.budget")
    assert v1.module_sha256 == hashlib.sha256(BUDGET.encode()).hexdigest()
    assert event_names(policies, first.aggregate_id) == ["PolicyPublished", "PolicyPublished"]


def test_a_module_that_does_not_compile_is_refused_and_nothing_is_written(
    policies: PoliciesApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant = tenant_factory()
    policies.publish_policy(tenant, name="budget", module=BUDGET, mode="deny")

    with pytest.raises(InvalidPolicyError) as refused:
        policies.publish_policy(
            tenant, name="budget", module="package p\nallow := {\n", mode="deny"
        )
    with pytest.raises(InvalidPolicyError):
        policies.publish_policy(tenant, name="fresh", module="allow := true", mode="deny")
    with pytest.raises(InvalidCommandError) as bad_mode:
        policies.publish_policy(tenant, name="budget", module=BUDGET, mode="block")

    assert "this is unclosed" in refused.value.compiler_message
    assert bad_mode.value.reason == "invalid_mode"
    assert policies.find_policy(tenant, "budget").latest_version == 1
    with pytest.raises(NotFoundError):
        policies.find_policy(tenant, "fresh")


def test_expected_version_guards_creation_and_updates(
    policies: PoliciesApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant = tenant_factory()

    with pytest.raises(ConflictError):
        policies.publish_policy(
            tenant, name="budget", module=BUDGET, mode="deny", expected_version=3
        )
    policies.publish_policy(tenant, name="budget", module=BUDGET, mode="deny", expected_version=0)
    with pytest.raises(ConflictError):
        policies.publish_policy(
            tenant, name="budget", module=BUDGET, mode="deny", expected_version=0
        )


def test_another_tenants_policy_is_not_found(
    policies: PoliciesApplication, tenant_factory: Callable[[], str]
) -> None:
    owner, intruder = tenant_factory(), tenant_factory()
    pid = policies.publish_policy(owner, name="budget", module=BUDGET, mode="deny").aggregate_id

    with pytest.raises(NotFoundError) as on_read:
        policies.get_policy(intruder, pid)
    intruders_own = policies.publish_policy(intruder, name="budget", module=BUDGET, mode="warn")

    assert on_read.value.aggregate_id == pid
    assert intruders_own.aggregate_id != pid
    assert policies.get_policy(owner, pid).mode == "deny"
