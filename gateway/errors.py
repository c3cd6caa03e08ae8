"""Errors the gateway raises itself; the problem table maps each class to an HTTP status.

They carry machine-readable fields (``reason``, ``retry_after``, ``required_role`` ...) which the
problem table copies into extension members, so nothing downstream parses message text.
"""

from __future__ import annotations

from omium.kernel.errors import OmiumError


class GatewayError(OmiumError):
    """Root of the gateway's own errors."""


class MalformedRequestError(GatewayError):
    """The request cannot be read at all (bad header, body that is not JSON).

    Attributes:
        reason: A short machine-readable code (``"json_invalid"``, ``"header"``).
    """

    def __init__(self, message: str, *, reason: str) -> None:
        self.reason = reason
        super().__init__(message)


class InvalidIdempotencyKeyError(MalformedRequestError):
    """The ``Idempotency-Key`` header is empty, too long or not printable ASCII."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="idempotency_key")


class RequestTooLargeError(GatewayError):
    """The request body is larger than ``gateway.max_body_bytes``.

    Attributes:
        max_bytes: The configured limit.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        super().__init__(f"request body exceeds the limit of {max_bytes} bytes")


class HeadersTooLargeError(GatewayError):
    """The request's headers are larger (or more) than the gateway accepts (HTTP 431).

    Attributes:
        max_bytes: The limit on the headers' total size (names and values).
        max_count: The limit on their number.
    """

    def __init__(self, *, max_bytes: int, max_count: int) -> None:
        self.max_bytes = max_bytes
        self.max_count = max_count
        super().__init__(
            f"request headers exceed the limit of {max_count} headers or {max_bytes} bytes"
        )


class UnsupportedMediaTypeError(GatewayError):
    """A request body was sent with a content type other than JSON.

    Attributes:
        content_type: What the client sent (``None`` when the header was missing).
    """

    def __init__(self, content_type: str | None) -> None:
        self.content_type = content_type
        super().__init__(
            f"request bodies must be application/json, got {content_type or 'no content type'}"
        )


class AuthenticationError(GatewayError):
    """No credentials, or credentials that do not verify (HTTP 401).

    Attributes:
        reason: ``"missing"``, ``"invalid_token"``, ``"expired"``, ``"invalid_audience"``,
            ``"invalid_issuer"``, ``"missing_claim"``, ``"invalid_api_key"``, ``"revoked"``
            or ``"ambiguous"``.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        self.reason = reason
        super().__init__(message)


class PermissionDeniedError(GatewayError):
    """The caller is authenticated but its role is below what the route requires (HTTP 403).

    Attributes:
        required_role: The minimum role of the route.
        actual_role: The caller's highest role (``None`` when it has no known role).
    """

    def __init__(self, *, required_role: str, actual_role: str | None) -> None:
        self.required_role = required_role
        self.actual_role = actual_role
        super().__init__(f"this action needs role {required_role} (caller has {actual_role})")


class ApiKeyNotFoundError(GatewayError):
    """No API key with this id exists in the caller's tenant.

    Attributes:
        key_id: The id that was looked up.
    """

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        super().__init__(f"API key {key_id} not found")


class RateLimitedError(GatewayError):
    """A token bucket of the caller is empty (HTTP 429).

    Attributes:
        retry_after: Whole seconds until a request can succeed (ceiling, at least 1).
        limit: Capacity of the bucket that refused.
        remaining: Tokens left in that bucket (0).
        reset_after: Whole seconds until that bucket is full again.
        scope: ``"tenant"`` or ``"api_key"``: which bucket refused.
    """

    def __init__(
        self, *, retry_after: int, limit: int, remaining: int, reset_after: int, scope: str
    ) -> None:
        self.retry_after = retry_after
        self.limit = limit
        self.remaining = remaining
        self.reset_after = reset_after
        self.scope = scope
        super().__init__(f"rate limit of the {scope} exceeded; retry after {retry_after}s")


class RateLimiterUnavailableError(GatewayError):
    """Redis, which keeps the rate limits, cannot be reached: the gateway fails closed (503)."""

    def __init__(self) -> None:
        super().__init__(
            "the rate limiter is unavailable, so requests are refused until it is back; retry later"
        )


class GatewayOverloadedError(GatewayError):
    """This gateway process holds as many commands as it may at once (HTTP 503, retry soon).

    Attributes:
        limit: Commands in flight at most per gateway process (``max_commands_in_flight``).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"the gateway is handling {limit} commands already; retry in a moment")


class DependencyUnavailableError(GatewayError):
    """A backing service the request needs is down (HTTP 503).

    Attributes:
        checks: ``{name: "ok" | reason}`` for each dependency checked.
    """

    def __init__(self, checks: dict[str, str]) -> None:
        self.checks = checks
        failed = ", ".join(sorted(name for name, state in checks.items() if state != "ok"))
        super().__init__(f"not ready: {failed} unreachable")


class IdentityProviderUnavailableError(GatewayError):
    """The JWKS endpoint cannot be fetched, so RS256 tokens cannot be checked now (HTTP 503)."""

    def __init__(self) -> None:
        super().__init__("the identity provider's signing keys cannot be fetched; retry later")
