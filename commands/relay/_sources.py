"""One command application's notification log, as the relay reads it, in commit order.

Event inserts take no table lock, so notification ids are not issued in commit order: a
transaction that took id 10 may commit after the one that took id 11. The relay therefore reads
in the order of ``(tx_id, notification_id)``, where ``tx_id`` is the inserting transaction's id
(``xid8``, a column the event store fills), and only rows below a *horizon*: the oldest
transaction id among the event-store writers still running. Every writer holds a shared advisory
lock from before its first write to its end (``commands/_postgres.py``), so the horizon is read
from ``pg_locks`` in three steps, each in its own statement (so its own snapshot):

1. ``next``: the next transaction id to be assigned (``pg_snapshot_xmax``);
2. the transaction ids of the lock's holders; the horizon is the oldest of them, or ``next``;
3. the rows with ``tx_id`` below the horizon, read with a snapshot taken after step 2.

A writer below the horizon has ended before step 2 (else it would hold the lock, and a
transaction leaves the running set before it releases its locks), so its rows are visible in
step 3; a writer that took the lock after step 2 gets an id at or above ``next``. Transactions
that write no events (an operator's session, a projection's batch, another database) never
hold the relay back. An event-store writer that stays open holds it back until it ends
(operations.md says how to spot one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL, Identifier

from omium.commands._application import CommandApplication, translate_persistence_errors
from omium.commands._postgres import writers_lock_key


class Position(NamedTuple):
    """Where the relay is in a log: the last relayed ``(tx_id, notification_id)``.

    ``tx_id`` is -1 for a position stored before commit-order reading (an id only); the source
    resolves it to the transaction of that notification.
    """

    tx_id: int
    notification_id: int


START = Position(0, 0)
"""Before the first event."""


@dataclass(frozen=True)
class RelayNotification(Notification):
    """A notification with the id of the transaction that stored it."""

    tx_id: int = 0

    @property
    def position(self) -> Position:
        """The position just after this notification."""
        return Position(self.tx_id, self.id)


class LogSource:
    """Reads one application's notification log and decodes its events with its own mapper.

    Args:
        application: The command application whose ``<name>_events`` table is followed.
    """

    def __init__(self, application: CommandApplication) -> None:
        """Wrap an application; the relay never writes through it."""
        self._app = application

    @property
    def name(self) -> str:
        """The application's name (``ExecutionsApplication``), the key of its position."""
        return self._app.name

    @property
    def table(self) -> str:
        """The events table (``executionsapplication_events``)."""
        return f"{self._app.name.lower()}_events"

    @property
    def channel(self) -> str | None:
        """The NOTIFY channel the recorder signals new events on (PostgreSQL only)."""
        channel = getattr(self._app.recorder, "channel_name", None)
        return channel if isinstance(channel, str) else None

    def read(self, after: Position, limit: int) -> Sequence[RelayNotification]:
        """Up to ``limit`` committed notifications after ``after``, in commit order.

        Raises:
            EventStoreError: The event store cannot be read.
        """
        recorder = self._app.recorder
        with translate_persistence_errors():
            if not isinstance(recorder, PostgresApplicationRecorder):
                # In memory, ids are issued under one lock in commit order.
                found = recorder.select_notifications(
                    after.notification_id, limit, inclusive_of_start=False
                )
                return [_with_tx(n, 0) for n in found]
            with recorder.datastore.get_connection() as conn, conn.cursor() as cur:
                if after.tx_id < 0:
                    after = Position(self._tx_of(cur, after.notification_id), after.notification_id)
                horizon = self._horizon(conn, recorder.datastore.schema)
                cur.execute(self._read_statement(), (*after, str(horizon), limit), prepare=True)
                rows = cur.fetchall()
        return [
            RelayNotification(
                id=row["notification_id"],
                originator_id=row["originator_id"],
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=bytes(row["state"]),
                tx_id=int(row["tx"]),
            )
            for row in rows
        ]

    def _table(self) -> SQL | Any:
        recorder = self._app.recorder
        assert isinstance(recorder, PostgresApplicationRecorder)
        return SQL("{}.{}").format(
            Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name)
        )

    def _read_statement(self) -> Any:
        return SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state, "
            "tx_id::text AS tx FROM {t} "
            "WHERE (tx_id, notification_id) > (%s::text::xid8, %s) "
            "AND tx_id < %s::text::xid8 "
            "ORDER BY tx_id, notification_id LIMIT %s"
        ).format(t=self._table())

    @staticmethod
    def _horizon(conn: Any, schema: str) -> int:
        """The oldest running event-store writer's transaction id, else the next id."""
        lock_class, lock_object = writers_lock_key(schema)
        with conn.cursor() as next_cur, conn.cursor() as holders_cur:
            with conn.pipeline():  # two statements, in this order, in one round trip
                next_cur.execute(
                    "SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS next", prepare=True
                )
                holders_cur.execute(_HOLDERS, (lock_class, lock_object), prepare=True)
            next_xid = int(next_cur.fetchone()["next"])
            holders = [int(row["xid"]) for row in holders_cur.fetchall()]
        return min([next_xid] + [_widen(xid, next_xid) for xid in holders])

    def _tx_of(self, cur: Any, notification_id: int) -> int:
        cur.execute(
            SQL("SELECT tx_id::text AS tx FROM {} WHERE notification_id = %s").format(
                self._table()
            ),
            (notification_id,),
        )
        row = cur.fetchone()
        return int(row["tx"]) if row else 0

    def decode(self, stored: StoredEvent) -> Any:
        """The domain event of a stored event, as the application itself decodes it."""
        return self._app.mapper.to_domain_event(stored)

    def history(self, aggregate_id: UUID | str, *, up_to: int) -> Sequence[StoredEvent]:
        """An aggregate's stored events with versions up to ``up_to``, in order.

        Raises:
            EventStoreError: The event store cannot be read.
        """
        uuid = aggregate_id if isinstance(aggregate_id, UUID) else UUID(str(aggregate_id))
        with translate_persistence_errors():
            return self._app.recorder.select_events(uuid, lte=up_to)

    def lag(self, after: Position) -> int:
        """How many stored notifications come after ``after`` (committed ones only).

        Raises:
            EventStoreError: The event store cannot be read.
        """
        recorder = self._app.recorder
        with translate_persistence_errors():
            if not isinstance(recorder, PostgresApplicationRecorder):
                newest = recorder.max_notification_id() or 0
                return max(0, newest - after.notification_id)
            with recorder.datastore.get_connection() as conn, conn.cursor() as cur:
                if after.tx_id < 0:
                    after = Position(self._tx_of(cur, after.notification_id), after.notification_id)
                cur.execute(
                    SQL(
                        "SELECT count(*) AS n FROM {} "
                        "WHERE (tx_id, notification_id) > (%s::text::xid8, %s)"
                    ).format(self._table()),
                    after,
                )
                row = cur.fetchone()
        return int(row["n"]) if row else 0


_HOLDERS = (
    "SELECT x.transactionid::text AS xid FROM pg_locks a JOIN pg_locks x "
    "ON x.virtualtransaction = a.virtualtransaction AND x.locktype = 'transactionid' "
    "AND x.mode = 'ExclusiveLock' AND x.granted "
    "WHERE a.locktype = 'advisory' AND a.granted AND a.classid = %s AND a.objid = %s "
    "AND a.objsubid = 2 "
    "AND a.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
"""The 32-bit transaction ids of the event-store writers' lock holders that have one."""

_XID_SPACE = 2**32


def _widen(xid: int, next_xid: int) -> int:
    """A holder's 32-bit ``xid`` as the 64-bit id just below ``next_xid`` it stands for.

    An id assigned after ``next_xid`` was read (a distance of more than half the id space)
    is at or above it and does not lower the horizon.
    """
    distance = (next_xid - xid) % _XID_SPACE
    return next_xid if distance > _XID_SPACE // 2 else next_xid - distance


def _with_tx(notification: Notification, tx_id: int) -> RelayNotification:
    return RelayNotification(
        id=notification.id,
        originator_id=notification.originator_id,
        originator_version=notification.originator_version,
        topic=notification.topic,
        state=notification.state,
        tx_id=tx_id,
    )
