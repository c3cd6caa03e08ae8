"""The PostgreSQL read model's schema, as numbered migrations applied once each.

Every table lives in one PostgreSQL schema per deployment (``<topic prefix>_rm``), so a replay
can build a whole fresh set beside it and swap it in by renaming schemas in one transaction.
Every table leads with ``tenant_id``: each query is tenant-scoped and every index starts there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg

from omium.projections.base.errors import ProjectionStoreError

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")


@dataclass(frozen=True)
class Migration:
    """One schema change; ``{s}`` in ``sql`` stands for the schema name."""

    version: int
    name: str
    sql: str


def schema_for(topic_prefix: str) -> str:
    """The PostgreSQL schema of the read model of a topic prefix (``omium`` → ``omium_rm``)."""
    cleaned = re.sub(r"[^a-z0-9_]", "_", topic_prefix.lower())
    if not cleaned or cleaned[0].isdigit():
        cleaned = f"p_{cleaned}"
    return check_identifier(f"{cleaned[:50]}_rm")


def check_identifier(name: str) -> str:
    """``name`` if it is a safe unquoted identifier (it is pasted into SQL), else raise."""
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"not a safe SQL identifier: {name!r}")
    return name


_INITIAL = """
CREATE TABLE {s}.projection_offsets (
    topic        text        NOT NULL,
    partition    integer     NOT NULL,
    next_offset  bigint      NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);

CREATE TABLE {s}.workflows (
    tenant_id          text        NOT NULL,
    workflow_id        text        NOT NULL,
    name               text        NOT NULL,
    description        text,
    registered_by      text,
    tags               text[]      NOT NULL DEFAULT '{}',
    latest_version     integer,
    registered_at      timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    last_event_version bigint      NOT NULL,
    PRIMARY KEY (tenant_id, workflow_id)
);
CREATE INDEX ON {s}.workflows (tenant_id, name);

CREATE TABLE {s}.workflow_versions (
    tenant_id         text        NOT NULL,
    workflow_id       text        NOT NULL,
    version           integer     NOT NULL,
    definition_json   text        NOT NULL,
    definition_sha256 text        NOT NULL,
    source_format     text        NOT NULL,
    step_ids          text[]      NOT NULL DEFAULT '{}',
    published_by      text,
    changelog         text,
    published_at      timestamptz NOT NULL,
    event_id          uuid        NOT NULL,
    PRIMARY KEY (tenant_id, workflow_id, version)
);

CREATE TABLE {s}.executions (
    tenant_id                 text        NOT NULL,
    execution_id              text        NOT NULL,
    workflow_id               text,
    workflow_version          integer,
    status                    text        NOT NULL,
    trigger                   text,
    started_by                text,
    parent_execution_id       text,
    forked_from_checkpoint_id text,
    labels                    jsonb       NOT NULL DEFAULT '{}',
    agents                    text[]      NOT NULL DEFAULT '{}',
    input_json                text,
    output_json               text,
    error_type                text,
    error_message             text,
    status_reason             text,
    current_step_id           text,
    steps_completed           integer     NOT NULL DEFAULT 0,
    steps_failed              integer     NOT NULL DEFAULT 0,
    total_tokens              bigint      NOT NULL DEFAULT 0,
    total_cost_usd            double precision NOT NULL DEFAULT 0,
    max_cost_usd              double precision,
    max_tokens                bigint,
    duration_ms               bigint,
    started_at                timestamptz NOT NULL,
    ended_at                  timestamptz,
    updated_at                timestamptz NOT NULL,
    last_event_version        bigint      NOT NULL,
    PRIMARY KEY (tenant_id, execution_id)
);
CREATE INDEX ON {s}.executions (tenant_id, started_at DESC, execution_id DESC);
CREATE INDEX ON {s}.executions (tenant_id, status, started_at DESC, execution_id DESC);
CREATE INDEX ON {s}.executions (tenant_id, workflow_id, started_at DESC, execution_id DESC);
CREATE INDEX ON {s}.executions USING gin (agents);

CREATE TABLE {s}.steps (
    tenant_id          text        NOT NULL,
    execution_id       text        NOT NULL,
    step_id            text        NOT NULL,
    attempt            integer     NOT NULL,
    agent              text,
    status             text        NOT NULL,
    worker_id          text,
    branch             text,
    depends_on         text[]      NOT NULL DEFAULT '{}',
    output_json        text,
    error_type         text,
    error_message      text,
    retryable          boolean,
    failure_id         text,
    model              text,
    tokens_in          bigint      NOT NULL DEFAULT 0,
    tokens_out         bigint      NOT NULL DEFAULT 0,
    cost_usd           double precision NOT NULL DEFAULT 0,
    duration_ms        bigint,
    scheduled_at       timestamptz,
    started_at         timestamptz,
    ended_at           timestamptz,
    last_event_version bigint      NOT NULL,
    PRIMARY KEY (tenant_id, execution_id, step_id, attempt)
);
CREATE INDEX ON {s}.steps (tenant_id, ended_at);

CREATE TABLE {s}.checkpoints (
    tenant_id            text        NOT NULL,
    checkpoint_id        text        NOT NULL,
    execution_id         text        NOT NULL,
    step_id              text        NOT NULL,
    attempt              integer     NOT NULL,
    position             text        NOT NULL,
    checksum_sha256      text        NOT NULL,
    size_bytes           bigint      NOT NULL,
    storage              text        NOT NULL,
    inline_state         bytea,
    object_key           text,
    parent_checkpoint_id text,
    created_at           timestamptz NOT NULL,
    event_id             uuid        NOT NULL,
    PRIMARY KEY (tenant_id, checkpoint_id)
);
CREATE INDEX ON {s}.checkpoints (tenant_id, execution_id, created_at);

CREATE TABLE {s}.failures (
    tenant_id    text        NOT NULL,
    failure_id   text        NOT NULL,
    execution_id text        NOT NULL,
    step_id      text,
    attempt      integer,
    kind         text        NOT NULL,
    message      text        NOT NULL,
    signature    text        NOT NULL,
    agent        text,
    model        text,
    detected_by  text,
    details      jsonb       NOT NULL DEFAULT '{}',
    detected_at  timestamptz NOT NULL,
    event_id     uuid        NOT NULL,
    PRIMARY KEY (tenant_id, failure_id)
);
CREATE INDEX ON {s}.failures (tenant_id, detected_at DESC);
CREATE INDEX ON {s}.failures (tenant_id, signature, detected_at DESC);
CREATE INDEX ON {s}.failures (tenant_id, execution_id);

CREATE TABLE {s}.recovery_plans (
    tenant_id             text        NOT NULL,
    plan_id               text        NOT NULL,
    failure_id            text        NOT NULL,
    execution_id          text        NOT NULL,
    step_id               text,
    plan                  text        NOT NULL,
    reason                text        NOT NULL,
    attempt               integer,
    signature             text,
    similar_failure_count integer,
    backoff_ms            bigint,
    target_checkpoint_id  text,
    fallback_agent        text,
    fallback_model        text,
    planned_at            timestamptz NOT NULL,
    event_id              uuid        NOT NULL,
    PRIMARY KEY (tenant_id, plan_id)
);
CREATE INDEX ON {s}.recovery_plans (tenant_id, execution_id);
CREATE INDEX ON {s}.recovery_plans (tenant_id, failure_id);

CREATE TABLE {s}.consensus_rounds (
    tenant_id          text        NOT NULL,
    round_id           text        NOT NULL,
    execution_id       text,
    step_id            text,
    question           text,
    options            text[]      NOT NULL DEFAULT '{}',
    participants       text[]      NOT NULL DEFAULT '{}',
    weights            jsonb       NOT NULL DEFAULT '{}',
    rule               text,
    threshold          double precision,
    k                  integer,
    deadline           timestamptz,
    status             text        NOT NULL,
    decision           text,
    tally              jsonb       NOT NULL DEFAULT '{}',
    failure_reason     text,
    votes_cast         integer     NOT NULL DEFAULT 0,
    votes_rejected     integer     NOT NULL DEFAULT 0,
    opened_at          timestamptz,
    closed_at          timestamptz,
    updated_at         timestamptz NOT NULL,
    last_event_version bigint      NOT NULL,
    PRIMARY KEY (tenant_id, round_id)
);
CREATE INDEX ON {s}.consensus_rounds (tenant_id, execution_id);
CREATE INDEX ON {s}.consensus_rounds (tenant_id, status, opened_at DESC);

CREATE TABLE {s}.consensus_votes (
    tenant_id  text        NOT NULL,
    event_id   uuid        NOT NULL,
    round_id   text        NOT NULL,
    voter      text        NOT NULL,
    decision   text        NOT NULL,
    accepted   boolean     NOT NULL,
    weight     double precision,
    confidence double precision,
    rationale  text,
    reason     text,
    cast_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
);
CREATE INDEX ON {s}.consensus_votes (tenant_id, round_id, cast_at);

CREATE TABLE {s}.policies (
    tenant_id          text        NOT NULL,
    policy_id          text        NOT NULL,
    latest_version     integer     NOT NULL,
    rego_package       text        NOT NULL,
    rego_module        text        NOT NULL,
    mode               text        NOT NULL,
    targets            text[]      NOT NULL DEFAULT '{}',
    description        text,
    published_by       text,
    published_at       timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, policy_id)
);

CREATE TABLE {s}.policy_versions (
    tenant_id    text        NOT NULL,
    policy_id    text        NOT NULL,
    version      integer     NOT NULL,
    rego_package text        NOT NULL,
    rego_module  text        NOT NULL,
    mode         text        NOT NULL,
    targets      text[]      NOT NULL DEFAULT '{}',
    description  text,
    published_by text,
    published_at timestamptz NOT NULL,
    event_id     uuid        NOT NULL,
    PRIMARY KEY (tenant_id, policy_id, version)
);

CREATE TABLE {s}.policy_violations (
    tenant_id      text        NOT NULL,
    event_id       uuid        NOT NULL,
    kind           text        NOT NULL,
    policy_id      text        NOT NULL,
    policy_version integer,
    mode           text,
    execution_id   text,
    step_id        text,
    span_id        text,
    messages       text[]      NOT NULL DEFAULT '{}',
    error          text,
    fail_closed    boolean,
    occurred_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
);
CREATE INDEX ON {s}.policy_violations (tenant_id, occurred_at DESC);
CREATE INDEX ON {s}.policy_violations (tenant_id, policy_id, occurred_at DESC);
CREATE INDEX ON {s}.policy_violations (tenant_id, execution_id);

CREATE TABLE {s}.audit_log (
    tenant_id       text        NOT NULL,
    event_id        uuid        NOT NULL,
    occurred_at     timestamptz NOT NULL,
    actor           text        NOT NULL,
    actor_kind      text        NOT NULL,
    roles           text[]      NOT NULL DEFAULT '{}',
    command         text        NOT NULL,
    target          text,
    result          text        NOT NULL,
    reason          text,
    status_code     integer,
    request_id      text,
    idempotency_key text,
    source_ip       text,
    correlation_id  text,
    PRIMARY KEY (tenant_id, event_id)
);
CREATE INDEX ON {s}.audit_log (tenant_id, occurred_at DESC, event_id DESC);
CREATE INDEX ON {s}.audit_log (tenant_id, actor, occurred_at DESC);
CREATE INDEX ON {s}.audit_log (tenant_id, command, occurred_at DESC);

-- One row per event about a run, in order: the execution's timeline.
CREATE TABLE {s}.execution_events (
    tenant_id         text        NOT NULL,
    event_id          uuid        NOT NULL,
    execution_id      text        NOT NULL,
    event_type        text        NOT NULL,
    area              text        NOT NULL,
    aggregate_id      text        NOT NULL,
    aggregate_version bigint      NOT NULL,
    occurred_at       timestamptz NOT NULL,
    step_id           text,
    summary           jsonb       NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant_id, event_id)
);
CREATE INDEX ON {s}.execution_events (tenant_id, execution_id, occurred_at, event_id);
"""

_CHECKPOINT_RETENTION = """
ALTER TABLE {s}.checkpoints ADD COLUMN pruned_at timestamptz;
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial read model", _INITIAL),
    Migration(2, "checkpoints pruned by retention", _CHECKPOINT_RETENTION),
)
"""Every migration, in order. Append; never edit one that has shipped."""


def migrate(conn: psycopg.Connection, schema: str) -> list[int]:
    """Create ``schema`` if needed and apply the migrations it lacks; return those applied.

    Concurrent callers are serialised by an advisory lock on the schema name.

    Raises:
        ProjectionStoreError: PostgreSQL refused a statement.
    """
    check_identifier(schema)
    applied: list[int] = []
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"omium-rm:{schema}",))
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {schema}.schema_migrations ("
                "version integer PRIMARY KEY, name text NOT NULL, "
                "applied_at timestamptz NOT NULL DEFAULT now())"
            )
            rows = conn.execute(f"SELECT version FROM {schema}.schema_migrations")
            done = {row[0] for row in rows}
            for migration in MIGRATIONS:
                if migration.version in done:
                    continue
                conn.execute(migration.sql.replace("{s}", schema))
                conn.execute(
                    f"INSERT INTO {schema}.schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
                applied.append(migration.version)
    except psycopg.Error as exc:
        raise ProjectionStoreError(f"migrating schema {schema} failed: {exc}") from exc
    return applied
