"""Command handlers and queries for policies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from omium.commands._application import CommandApplication, check_tenant_id, command_handler
from omium.commands._result import Outcome
from omium.commands.errors import ConflictError, InvalidCommandError, NotFoundError
from omium.commands.policies.domain import Policy
from omium.commands.policies.domain import policy_id as derive_policy_id


@dataclass(frozen=True)
class PolicyView:
    """One version of a policy, as queries return it.

    Attributes:
        policy_version: Version of ``module``.
        latest_version: The newest version.
        package: The module's package; evaluate ``data.<package>``.
        mode: ``deny`` (halts the run) or ``warn``.
        version: The aggregate version (for ``expected_version``).
    """

    id: UUID
    tenant_id: str
    name: str
    policy_version: int
    latest_version: int
    module: str
    module_sha256: str
    package: str
    mode: str
    description: str | None
    created_at: datetime
    modified_at: datetime
    version: int


class PoliciesApplication(CommandApplication):
    """Publishes versions of tenants' Rego policies (the module must compile)."""

    name = "Policies"

    @command_handler
    def publish_policy(
        self,
        tenant_id: str,
        *,
        name: str,
        module: str,
        mode: str,
        description: str | None = None,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Outcome[Policy]:
        """Publish a policy version: version 1 creates the policy, later ones follow it.

        Args:
            tenant_id: The caller's tenant.
            name: The policy's name, unique per tenant.
            module: Rego source; refused unless it compiles.
            mode: ``deny`` or ``warn``.
            description: Free text for the policy history.
            expected_version: The policy's aggregate version the caller saw (0: must be new).
            idempotency_key: Same key, same result, nothing written again.

        Returns:
            A result whose ``data`` has ``policy_version`` and ``package``.

        Raises:
            InvalidPolicyError: The module does not compile (``compiler_message``).
            ConflictError: The policy changed since ``expected_version``.
        """
        Policy.check_name(name)
        pid = derive_policy_id(tenant_id, name)
        if self.exists(pid):
            policy = self.load(Policy, tenant_id, pid, expected_version=expected_version or None)
            if expected_version == 0:
                raise ConflictError(pid, expected_version=0, actual_version=policy.version)
            policy.publish(module=module, mode=mode, description=description)
        else:
            if expected_version:
                raise ConflictError(pid, expected_version=expected_version, actual_version=0)
            policy = Policy.publish_first(
                tenant_id=tenant_id, name=name, module=module, mode=mode, description=description
            )
        latest = policy.versions[policy.latest_version]
        return Outcome(
            policy, {"policy_version": policy.latest_version, "package": latest["package"]}
        )

    def get_policy(
        self, tenant_id: str, policy_id: UUID, *, policy_version: int | None = None
    ) -> PolicyView:
        """Return a policy at its latest (or a given) version.

        Raises:
            NotFoundError: No such policy for this tenant.
            InvalidCommandError: ``unknown_version``.
        """
        check_tenant_id(tenant_id)
        policy = self.load(Policy, tenant_id, policy_id)
        number = policy.latest_version if policy_version is None else policy_version
        if number not in policy.versions:
            raise InvalidCommandError(
                f"policy {policy_id} has no version {number}",
                reason="unknown_version",
                field="policy_version",
            )
        version = policy.versions[number]
        return PolicyView(
            id=policy.id,
            tenant_id=policy.tenant_id,
            name=policy.name,
            policy_version=number,
            latest_version=policy.latest_version,
            module=version["module"],
            module_sha256=version["module_sha256"],
            package=version["package"],
            mode=version["mode"],
            description=version["description"],
            created_at=policy.created_on,
            modified_at=policy.modified_on,
            version=policy.version,
        )

    def find_policy(self, tenant_id: str, name: str) -> PolicyView:
        """Return the tenant's policy with this name, at its latest version.

        Raises:
            NotFoundError: The tenant has no policy with this name.
        """
        check_tenant_id(tenant_id)
        pid = derive_policy_id(tenant_id, name)
        if not self.exists(pid):
            raise NotFoundError(pid, aggregate_type="Policy")
        return self.get_policy(tenant_id, pid)
