"""Who is calling: roles in their order, and the authenticated principal."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

AuthMethod = Literal["jwt", "api_key"]


class Role(StrEnum):
    """Roles in increasing order of power; each role may do everything the ones below may."""

    VIEWER = "viewer"
    DEVELOPER = "developer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """Position in the order viewer < developer < operator < admin (0-based)."""
        return _ORDER.index(self)

    def covers(self, required: Role) -> bool:
        """Whether a holder of this role may do what ``required`` may."""
        return self.rank >= required.rank

    @classmethod
    def parse_many(cls, names: Iterable[object]) -> frozenset[Role]:
        """The known roles among ``names``; unknown names (another app's roles) are ignored."""
        values = {role.value for role in cls}
        return frozenset(cls(name) for name in names if isinstance(name, str) and name in values)


_ORDER = list(Role)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller.

    Attributes:
        subject: The token's ``sub``, or ``api-key:<key_id>`` for an API key.
        tenant_id: The tenant every read and write of this caller is scoped to.
        roles: The caller's known roles.
        method: How it authenticated: ``"jwt"`` or ``"api_key"``.
        key_id: The API key's id when ``method`` is ``"api_key"``.
    """

    subject: str
    tenant_id: str
    roles: frozenset[Role]
    method: AuthMethod
    key_id: str | None = None

    @property
    def role(self) -> Role | None:
        """The highest role held, or ``None`` when the caller holds no known role."""
        return max(self.roles, key=lambda role: role.rank, default=None)

    def has(self, required: Role) -> bool:
        """Whether the caller may do what ``required`` may."""
        role = self.role
        return role is not None and role.covers(required)
