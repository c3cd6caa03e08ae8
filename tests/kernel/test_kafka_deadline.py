"""DeadlineCalls: a call stuck past its deadline is given up on, and the next one still runs."""

from __future__ import annotations

import threading

import pytest

from omium.kernel.kafka import DeadlineCalls, TransactionStalledError


def test_a_call_returns_its_value_and_raises_its_error() -> None:
    calls = DeadlineCalls("t")
    assert calls.run("op", lambda: 42, deadline_s=5) == 42

    def fail() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        calls.run("op", fail, deadline_s=5)
    assert calls.abandoned == 0
    calls.close()


def test_a_stuck_call_is_abandoned_and_the_next_call_gets_a_new_thread() -> None:
    calls = DeadlineCalls("t")
    release = threading.Event()
    stuck_on: list[str] = []

    def stuck() -> None:
        stuck_on.append(threading.current_thread().name)
        release.wait(30)

    with pytest.raises(TransactionStalledError) as caught:
        calls.run("commit_transaction", stuck, deadline_s=0.2)
    assert (caught.value.operation, caught.value.deadline_s) == ("commit_transaction", 0.2)
    assert calls.abandoned == 1

    # The stuck thread still holds its call; another call does not wait behind it.
    ran_on = calls.run("op", lambda: threading.current_thread(), deadline_s=5)
    assert ran_on.name == "t-txn" and ran_on.ident is not None
    stuck_thread = next(
        t for t in threading.enumerate() if t.name == stuck_on[0] and t is not ran_on
    )
    assert stuck_thread.daemon  # never holds up the process's exit
    release.set()
    stuck_thread.join(5)
    assert not stuck_thread.is_alive()  # and ends once its call returns
    calls.close()
