"""``approval.on_timeout: escalate`` in workflow definitions: it needs an escalation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from omium.sdk.workflow import ApprovalSpec


def test_escalate_needs_an_escalation_and_only_escalate_has_one() -> None:
    spec = ApprovalSpec.model_validate(
        {"on_timeout": "escalate", "escalation": {"approvers": ["carol"], "timeout_s": 60}}
    )
    assert spec.escalation is not None and spec.escalation.on_timeout == "reject"
    with pytest.raises(ValidationError, match="needs an escalation"):
        ApprovalSpec.model_validate({"on_timeout": "escalate"})
    with pytest.raises(ValidationError, match="only for on_timeout 'escalate'"):
        ApprovalSpec.model_validate(
            {"on_timeout": "approve", "escalation": {"approvers": ["carol"]}}
        )
    with pytest.raises(ValidationError, match="approvers and/or approver_role"):
        ApprovalSpec.model_validate({"on_timeout": "escalate", "escalation": {"timeout_s": 5}})
    with pytest.raises(ValidationError):  # no escalation of an escalation
        ApprovalSpec.model_validate(
            {"on_timeout": "escalate", "escalation": {"approvers": ["c"], "on_timeout": "escalate"}}
        )
