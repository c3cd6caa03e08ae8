"""Tenant-scoped queries over the PostgreSQL read model, for the gateway.

Every function takes the caller's tenant and puts it first in the ``WHERE`` clause (every index
starts with ``tenant_id``). Lists use keyset pagination: the cursor is the sort key of the last
row returned, opaque to clients (URL-safe base64 of JSON).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from omium.projections.base.errors import ProjectionError
from omium.projections.postgres._migrations import check_identifier

Row = dict[str, Any]


class InvalidCursorError(ProjectionError):
    """A pagination cursor that this API did not issue (or one from another list).

    Attributes:
        reason: ``"invalid_cursor"``.
        field: ``"cursor"``.
    """

    def __init__(self) -> None:
        self.reason = "invalid_cursor"
        self.field = "cursor"
        super().__init__("the cursor is not one this list issued")


@dataclass(frozen=True)
class Page:
    """One page of a list.

    Attributes:
        items: The rows.
        next_cursor: Pass it back for the next page; ``None`` on the last page.
    """

    items: list[Row]
    next_cursor: str | None = None


def encode_cursor(kind: str, *key: Any) -> str:
    """An opaque cursor for the sort key ``key`` of list ``kind``."""
    values = [v.isoformat() if isinstance(v, datetime) else str(v) for v in key]
    raw = json.dumps([kind, *values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str, size: int) -> list[str]:
    """The sort key inside a cursor of list ``kind``.

    Raises:
        InvalidCursorError: Not a cursor of this list.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidCursorError() from None
    if not isinstance(values, list) or len(values) != size + 1 or values[0] != kind:
        raise InvalidCursorError()
    return [str(v) for v in values[1:]]


def _time(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise InvalidCursorError() from None


@dataclass(frozen=True)
class ExecutionFilter:
    """Filters of the executions list (all optional, combined with AND)."""

    status: str | None = None
    workflow_id: str | None = None
    agent: str | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None
    labels: dict[str, str] = field(default_factory=dict)


class ReadModelQueries:
    """The queries, on connections of the read model's schema.

    Args:
        schema: The read model's PostgreSQL schema.
    """

    def __init__(self, schema: str) -> None:
        self._schema = check_identifier(schema)

    def _q(self, text: str) -> sql.SQL:
        return sql.SQL(text.replace("{s}", self._schema))

    async def _all(self, conn: AsyncConnection, text: str, params: dict[str, Any]) -> list[Row]:
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(self._q(text), params)
            return await cur.fetchall()

    # ------------------------------------------------------------------ executions

    async def list_executions(
        self,
        conn: AsyncConnection,
        tenant_id: str,
        filters: ExecutionFilter,
        *,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """Runs, newest first."""
        where = ["tenant_id = %(tenant)s"]
        params: dict[str, Any] = {"tenant": tenant_id, "limit": limit + 1}
        for column, value in (("status", filters.status), ("workflow_id", filters.workflow_id)):
            if value is not None:
                where.append(f"{column} = %({column})s")
                params[column] = value
        if filters.agent is not None:
            where.append("%(agent)s = ANY(agents)")
            params["agent"] = filters.agent
        if filters.started_after is not None:
            where.append("started_at >= %(after)s")
            params["after"] = filters.started_after
        if filters.started_before is not None:
            where.append("started_at < %(before)s")
            params["before"] = filters.started_before
        if filters.labels:
            where.append("labels @> %(labels)s::jsonb")
            params["labels"] = json.dumps(filters.labels)
        if cursor is not None:
            at, execution_id = decode_cursor("executions", cursor, 2)
            where.append("(started_at, execution_id) < (%(c_at)s, %(c_id)s)")
            params.update(c_at=_time(at), c_id=execution_id)
        rows = await self._all(
            conn,
            f"SELECT * FROM {{s}}.executions WHERE {' AND '.join(where)} "
            "ORDER BY started_at DESC, execution_id DESC LIMIT %(limit)s",
            params,
        )
        return _page(rows, limit, "executions", ("started_at", "execution_id"))

    async def get_execution(
        self, conn: AsyncConnection, tenant_id: str, execution_id: str
    ) -> Row | None:
        """One run, or ``None`` (also for another tenant's run)."""
        rows = await self._all(
            conn,
            "SELECT * FROM {s}.executions WHERE tenant_id = %(t)s AND execution_id = %(x)s",
            {"t": tenant_id, "x": execution_id},
        )
        return rows[0] if rows else None

    async def timeline(
        self,
        conn: AsyncConnection,
        tenant_id: str,
        execution_id: str,
        *,
        limit: int = 500,
        cursor: str | None = None,
    ) -> Page:
        """Every event about one run, in the order it happened."""
        params: dict[str, Any] = {"t": tenant_id, "x": execution_id, "limit": limit + 1}
        after = ""
        if cursor is not None:
            at, version, event_id = decode_cursor("timeline", cursor, 3)
            after = (
                "AND (occurred_at, aggregate_version, event_id::text) > "
                "(%(c_at)s, %(c_v)s, %(c_id)s)"
            )
            params.update(
                c_at=_time(at), c_v=int(version) if version.isdigit() else -1, c_id=event_id
            )
        rows = await self._all(
            conn,
            "SELECT event_id, event_type, area, aggregate_id, aggregate_version, occurred_at, "
            "step_id, summary FROM {s}.execution_events "
            f"WHERE tenant_id = %(t)s AND execution_id = %(x)s {after} "
            "ORDER BY occurred_at, aggregate_version, event_id::text LIMIT %(limit)s",
            params,
        )
        return _page(rows, limit, "timeline", ("occurred_at", "aggregate_version", "event_id"))

    # ------------------------------------------------------------------ workflows

    async def workflow_ids(
        self, conn: AsyncConnection, tenant_id: str, *, limit: int = 500
    ) -> list[str]:
        """The ids of the tenant's workflows, by name (at most ``limit``)."""
        rows = await self._all(
            conn,
            "SELECT workflow_id FROM {s}.workflows WHERE tenant_id = %(t)s "
            "ORDER BY name, workflow_id LIMIT %(limit)s",
            {"t": tenant_id, "limit": limit},
        )
        return [str(row["workflow_id"]) for row in rows]

    async def steps(self, conn: AsyncConnection, tenant_id: str, execution_id: str) -> list[Row]:
        """A run's steps (every attempt), in the order they were scheduled."""
        return await self._all(
            conn,
            "SELECT * FROM {s}.steps WHERE tenant_id = %(t)s AND execution_id = %(x)s "
            "ORDER BY coalesce(scheduled_at, started_at, ended_at), step_id, attempt",
            {"t": tenant_id, "x": execution_id},
        )

    async def checkpoint(
        self, conn: AsyncConnection, tenant_id: str, execution_id: str, checkpoint_id: str
    ) -> Row | None:
        """One checkpoint with its inline state, or ``None``."""
        rows = await self._all(
            conn,
            "SELECT * FROM {s}.checkpoints WHERE tenant_id = %(t)s AND execution_id = %(x)s "
            "AND checkpoint_id = %(c)s",
            {"t": tenant_id, "x": execution_id, "c": checkpoint_id},
        )
        return rows[0] if rows else None

    # ------------------------------------------------------------------ audit

    async def audit(
        self,
        conn: AsyncConnection,
        tenant_id: str,
        *,
        actor: str | None = None,
        command: str | None = None,
        result: str | None = None,
        target: str | None = None,
        after: datetime | None = None,
        before: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page:
        """Audit entries, newest first."""
        where = ["tenant_id = %(t)s"]
        params: dict[str, Any] = {"t": tenant_id, "limit": limit + 1}
        for column, value in (
            ("actor", actor),
            ("command", command),
            ("result", result),
            ("target", target),
        ):
            if value is not None:
                where.append(f"{column} = %({column})s")
                params[column] = value
        if after is not None:
            where.append("occurred_at >= %(after)s")
            params["after"] = after
        if before is not None:
            where.append("occurred_at < %(before)s")
            params["before"] = before
        if cursor is not None:
            at, event_id = decode_cursor("audit", cursor, 2)
            where.append("(occurred_at, event_id::text) < (%(c_at)s, %(c_id)s)")
            params.update(c_at=_time(at), c_id=event_id)
        rows = await self._all(
            conn,
            f"SELECT * FROM {{s}}.audit_log WHERE {' AND '.join(where)} "
            "ORDER BY occurred_at DESC, event_id::text DESC LIMIT %(limit)s",
            params,
        )
        return _page(rows, limit, "audit", ("occurred_at", "event_id"))

    # ------------------------------------------------------------------ analytics

    async def run_stats(
        self,
        conn: AsyncConnection,
        tenant_id: str,
        *,
        start: datetime,
        end: datetime,
        bucket: timedelta,
        workflow_id: str | None = None,
    ) -> list[Row]:
        """Runs started per time bucket: how many, how they ended, the failure rate."""
        extra = "AND workflow_id = %(w)s" if workflow_id is not None else ""
        return await self._all(
            conn,
            "SELECT date_bin(%(b)s, started_at, %(origin)s) AS bucket, count(*) AS runs, "
            "count(*) FILTER (WHERE status = 'completed') AS completed, "
            "count(*) FILTER (WHERE status = 'failed') AS failed, "
            "count(*) FILTER (WHERE status IN ('halted', 'cancelled')) AS stopped, "
            "count(*) FILTER (WHERE status NOT IN ('completed', 'failed', 'halted', "
            "'cancelled')) AS active, "
            "sum(total_tokens) AS tokens, sum(total_cost_usd) AS cost_usd "
            "FROM {s}.executions WHERE tenant_id = %(t)s AND started_at >= %(start)s "
            f"AND started_at < %(end)s {extra} GROUP BY 1 ORDER BY 1",
            {
                "t": tenant_id,
                "b": bucket,
                "origin": start,
                "start": start,
                "end": end,
                "w": workflow_id,
            },
        )

    async def step_stats(
        self,
        conn: AsyncConnection,
        tenant_id: str,
        *,
        start: datetime,
        end: datetime,
        bucket: timedelta,
        group_by: Literal["workflow", "agent", "model"] | None = None,
    ) -> list[Row]:
        """Finished steps per time bucket (and group): p50/p95 latency, tokens, cost."""
        key = {
            "workflow": "e.workflow_id",
            "agent": "s.agent",
            "model": "s.model",
            None: "NULL::text",
        }[group_by]
        return await self._all(
            conn,
            f"SELECT date_bin(%(b)s, s.ended_at, %(origin)s) AS bucket, {key} AS key, "
            "count(*) AS steps, count(*) FILTER (WHERE s.status = 'failed') AS failed, "
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY s.duration_ms) AS p50_ms, "
            "percentile_cont(0.95) WITHIN GROUP (ORDER BY s.duration_ms) AS p95_ms, "
            "sum(s.tokens_in) AS tokens_in, sum(s.tokens_out) AS tokens_out, "
            "sum(s.cost_usd) AS cost_usd "
            "FROM {s}.steps s LEFT JOIN {s}.executions e "
            "ON e.tenant_id = s.tenant_id AND e.execution_id = s.execution_id "
            "WHERE s.tenant_id = %(t)s AND s.ended_at >= %(start)s AND s.ended_at < %(end)s "
            "AND s.status IN ('completed', 'failed') GROUP BY 1, 2 ORDER BY 1, 2",
            {"t": tenant_id, "b": bucket, "origin": start, "start": start, "end": end},
        )


def _page(rows: list[Row], limit: int, kind: str, key: tuple[str, ...]) -> Page:
    if len(rows) <= limit:
        return Page(items=rows)
    items = rows[:limit]
    return Page(items=items, next_cursor=encode_cursor(kind, *(items[-1][k] for k in key)))
