"""One way to retry an operation across Omium, on ``tenacity``.

Write sides, processors and stores retry the same few things: a save that lost a race (a version
conflict, a concurrent ``CREATE ... IF NOT EXISTS``), a dropped connection, a retriable Kafka
commit. :func:`retrying` builds the :class:`tenacity.Retrying` for each from the few numbers that
differ (which errors, how many attempts, how long to wait), always re-raising the last error
itself rather than tenacity's ``RetryError``::

    retrying(ConflictError, attempts=3)(save, event)           # call with retries

    @retrying(psycopg.OperationalError, attempts=10, wait_s=0.2).wraps
    def insert(...): ...                                        # decorate
"""

from __future__ import annotations

import time
from collections.abc import Callable

import tenacity

ErrorTypes = type[BaseException] | tuple[type[BaseException], ...]


def retrying(
    errors: ErrorTypes,
    *,
    attempts: int,
    wait_s: float = 0.0,
    max_wait_s: float | None = None,
    when: Callable[[BaseException], bool] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tenacity.Retrying:
    """A retrier of calls that raise ``errors``.

    Args:
        errors: The exception types worth another attempt; anything else goes up at once.
        attempts: Attempts in all (the first included); the last one's error is re-raised.
        wait_s: Wait before the first retry, doubled for each later one with up to as much
            again of random jitter (so racing processes do not come back in step); ``0``
            retries at once (a lost race that a reload resolves needs no wait).
        max_wait_s: Longest wait (default: ``wait_s`` times 2 to the number of retries).
        when: A further test of a caught error (e.g. its cause, or a ``retriable()`` flag).
        sleep: How to wait (tests pass a recorder).

    Returns:
        A :class:`tenacity.Retrying`: call it with the function and its arguments, or use its
        ``wraps`` as a decorator.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, not {attempts}")
    condition: tenacity.retry_base = tenacity.retry_if_exception_type(errors)
    if when is not None:
        condition = condition & tenacity.retry_if_exception(when)
    wait: Callable[[tenacity.RetryCallState], float] = tenacity.wait_none()
    if wait_s > 0:
        ceiling = max_wait_s if max_wait_s is not None else wait_s * 2 ** (attempts - 1)
        wait = _jittered(wait_s, ceiling)
    return tenacity.Retrying(
        retry=condition,
        stop=tenacity.stop_after_attempt(attempts),
        wait=wait,
        sleep=sleep,
        reraise=True,
    )


def _jittered(first_s: float, ceiling_s: float) -> Callable[[tenacity.RetryCallState], float]:
    """``first_s`` doubled per retry plus up to ``first_s`` of jitter, never above the ceiling.

    What ``wait_exponential_jitter`` does, built from strategies every tenacity 8-9 has (its
    first-wait argument changed name in 9.2 and the old one warns).
    """
    grows = tenacity.wait_exponential(multiplier=first_s, max=ceiling_s)
    jitter = tenacity.wait_random(0, first_s)
    return lambda state: min(grows(state) + jitter(state), ceiling_s)
