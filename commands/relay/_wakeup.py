"""Waking the relay: PostgreSQL LISTEN/NOTIFY with a polling fallback, and the leader lock.

The eventsourcing library's PostgreSQL recorder already sends ``NOTIFY <table>_events`` in the
transaction that inserts events, so the notification arrives exactly when they become visible.
The relay LISTENs on the four channels; ``wait`` returns on a notification or after the poll
interval, whichever comes first, so a missed notification (or a dropped listening connection)
delays the relay by at most one interval and never stalls it. The channel names are not
qualified by schema: relays of other schemas in the same database wake each other up for nothing,
which costs one empty poll.

The same connection holds a session advisory lock per event store schema, so only one relay
publishes a schema at a time (a second replica waits as a standby). The lock goes with the
session: a relay killed with ``kill -9`` releases it as soon as PostgreSQL notices the closed
socket.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import psycopg
import structlog
from psycopg import sql

from omium.commands.relay.errors import RelayStoreError

log = structlog.get_logger(__name__)

LOCK_NAMESPACE = "omium.relay"
"""Prefix of the advisory lock key; the event store schema completes it."""


class Wakeup:
    """One PostgreSQL session that LISTENs for new events and holds the relay's lock.

    Args:
        dsn: libpq connection string.
        channels: NOTIFY channels of the events tables.
        schema: Event store schema (names the lock).
        listen: False to rely on polling alone (tests of the fallback).
    """

    def __init__(
        self, dsn: str, *, channels: Sequence[str], schema: str, listen: bool = True
    ) -> None:
        """Remember the session's settings; ``acquire`` connects."""
        self._dsn = dsn
        self._channels = list(channels) if listen else []
        self._lock_key = f"{LOCK_NAMESPACE}:{schema}"
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None

    @property
    def holds_lock(self) -> bool:
        """Whether the session holding the lock is still open."""
        return self._conn is not None and not self._conn.closed and not self._conn.broken

    def acquire(
        self, *, should_stop: Callable[[], bool], wait: bool = True, retry_s: float = 1.0
    ) -> bool:
        """Connect, take the relay lock and start listening; wait while another relay has it.

        Args:
            should_stop: Checked between attempts; waiting ends when it returns true.
            wait: Stand by while another relay holds the lock (False: give up at once).
            retry_s: Seconds between attempts.

        Returns:
            True once the lock is held; False if ``should_stop`` turned true first, or without
            ``wait`` if another relay holds it.

        Raises:
            RelayStoreError: Without ``wait``, when PostgreSQL cannot be reached.
        """
        waiting_logged = False
        while not should_stop():
            try:
                if self._try_acquire():
                    return True
                if not wait:
                    return False
                if not waiting_logged:
                    log.info("relay.standby", lock=self._lock_key)
                    waiting_logged = True
            except psycopg.Error as exc:
                self.close()
                if not wait:
                    raise RelayStoreError(f"cannot take the relay lock: {exc}") from exc
                log.warning("relay.lock_unavailable", lock=self._lock_key, error=str(exc))
            time.sleep(retry_s)
        return False

    def wait(self, timeout_s: float) -> bool:
        """Block until a NOTIFY arrives or ``timeout_s`` passes.

        Returns:
            True if woken by a notification; False on timeout, or if the session broke (the
            caller then sees ``holds_lock`` false and re-acquires).
        """
        conn = self._conn
        if conn is None or not self._channels:
            time.sleep(timeout_s)
            return False
        try:
            woken = any(True for _ in conn.notifies(timeout=timeout_s, stop_after=1))
            if woken:
                # Coalesce a burst: one drain answers every notification queued so far.
                for _ in conn.notifies(timeout=0):
                    pass
            return woken
        except psycopg.Error as exc:
            log.warning("relay.listen_broken", error=str(exc))
            self.close()
            return False

    def close(self) -> None:
        """Close the session, which releases the lock."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _try_acquire(self) -> bool:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._dsn, autocommit=True, connect_timeout=5)
        row = self._conn.execute(
            "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (self._lock_key,)
        ).fetchone()
        if not (row and row[0]):
            return False
        for channel in self._channels:
            self._conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        return True
