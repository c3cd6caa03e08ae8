"""Which run an LLM call is made for, without changing the provider interface.

The worker makes every agent's calls inside :func:`calls_for_execution`; a provider that keeps
per-run state (the scripted provider numbers its calls per run) reads :func:`current_execution`.
A context variable follows the call into threads started with ``contextvars.copy_context`` and
into asyncio tasks, and is unset (None) for calls made outside any run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_EXECUTION: ContextVar[str | None] = ContextVar("omium_llm_execution", default=None)


@contextmanager
def calls_for_execution(execution_id: object | None) -> Iterator[None]:
    """Make the LLM calls inside the block count as calls of run ``execution_id``."""
    token = _EXECUTION.set(None if execution_id is None else str(execution_id))
    try:
        yield
    finally:
        _EXECUTION.reset(token)


def current_execution() -> str | None:
    """The run the current LLM call is made for (None outside :func:`calls_for_execution`)."""
    return _EXECUTION.get()
