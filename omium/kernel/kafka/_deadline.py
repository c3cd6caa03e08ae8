"""Transactional producer calls with a deadline that librdkafka cannot miss.

librdkafka's blocking transactional calls (``send_offsets_to_transaction``,
``commit_transaction``, ``abort_transaction``, ``init_transactions``) take a timeout, but some
of them can outlive it for good after a broker dies (librdkafka 2.x, confluentinc/librdkafka
#5456: the call ignores its timeout; #5511: it waits on a coordinator that left the metadata).
The process then stops working without exiting. :class:`DeadlineCalls` runs each call on a
helper thread (confluent-kafka releases the GIL while librdkafka waits) and gives up on it when
its deadline passes: the caller gets :class:`TransactionStalledError`, abandons that producer
and creates a new one with the same ``transactional.id``, whose ``init_transactions`` fences the
stuck one and resolves the transaction it left open. The stuck thread is left behind (a daemon;
it cannot be interrupted) and is counted in :attr:`DeadlineCalls.abandoned`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

import structlog

from omium.kernel.errors import PersistenceError

log = structlog.get_logger(__name__)

T = TypeVar("T")


class TransactionStalledError(PersistenceError):
    """A transactional Kafka call did not return within its deadline.

    Attributes:
        operation: The call (``"commit_transaction"``...).
        deadline_s: How long it was given.
    """

    def __init__(self, operation: str, deadline_s: float) -> None:
        """Build the error from its machine-readable fields."""
        super().__init__(f"{operation} did not return within {deadline_s:g} s")
        self.operation = operation
        self.deadline_s = deadline_s


class DeadlineCalls:
    """Runs blocking producer calls on one helper thread, each with a deadline.

    The helper is a daemon thread, so a call stuck in librdkafka never holds up the process's
    exit (``concurrent.futures`` joins its workers at exit).

    Args:
        name: Names the helper thread (``<name>-txn``), for stack dumps.
    """

    def __init__(self, name: str) -> None:
        """Prepare; the helper thread starts with the first call."""
        self._name = name
        self._calls: queue.SimpleQueue[_Call[Any] | None] | None = None
        self.abandoned = 0

    def run(self, operation: str, call: Callable[[], T], *, deadline_s: float) -> T:
        """Call ``call`` and return what it returns, or raise what it raises.

        Raises:
            TransactionStalledError: ``call`` is still running after ``deadline_s``; its
                thread is abandoned (the next call gets a new one).
        """
        if self._calls is None:
            self._calls = queue.SimpleQueue()
            threading.Thread(
                target=_serve, args=(self._calls,), name=f"{self._name}-txn", daemon=True
            ).start()
        job: _Call[T] = _Call(call)
        self._calls.put(job)
        if not job.done.wait(deadline_s):
            self._calls.put(None)  # the helper ends if the call ever returns
            self._calls = None
            self.abandoned += 1
            log.error(
                "kafka.call_stuck", name=self._name, operation=operation, deadline_s=deadline_s
            )
            raise TransactionStalledError(operation, deadline_s)
        if job.error is not None:
            raise job.error
        return cast(T, job.result)

    def close(self) -> None:
        """Let the helper thread end once its current call (if any) returns."""
        if self._calls is not None:
            self._calls.put(None)
            self._calls = None


class _Call(Generic[T]):
    def __init__(self, call: Callable[[], T]) -> None:
        self.call = call
        self.done = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None


def _serve(calls: queue.SimpleQueue[_Call[Any] | None]) -> None:
    while (job := calls.get()) is not None:
        try:
            job.result = job.call()
        except BaseException as exc:  # handed to the waiting caller
            job.error = exc
        finally:
            job.done.set()
