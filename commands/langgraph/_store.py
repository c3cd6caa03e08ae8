"""Where LangGraph checkpoints are read from: tables beside the event store, or memory.

Every ``put`` is recorded as a ``CheckpointCreated`` event of the thread's execution (the write
side, the source of truth for Omium's timelines and audit) and its row here, in one transaction
(``omium.commands.also_writing``): both are there, or neither is. Reads (``get_tuple``,
``list``) come from here, so a ``put`` is visible to the very next ``get_tuple``
(read-your-writes) without waiting for Kafka and the projections, and metadata filters run in
PostgreSQL (``metadata @> filter``).

The PostgreSQL tables live in the event store's own schema and use the command applications'
connection pool (``apps.executions.recorder.datastore``), so they need no pool or lifecycle of
their own. With the in-memory write side (tests, trying the API without the stack) an in-memory
store is used instead.
"""

from __future__ import annotations

import base64
import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composable, Identifier
from psycopg.types.json import Jsonb

PRUNE_STRATEGIES = ("keep_latest", "delete")


@dataclass(frozen=True)
class StoredWrite:
    """One pending write of a task, linked to a checkpoint."""

    task_id: str
    idx: int
    channel: str
    type: str
    data: bytes
    task_path: str = ""

    def sort_key(self) -> tuple[str, str, int]:
        """LangGraph's ``writes_sort_key`` order: task path, task id, index."""
        return (self.task_path, self.task_id, self.idx)


@dataclass(frozen=True)
class StoredCheckpoint:
    """One checkpoint of a thread's namespace, with the Omium checkpoint it was recorded as."""

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_checkpoint_id: str | None
    type: str
    data: bytes
    metadata: dict[str, Any]
    execution_id: UUID | None = None
    omium_checkpoint_id: str | None = None
    writes: tuple[StoredWrite, ...] = ()

    @property
    def key(self) -> tuple[str, str, str]:
        """Sort key for lists: newest checkpoint id first, then thread and namespace."""
        return (self.checkpoint_id, self.thread_id, self.checkpoint_ns)


@dataclass(frozen=True)
class ThreadBinding:
    """The execution a thread is recorded in, and the Omium steps it has started.

    ``generation`` counts deletions: a deleted thread that is used again gets a new execution.
    """

    execution_id: UUID | None
    generation: int
    steps: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Query:
    """What ``list``/``get_tuple`` asked for."""

    thread_id: str | None = None
    checkpoint_ns: str | None = None
    checkpoint_id: str | None = None
    before: str | None = None
    metadata: dict[str, Any] | None = None
    after_key: tuple[str, str, str] | None = None
    limit: int = 100


def encode_cursor(key: tuple[str, str, str]) -> str:
    """An opaque page cursor for the last item of a page."""
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode()


def decode_cursor(cursor: str) -> tuple[str, str, str]:
    """The key a cursor stands for.

    Raises:
        ValueError: Not a cursor this API issued.
    """
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("not a cursor of this list") from exc
    if not (isinstance(key, list) and len(key) == 3 and all(isinstance(k, str) for k in key)):
        raise ValueError("not a cursor of this list")
    return (key[0], key[1], key[2])


class ThreadStore(ABC):
    """LangGraph threads of every tenant: bindings to executions, checkpoints, writes."""

    @abstractmethod
    def binding(self, tenant_id: str, thread_id: str) -> ThreadBinding | None:
        """The thread's binding, or ``None`` for a thread never used."""

    @abstractmethod
    def bind(
        self, tenant_id: str, thread_id: str, generation: int, execution_id: UUID
    ) -> UUID | None:
        """Bind an unbound thread to an execution; the execution it is bound to afterwards.

        ``None`` when ``generation`` is stale (the thread was deleted meanwhile).
        """

    @abstractmethod
    def add_step(self, tenant_id: str, thread_id: str, generation: int, step_id: str) -> None:
        """Remember that the thread's execution has started ``step_id``."""

    @abstractmethod
    def put_checkpoint(
        self, tenant_id: str, checkpoint: StoredCheckpoint, *, cursor: Any = None
    ) -> None:
        """Insert or replace a checkpoint (its writes are kept).

        Args:
            tenant_id: The owner.
            checkpoint: The checkpoint, with the execution and Omium checkpoint it was recorded as.
            cursor: A cursor of a transaction to write in (the ``CheckpointCreated`` event's),
                instead of a transaction of its own.
        """

    @abstractmethod
    def put_writes(
        self,
        tenant_id: str,
        key: tuple[str, str, str],
        writes: Sequence[StoredWrite],
        *,
        replace: bool,
    ) -> None:
        """Store writes of ``(thread, ns, checkpoint)``; ``replace`` overwrites same (task, idx)."""

    @abstractmethod
    def find(self, tenant_id: str, query: Query) -> list[StoredCheckpoint]:
        """Checkpoints matching ``query``, newest first, with their writes."""

    @abstractmethod
    def delete_thread(self, tenant_id: str, thread_id: str) -> tuple[int, ThreadBinding | None]:
        """Delete a thread's checkpoints and writes and unbind it; count and old binding."""

    @abstractmethod
    def delete_runs(self, tenant_id: str, run_ids: Sequence[str]) -> int:
        """Delete the checkpoints (and their writes) whose metadata names one of ``run_ids``."""

    @abstractmethod
    def prune(self, tenant_id: str, thread_ids: Sequence[str], strategy: str) -> int:
        """Keep only each namespace's latest checkpoint, or delete all; how many went."""

    def history(self, tenant_id: str, thread_id: str) -> list[StoredCheckpoint]:
        """Every checkpoint of a thread, oldest first, with its writes."""
        found: list[StoredCheckpoint] = []
        query = Query(thread_id=thread_id, limit=500)
        while page := self.find(tenant_id, query):
            found.extend(page)
            query = replace(query, after_key=page[-1].key)
        return sorted(found, key=lambda c: c.key)


# --- in memory -----------------------------------------------------------------------------------


@dataclass
class _Tenant:
    threads: dict[str, ThreadBinding] = field(default_factory=dict)
    checkpoints: dict[tuple[str, str, str], StoredCheckpoint] = field(default_factory=dict)
    writes: dict[tuple[str, str, str], dict[tuple[str, int], StoredWrite]] = field(
        default_factory=dict
    )


class InMemoryThreadStore(ThreadStore):
    """The store for the in-memory write side (one lock; nothing survives the process)."""

    def __init__(self) -> None:
        """Start empty."""
        self._tenants: dict[str, _Tenant] = {}
        self._lock = threading.Lock()

    def _of(self, tenant_id: str) -> _Tenant:
        return self._tenants.setdefault(tenant_id, _Tenant())

    def binding(self, tenant_id: str, thread_id: str) -> ThreadBinding | None:
        """See :meth:`ThreadStore.binding`."""
        with self._lock:
            return self._of(tenant_id).threads.get(thread_id)

    def bind(
        self, tenant_id: str, thread_id: str, generation: int, execution_id: UUID
    ) -> UUID | None:
        """See :meth:`ThreadStore.bind`."""
        with self._lock:
            threads = self._of(tenant_id).threads
            current = threads.get(thread_id)
            if current is None or (
                current.execution_id is None and current.generation == generation
            ):
                threads[thread_id] = ThreadBinding(execution_id, generation)
            return threads[thread_id].execution_id

    def add_step(self, tenant_id: str, thread_id: str, generation: int, step_id: str) -> None:
        """See :meth:`ThreadStore.add_step`."""
        with self._lock:
            threads = self._of(tenant_id).threads
            current = threads.get(thread_id)
            if current is not None and current.generation == generation:
                threads[thread_id] = replace(current, steps=current.steps | {step_id})

    def put_checkpoint(
        self, tenant_id: str, checkpoint: StoredCheckpoint, *, cursor: Any = None
    ) -> None:
        """See :meth:`ThreadStore.put_checkpoint` (there is no transaction to join here)."""
        with self._lock:
            key = (checkpoint.thread_id, checkpoint.checkpoint_ns, checkpoint.checkpoint_id)
            self._of(tenant_id).checkpoints[key] = replace(checkpoint, writes=())

    def put_writes(
        self,
        tenant_id: str,
        key: tuple[str, str, str],
        writes: Sequence[StoredWrite],
        *,
        replace: bool,
    ) -> None:
        """See :meth:`ThreadStore.put_writes`."""
        with self._lock:
            stored = self._of(tenant_id).writes.setdefault(key, {})
            for write in writes:
                if replace or (write.task_id, write.idx) not in stored:
                    stored[(write.task_id, write.idx)] = write

    def find(self, tenant_id: str, query: Query) -> list[StoredCheckpoint]:
        """See :meth:`ThreadStore.find`."""
        with self._lock:
            tenant = self._of(tenant_id)
            found = sorted(
                (c for c in tenant.checkpoints.values() if _matches(c, query)),
                key=lambda c: c.key,
                reverse=True,
            )[: query.limit]
            return [
                replace(
                    c,
                    writes=tuple(
                        sorted(
                            tenant.writes.get(
                                (c.thread_id, c.checkpoint_ns, c.checkpoint_id), {}
                            ).values(),
                            key=StoredWrite.sort_key,
                        )
                    ),
                )
                for c in found
            ]

    def delete_thread(self, tenant_id: str, thread_id: str) -> tuple[int, ThreadBinding | None]:
        """See :meth:`ThreadStore.delete_thread`."""
        with self._lock:
            tenant = self._of(tenant_id)
            count = self._drop(tenant, [k for k in tenant.checkpoints if k[0] == thread_id])
            current = tenant.threads.get(thread_id)
            if current is not None:
                tenant.threads[thread_id] = ThreadBinding(None, current.generation + 1)
            return count, current

    def delete_runs(self, tenant_id: str, run_ids: Sequence[str]) -> int:
        """See :meth:`ThreadStore.delete_runs`."""
        with self._lock:
            tenant = self._of(tenant_id)
            return self._drop(
                tenant,
                [
                    k
                    for k, c in tenant.checkpoints.items()
                    if c.metadata.get("run_id") in set(run_ids)
                ],
            )

    def prune(self, tenant_id: str, thread_ids: Sequence[str], strategy: str) -> int:
        """See :meth:`ThreadStore.prune`."""
        with self._lock:
            tenant = self._of(tenant_id)
            doomed = [k for k in tenant.checkpoints if k[0] in set(thread_ids)]
            if strategy == "keep_latest":
                latest: dict[tuple[str, str], tuple[str, str, str]] = {}
                for key in sorted(doomed, key=lambda k: k[2]):
                    latest[key[:2]] = key
                doomed = [k for k in doomed if k not in set(latest.values())]
            return self._drop(tenant, doomed)

    @staticmethod
    def _drop(tenant: _Tenant, keys: Iterable[tuple[str, str, str]]) -> int:
        count = 0
        for key in list(keys):
            count += tenant.checkpoints.pop(key, None) is not None
            tenant.writes.pop(key, None)
        return count


def _matches(c: StoredCheckpoint, q: Query) -> bool:
    checks = [
        q.thread_id is None or c.thread_id == q.thread_id,
        q.checkpoint_ns is None or c.checkpoint_ns == q.checkpoint_ns,
        q.checkpoint_id is None or c.checkpoint_id == q.checkpoint_id,
        q.before is None or c.checkpoint_id < q.before,
        q.after_key is None or c.key < q.after_key,
        not q.metadata or all(c.metadata.get(k) == v for k, v in q.metadata.items()),
    ]
    return all(checks)


# --- PostgreSQL ----------------------------------------------------------------------------------

_TABLES = ("langgraph_threads", "langgraph_checkpoints", "langgraph_writes")


class PostgresThreadStore(ThreadStore):
    """The store in the event store's schema, on the event store's connection pool."""

    def __init__(self, datastore: Any) -> None:
        """Use an ``eventsourcing`` ``PostgresDatastore`` (its pool and schema).

        Args:
            datastore: The command applications' datastore.
        """
        self._datastore = datastore
        schema = Identifier(datastore.schema)
        self._t = {name: SQL("{}.{}").format(schema, Identifier(name)) for name in _TABLES}
        self._migrated = False
        self._lock = threading.Lock()

    def _cursor(self) -> Any:
        self.migrate()
        return self._datastore.transaction(commit=True)

    def migrate(self) -> None:
        """Create the tables if needed (once per process)."""
        if self._migrated:
            return
        # IF NOT EXISTS makes concurrent gateways (and restarts) harmless.
        with self._lock:
            if self._migrated:
                return
            with self._datastore.transaction(commit=True) as cur:
                cur.execute("SELECT pg_advisory_xact_lock(hashtext('omium.langgraph.migrate'))")
                for statement in _migrations(self._t):
                    cur.execute(statement)
            self._migrated = True

    def binding(self, tenant_id: str, thread_id: str) -> ThreadBinding | None:
        """See :meth:`ThreadStore.binding`."""
        with self._cursor() as cur:
            cur.execute(
                SQL(
                    "SELECT execution_id, generation, steps FROM {} "
                    "WHERE tenant_id = %s AND thread_id = %s"
                ).format(self._t["langgraph_threads"]),
                (tenant_id, thread_id),
            )
            row = cur.fetchone()
        if row is None:
            return None
        return ThreadBinding(row["execution_id"], row["generation"], frozenset(row["steps"]))

    def bind(
        self, tenant_id: str, thread_id: str, generation: int, execution_id: UUID
    ) -> UUID | None:
        """See :meth:`ThreadStore.bind`."""
        table = self._t["langgraph_threads"]
        with self._cursor() as cur:
            cur.execute(
                SQL(
                    "INSERT INTO {t} AS t (tenant_id, thread_id, generation, execution_id) "
                    "VALUES (%s, %s, %s, %s) ON CONFLICT (tenant_id, thread_id) DO UPDATE "
                    "SET execution_id = EXCLUDED.execution_id, steps = '{{}}' "
                    "WHERE t.execution_id IS NULL AND t.generation = EXCLUDED.generation"
                ).format(t=table),
                (tenant_id, thread_id, generation, execution_id),
            )
            cur.execute(
                SQL("SELECT execution_id FROM {} WHERE tenant_id = %s AND thread_id = %s").format(
                    table
                ),
                (tenant_id, thread_id),
            )
            row = cur.fetchone()
        bound: UUID | None = row["execution_id"] if row else None
        return bound

    def add_step(self, tenant_id: str, thread_id: str, generation: int, step_id: str) -> None:
        """See :meth:`ThreadStore.add_step`."""
        with self._cursor() as cur:
            cur.execute(
                SQL(
                    "UPDATE {} SET steps = array_append(steps, %s) WHERE tenant_id = %s "
                    "AND thread_id = %s AND generation = %s AND NOT (%s = ANY(steps))"
                ).format(self._t["langgraph_threads"]),
                (step_id, tenant_id, thread_id, generation, step_id),
            )

    def put_checkpoint(
        self, tenant_id: str, checkpoint: StoredCheckpoint, *, cursor: Any = None
    ) -> None:
        """See :meth:`ThreadStore.put_checkpoint`."""
        if cursor is None:
            with self._cursor() as own:
                self._put_checkpoint(own, tenant_id, checkpoint)
        else:
            self.migrate()
            self._put_checkpoint(cursor, tenant_id, checkpoint)

    def _put_checkpoint(self, cur: Any, tenant_id: str, checkpoint: StoredCheckpoint) -> None:
        c = checkpoint
        cur.execute(
            SQL(
                "INSERT INTO {} (tenant_id, thread_id, checkpoint_ns, checkpoint_id, "
                "parent_checkpoint_id, type, checkpoint, metadata, execution_id, "
                "omium_checkpoint_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (tenant_id, thread_id, checkpoint_ns, checkpoint_id) "
                "DO UPDATE SET "
                "parent_checkpoint_id = EXCLUDED.parent_checkpoint_id, type = EXCLUDED.type, "
                "checkpoint = EXCLUDED.checkpoint, metadata = EXCLUDED.metadata, "
                "execution_id = EXCLUDED.execution_id, "
                "omium_checkpoint_id = EXCLUDED.omium_checkpoint_id"
            ).format(self._t["langgraph_checkpoints"]),
            (
                tenant_id,
                c.thread_id,
                c.checkpoint_ns,
                c.checkpoint_id,
                c.parent_checkpoint_id,
                c.type,
                c.data,
                Jsonb(c.metadata),
                c.execution_id,
                c.omium_checkpoint_id,
            ),
            prepare=True,
        )

    def put_writes(
        self,
        tenant_id: str,
        key: tuple[str, str, str],
        writes: Sequence[StoredWrite],
        *,
        replace: bool,
    ) -> None:
        """See :meth:`ThreadStore.put_writes`."""
        action = (
            "DO UPDATE SET channel = EXCLUDED.channel, type = EXCLUDED.type, "
            "blob = EXCLUDED.blob, task_path = EXCLUDED.task_path"
            if replace
            else "DO NOTHING"
        )
        statement = SQL(
            "INSERT INTO {} (tenant_id, thread_id, checkpoint_ns, checkpoint_id, task_id, idx, "
            "channel, type, blob, task_path) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (tenant_id, thread_id, checkpoint_ns, checkpoint_id, task_id, idx) "
            + action
        ).format(self._t["langgraph_writes"])
        with self._cursor() as cur:
            cur.executemany(
                statement,
                [
                    (tenant_id, *key, w.task_id, w.idx, w.channel, w.type, w.data, w.task_path)
                    for w in writes
                ],
            )

    def find(self, tenant_id: str, query: Query) -> list[StoredCheckpoint]:
        """See :meth:`ThreadStore.find`."""
        where, params = _where(tenant_id, query)
        statement = SQL(_SELECT).format(
            c=self._t["langgraph_checkpoints"], w=self._t["langgraph_writes"], where=where
        )
        with self._cursor() as cur:
            cur.execute(statement, [*params, query.limit], binary=True)
            return [_row(row) for row in cur.fetchall()]

    def delete_thread(self, tenant_id: str, thread_id: str) -> tuple[int, ThreadBinding | None]:
        """See :meth:`ThreadStore.delete_thread`."""
        with self._cursor() as cur:
            count = self._delete(cur, SQL("thread_id = %s"), [tenant_id, thread_id])
            cur.execute(
                SQL(
                    "UPDATE {} AS t SET execution_id = NULL, generation = t.generation + 1, "
                    "steps = '{{}}' FROM (SELECT execution_id, generation, steps FROM {} "
                    "WHERE tenant_id = %s AND thread_id = %s FOR UPDATE) AS old "
                    "WHERE t.tenant_id = %s AND t.thread_id = %s "
                    "RETURNING old.execution_id, old.generation, old.steps"
                ).format(self._t["langgraph_threads"], self._t["langgraph_threads"]),
                (tenant_id, thread_id, tenant_id, thread_id),
            )
            row = cur.fetchone()
        if row is None:
            return count, None
        return count, ThreadBinding(row["execution_id"], row["generation"], frozenset(row["steps"]))

    def delete_runs(self, tenant_id: str, run_ids: Sequence[str]) -> int:
        """See :meth:`ThreadStore.delete_runs`."""
        with self._cursor() as cur:
            return self._delete(
                cur, SQL("metadata->>'run_id' = ANY(%s)"), [tenant_id, list(run_ids)]
            )

    def prune(self, tenant_id: str, thread_ids: Sequence[str], strategy: str) -> int:
        """See :meth:`ThreadStore.prune`."""
        keep = SQL(
            " AND checkpoint_id <> (SELECT max(l.checkpoint_id) FROM {} l WHERE "
            "l.tenant_id = {}.tenant_id AND l.thread_id = {}.thread_id "
            "AND l.checkpoint_ns = {}.checkpoint_ns)"
        ).format(self._t["langgraph_checkpoints"], *[Identifier("c")] * 3)
        condition: Composable = SQL("thread_id = ANY(%s)")
        if strategy == "keep_latest":
            condition = SQL("{}{}").format(condition, keep)
        with self._cursor() as cur:
            return self._delete(cur, condition, [tenant_id, list(thread_ids)])

    def _delete(self, cur: Cursor[DictRow], condition: Composable, params: list[Any]) -> int:
        # Writes go with their checkpoint, in the same transaction.
        cur.execute(
            SQL(
                "WITH gone AS (DELETE FROM {c} AS c WHERE tenant_id = %s AND {cond} "
                "RETURNING tenant_id, thread_id, checkpoint_ns, checkpoint_id), "
                "w AS (DELETE FROM {w} AS w USING gone WHERE w.tenant_id = gone.tenant_id "
                "AND w.thread_id = gone.thread_id AND w.checkpoint_ns = gone.checkpoint_ns "
                "AND w.checkpoint_id = gone.checkpoint_id) SELECT count(*) AS n FROM gone"
            ).format(
                c=self._t["langgraph_checkpoints"], w=self._t["langgraph_writes"], cond=condition
            ),
            params,
        )
        row = cur.fetchone()
        return int(row["n"]) if row else 0


_SELECT = (
    "SELECT c.thread_id, c.checkpoint_ns, c.checkpoint_id, c.parent_checkpoint_id, c.type, "
    "c.checkpoint, c.metadata, c.execution_id, c.omium_checkpoint_id, "
    "(SELECT array_agg(ARRAY[convert_to(w.task_id, 'UTF8'), convert_to(w.channel, 'UTF8'), "
    "convert_to(w.type, 'UTF8'), w.blob, convert_to(w.task_path, 'UTF8'), "
    "convert_to(w.idx::text, 'UTF8')] ORDER BY w.task_path, w.task_id, w.idx) FROM {w} w "
    "WHERE w.tenant_id = c.tenant_id AND w.thread_id = c.thread_id "
    "AND w.checkpoint_ns = c.checkpoint_ns AND w.checkpoint_id = c.checkpoint_id) AS writes "
    "FROM {c} c WHERE {where} "
    "ORDER BY c.checkpoint_id DESC, c.thread_id DESC, c.checkpoint_ns DESC LIMIT %s"
)


def _where(tenant_id: str, q: Query) -> tuple[Composable, list[Any]]:
    parts: list[str] = ["c.tenant_id = %s"]
    params: list[Any] = [tenant_id]
    for column, value in (
        ("thread_id", q.thread_id),
        ("checkpoint_ns", q.checkpoint_ns),
        ("checkpoint_id", q.checkpoint_id),
    ):
        if value is not None:
            parts.append(f"c.{column} = %s")
            params.append(value)
    if q.before is not None:
        parts.append("c.checkpoint_id < %s")
        params.append(q.before)
    if q.metadata:
        parts.append("c.metadata @> %s")
        params.append(Jsonb(q.metadata))
    if q.after_key is not None:
        parts.append("(c.checkpoint_id, c.thread_id, c.checkpoint_ns) < (%s, %s, %s)")
        params.extend(q.after_key)
    return SQL(" AND ".join(parts)), params


def _row(row: DictRow) -> StoredCheckpoint:
    writes = tuple(
        StoredWrite(
            task_id=t.decode(),
            channel=ch.decode(),
            type=ty.decode(),
            data=bytes(blob),
            task_path=path.decode(),
            idx=int(idx.decode()),
        )
        for t, ch, ty, blob, path, idx in row["writes"] or ()
    )
    return StoredCheckpoint(
        thread_id=row["thread_id"],
        checkpoint_ns=row["checkpoint_ns"],
        checkpoint_id=row["checkpoint_id"],
        parent_checkpoint_id=row["parent_checkpoint_id"],
        type=row["type"],
        data=bytes(row["checkpoint"]),
        metadata=row["metadata"],
        execution_id=row["execution_id"],
        omium_checkpoint_id=row["omium_checkpoint_id"],
        writes=writes,
    )


def _migrations(t: Mapping[str, Composable]) -> list[Composable]:
    return [
        SQL(
            "CREATE TABLE IF NOT EXISTS {} (tenant_id text NOT NULL, thread_id text NOT NULL, "
            "generation integer NOT NULL DEFAULT 0, execution_id uuid, "
            "steps text[] NOT NULL DEFAULT '{{}}', PRIMARY KEY (tenant_id, thread_id))"
        ).format(t["langgraph_threads"]),
        SQL(
            "CREATE TABLE IF NOT EXISTS {} (tenant_id text NOT NULL, thread_id text NOT NULL, "
            "checkpoint_ns text NOT NULL, checkpoint_id text NOT NULL, "
            "parent_checkpoint_id text, type text NOT NULL, checkpoint bytea NOT NULL, "
            "metadata jsonb NOT NULL, execution_id uuid, omium_checkpoint_id text, "
            "PRIMARY KEY (tenant_id, thread_id, checkpoint_ns, checkpoint_id))"
        ).format(t["langgraph_checkpoints"]),
        SQL(
            "CREATE INDEX IF NOT EXISTS langgraph_checkpoints_run_idx ON {} "
            "(tenant_id, (metadata->>'run_id'))"
        ).format(t["langgraph_checkpoints"]),
        SQL(
            "CREATE TABLE IF NOT EXISTS {} (tenant_id text NOT NULL, thread_id text NOT NULL, "
            "checkpoint_ns text NOT NULL, checkpoint_id text NOT NULL, task_id text NOT NULL, "
            "idx integer NOT NULL, channel text NOT NULL, type text NOT NULL, "
            "blob bytea NOT NULL, task_path text NOT NULL DEFAULT '', PRIMARY KEY "
            "(tenant_id, thread_id, checkpoint_ns, checkpoint_id, task_id, idx))"
        ).format(t["langgraph_writes"]),
        # lz4 compresses checkpoints several times faster than the default pglz.
        *(
            SQL(
                "DO $$ BEGIN ALTER TABLE {} ALTER COLUMN {} SET COMPRESSION lz4; "
                "EXCEPTION WHEN feature_not_supported THEN NULL; END $$"
            ).format(t[table], Identifier(column))
            for table, column in (
                ("langgraph_checkpoints", "checkpoint"),
                ("langgraph_writes", "blob"),
            )
        ),
    ]
