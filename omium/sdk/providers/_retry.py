"""Retries of one LLM call within its timeout, shared by the HTTP providers.

A call is retried only when its error says ``retryable`` (429, 529, 5xx, a dropped connection,
a malformed body), at most ``max_retries`` times, and only while the call's own deadline leaves
room: the provider's ``retry_after`` hint is waited exactly; without one the wait doubles from
``initial_backoff_s`` up to ``max_backoff_s``, with jitter so that many workers hit by the same
overload do not come back in step. A hint longer than ``max_retry_after_s`` (or than the time
left) is not waited at all: the error goes up with its ``retry_after`` and recovery plans the
retry of the step instead of a worker sitting idle.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from omium.sdk.providers.errors import ProviderError

T = TypeVar("T")

_MIN_ATTEMPT_S = 0.05
"""Time an attempt needs at least; a retry that would leave less is not made."""


@dataclass(frozen=True)
class RetryPolicy:
    """How a provider retries a failed call.

    Attributes:
        max_retries: Retries after the first attempt (0: never retry).
        initial_backoff_s: Wait before the first retry when the provider gave no hint.
        max_backoff_s: Longest wait between attempts without a hint.
        max_retry_after_s: Longest ``retry_after`` hint the provider waits itself.
    """

    max_retries: int = 2
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    max_retry_after_s: float = 60.0

    def wait_before(self, retry: int, error: ProviderError, *, time_left_s: float) -> float | None:
        """Seconds to wait before retry number ``retry`` (from 1), or None not to retry.

        Args:
            retry: The number of the retry about to be made.
            error: What the previous attempt raised.
            time_left_s: Seconds until the call's deadline.
        """
        if not error.retryable or retry > self.max_retries:
            return None
        if error.retry_after is not None:
            wait = error.retry_after
            if wait > self.max_retry_after_s:
                return None
        else:
            ceiling = min(self.max_backoff_s, self.initial_backoff_s * 2 ** (retry - 1))
            # Jitter only spreads retries; nothing depends on its exact value.
            wait = ceiling * (0.5 + random.random() / 2)
        if wait + _MIN_ATTEMPT_S >= time_left_s:
            return None
        return wait


NO_RETRIES = RetryPolicy(max_retries=0)
"""A policy that never retries."""


def call_with_retries(
    attempt: Callable[[float], T],
    *,
    policy: RetryPolicy,
    timeout_s: float,
    on_retry: Callable[[int, ProviderError, float], None] | None = None,
) -> T:
    """Run ``attempt(time_left_s)`` until it succeeds or may not be retried.

    Args:
        attempt: One try of the call, given the seconds left until the deadline.
        policy: When to retry.
        timeout_s: The whole call's budget, retries and waits included.
        on_retry: Told ``(retry, error, wait_s)`` before each wait.

    Raises:
        ProviderError: The last attempt's error, when no retry is left.
    """
    deadline = time.monotonic() + timeout_s
    retry = 0
    while True:
        try:
            return attempt(max(deadline - time.monotonic(), 0.0))
        except ProviderError as error:
            retry += 1
            wait = policy.wait_before(retry, error, time_left_s=deadline - time.monotonic())
            if wait is None:
                raise
            if on_retry is not None:
                on_retry(retry, error, wait)
            time.sleep(wait)


async def acall_with_retries(
    attempt: Callable[[float], Awaitable[T]],
    *,
    policy: RetryPolicy,
    timeout_s: float,
    on_retry: Callable[[int, ProviderError, float], None] | None = None,
) -> T:
    """The asynchronous form of :func:`call_with_retries` (waits without blocking the loop)."""
    deadline = time.monotonic() + timeout_s
    retry = 0
    while True:
        try:
            return await attempt(max(deadline - time.monotonic(), 0.0))
        except ProviderError as error:
            retry += 1
            wait = policy.wait_before(retry, error, time_left_s=deadline - time.monotonic())
            if wait is None:
                raise
            if on_retry is not None:
                on_retry(retry, error, wait)
            await asyncio.sleep(wait)
