"""The Policy aggregate: a tenant's named Rego policy, published in numbered versions.

Every version is one ``PolicyPublished`` event, including the first, so the event stream of a
policy is exactly its publication history. The library wants a "created" event class to start an
aggregate, so ``PolicyPublished`` is that class and also applies to an existing policy for later
versions (see :meth:`Policy.PolicyPublished.mutate`).
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, CanMutateAggregate
from eventsourcing.utils import get_topic

from omium.commands._domain import TenantScoped
from omium.commands.errors import InvalidCommandError
from omium.commands.policies._rego import check_module_compiles

POLICY_NAMESPACE = UUID("0c6f5e1a-8d2b-4b7e-9f3c-5a1d2e3f4b02")
"""Namespace of the name-based (uuid5) policy ids."""

MAX_NAME_LENGTH = 200


class PolicyMode(StrEnum):
    """What a violation does: ``deny`` halts the run, ``warn`` only records it."""

    DENY = "deny"
    WARN = "warn"


def policy_id(tenant_id: str, name: str) -> UUID:
    """The id of a tenant's policy with this name."""
    return uuid5(POLICY_NAMESPACE, json.dumps([tenant_id, name]))


class Policy(TenantScoped, Aggregate):
    """A named Rego policy with versions 1, 2, ...

    Attributes:
        tenant_id: Owning tenant.
        name: Unique per tenant; the id is derived from tenant and name.
        versions: Every published version by number.
        latest_version: The highest version number.
    """

    class PolicyPublished(Aggregate.Created):
        """One published version of a policy (the first one also creates the policy)."""

        tenant_id: str
        name: str
        policy_version: int
        module: str
        module_sha256: str
        package: str
        mode: str
        description: str | None

        def mutate(self, aggregate: Any) -> Any:
            """Create the policy for version 1; apply like an ordinary event afterwards."""
            if aggregate is None:
                return super().mutate(None)
            return CanMutateAggregate.mutate(self, aggregate)

        def apply(self, aggregate: Any) -> None:
            """Record the version on the policy."""
            aggregate.versions[self.policy_version] = {
                "module": self.module,
                "module_sha256": self.module_sha256,
                "package": self.package,
                "mode": self.mode,
                "description": self.description,
            }
            aggregate.latest_version = self.policy_version

    @staticmethod
    def create_id(tenant_id: str, name: str) -> UUID:
        """Derive the id from the natural key (tenant, name)."""
        return policy_id(tenant_id, name)

    def __init__(self, tenant_id: str, name: str) -> None:
        """Start an empty policy; ``PolicyPublished.apply`` adds the version."""
        self.tenant_id = tenant_id
        self.name = name
        self.versions: dict[int, dict[str, Any]] = {}
        self.latest_version = 0

    @classmethod
    def publish_first(
        cls, *, tenant_id: str, name: str, module: str, mode: str, description: str | None
    ) -> Policy:
        """Create a policy with its version 1.

        Raises:
            InvalidPolicyError: The module does not compile.
            InvalidCommandError: A bad name or mode.
        """
        cls.check_name(name)
        return cls._create(
            cls.PolicyPublished,
            tenant_id=tenant_id,
            name=name,
            policy_version=1,
            **checked_version(module, mode, description),
        )

    def publish(self, *, module: str, mode: str, description: str | None) -> None:
        """Publish the next version of this policy.

        Raises:
            InvalidPolicyError: The module does not compile.
            InvalidCommandError: A bad mode.
        """
        self.trigger_event(
            self.PolicyPublished,
            originator_topic=get_topic(type(self)),
            tenant_id=self.tenant_id,
            name=self.name,
            policy_version=self.latest_version + 1,
            **checked_version(module, mode, description),
        )

    @staticmethod
    def check_name(name: object) -> None:
        """Refuse empty, padded or overlong names."""
        if (
            not isinstance(name, str)
            or not name.strip()
            or name != name.strip()
            or len(name) > MAX_NAME_LENGTH
        ):
            raise InvalidCommandError(
                f"policy name must be 1-{MAX_NAME_LENGTH} characters without outer spaces",
                reason="invalid_name",
                field="name",
            )


def checked_version(module: str, mode: str, description: str | None) -> dict[str, Any]:
    """Validate a version's module and mode; return the event attributes they yield."""
    if mode not in {m.value for m in PolicyMode}:
        raise InvalidCommandError(
            "mode must be 'deny' or 'warn'", reason="invalid_mode", field="mode"
        )
    package = check_module_compiles(module)
    return {
        "module": module,
        "module_sha256": hashlib.sha256(module.encode()).hexdigest(),
        "package": package,
        "mode": mode,
        "description": description,
    }
