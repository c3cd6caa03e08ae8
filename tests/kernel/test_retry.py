"""omium.kernel.retry: which errors are retried, how often, how long it waits, what goes up."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from omium.kernel.retry import retrying


class FlakyError(Exception):
    pass


def flaky(
    failures: int, error: type[Exception] = FlakyError
) -> tuple[list[int], Callable[[int], int]]:
    calls: list[int] = []

    def call(value: int) -> int:
        calls.append(value)
        if len(calls) <= failures:
            raise error(f"failure {len(calls)}")
        return value * 2

    return calls, call


def test_retries_until_success_without_waiting_by_default() -> None:
    waits: list[float] = []
    calls, call = flaky(2)
    assert retrying(FlakyError, attempts=3, sleep=waits.append)(call, 21) == 42
    assert calls == [21, 21, 21]
    assert waits == [0, 0]


def test_the_last_error_itself_goes_up() -> None:
    calls, call = flaky(5)
    with pytest.raises(FlakyError, match="failure 3"):
        retrying(FlakyError, attempts=3, sleep=lambda _: None)(call, 1)
    assert len(calls) == 3


def test_other_errors_are_not_retried() -> None:
    calls, call = flaky(1, KeyError)
    with pytest.raises(KeyError):
        retrying(FlakyError, attempts=3, sleep=lambda _: None)(call, 1)
    assert len(calls) == 1


def test_when_narrows_the_errors_retried() -> None:
    calls, call = flaky(1)
    with pytest.raises(FlakyError):
        retrying(FlakyError, attempts=3, when=lambda exc: "2" in str(exc), sleep=lambda _: None)(
            call, 1
        )
    assert len(calls) == 1


def test_waits_double_with_jitter_up_to_the_ceiling() -> None:
    waits: list[float] = []
    _, call = flaky(4)
    retrying(FlakyError, attempts=5, wait_s=0.1, max_wait_s=0.5, sleep=waits.append)(call, 1)
    assert len(waits) == 4
    for retry, wait in enumerate(waits):
        low = min(0.1 * 2**retry, 0.5)
        assert low <= wait <= min(low + 0.1, 0.5)


def test_as_a_decorator() -> None:
    calls, call = flaky(1)
    wrapped = retrying(FlakyError, attempts=2, sleep=lambda _: None).wraps(call)
    assert wrapped(5) == 10
    assert calls == [5, 5]


def test_attempts_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        retrying(FlakyError, attempts=0)
