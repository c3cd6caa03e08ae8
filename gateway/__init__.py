"""The gateway: Omium's authenticated, rate-limited, audited HTTP API (FastAPI).

Command routes live in ``gateway/api/<area>.py`` (each defines ``router``) and use:

- ``requires(Role.X, command="area.verb")`` to declare the minimum role (mandatory under
  ``/api/v1``); it authenticates, rate-limits, checks the role and marks writes for the audit;
- ``Command`` (a ``CommandContext``: principal, ``tenant_id``, ``idempotency_key``,
  ``set_target``), or ``TenantId`` / ``CurrentPrincipal`` / ``IdempotencyKey``;
- ``register_error`` when an error class needs a status the table does not give it yet.
"""

from omium.gateway._api_keys import (
    API_KEY_PREFIX,
    ApiKey,
    ApiKeys,
    ApiKeyStore,
    InMemoryApiKeyStore,
    IssuedApiKey,
    generate_api_key,
    hash_api_key,
)
from omium.gateway._api_keys_pg import ApiKeyStoreError, PostgresApiKeyStore
from omium.gateway._app import app_from_env, create_app, serve
from omium.gateway._audit import (
    AuditEntry,
    AuditMiddleware,
    AuditResult,
    AuditSink,
    BaseAuditSink,
    InMemoryAuditSink,
    LogAuditSink,
    audit_payload,
)
from omium.gateway._audit_kafka import KafkaAuditSink
from omium.gateway._auth import API_KEY_HEADER, authenticate
from omium.gateway._jwt import DEV_JWT_SECRET, TokenVerifier, mint_token, resolve_jwt_secret
from omium.gateway._policy import (
    API_PREFIX,
    AccessRule,
    Command,
    CommandContext,
    CurrentPrincipal,
    IdempotencyKey,
    TenantId,
    access_matrix,
    command_context,
    current_tenant,
    idempotency_key,
    requires,
    route_rules,
    rule_of,
    unguarded_routes,
)
from omium.gateway._principal import AuthMethod, Principal, Role
from omium.gateway._problems import (
    PROBLEM_MEDIA_TYPE,
    ProblemResponse,
    ProblemSpec,
    ProblemTable,
    default_table,
    problem_table,
    register_error,
    render_problem,
)
from omium.gateway._ratelimit import (
    InMemoryRateLimiter,
    RateDecision,
    RateLimiter,
    RedisRateLimiter,
    buckets_for,
)
from omium.gateway._services import (
    GatewayServices,
    build_services,
    default_readiness,
    in_memory_services,
    run_checks,
)

__all__ = [
    # app
    "app_from_env",
    "serve",
    "create_app",
    "GatewayServices",
    "build_services",
    "in_memory_services",
    "default_readiness",
    "run_checks",
    # declaring routes
    "API_PREFIX",
    "AccessRule",
    "Command",
    "access_matrix",
    "CommandContext",
    "CurrentPrincipal",
    "IdempotencyKey",
    "TenantId",
    "command_context",
    "current_tenant",
    "idempotency_key",
    "requires",
    "route_rules",
    "rule_of",
    "unguarded_routes",
    # principals and authentication
    "API_KEY_HEADER",
    "AuthMethod",
    "DEV_JWT_SECRET",
    "Principal",
    "Role",
    "TokenVerifier",
    "authenticate",
    "mint_token",
    "resolve_jwt_secret",
    # API keys
    "API_KEY_PREFIX",
    "ApiKey",
    "ApiKeyStore",
    "ApiKeyStoreError",
    "ApiKeys",
    "InMemoryApiKeyStore",
    "IssuedApiKey",
    "PostgresApiKeyStore",
    "generate_api_key",
    "hash_api_key",
    # problem details
    "PROBLEM_MEDIA_TYPE",
    "ProblemResponse",
    "ProblemSpec",
    "ProblemTable",
    "default_table",
    "problem_table",
    "register_error",
    "render_problem",
    # rate limiting
    "InMemoryRateLimiter",
    "RateDecision",
    "RateLimiter",
    "RedisRateLimiter",
    "buckets_for",
    # audit
    "AuditEntry",
    "AuditMiddleware",
    "AuditResult",
    "AuditSink",
    "BaseAuditSink",
    "InMemoryAuditSink",
    "KafkaAuditSink",
    "LogAuditSink",
    "audit_payload",
]
