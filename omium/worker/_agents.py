"""Calling an agent function: in a thread of its own, within the step's timeout, output normalised.

An agent that overruns its timeout cannot be killed (it is Python code in a thread), so it is
abandoned: its context is cancelled (its next model call raises) and whatever it returns later is
dropped. Its attempt is reported as timed out at once, which is what recovery acts on.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import queue
import threading
from collections.abc import Callable, Mapping
from typing import Any

from omium.sdk.workflow import resolve_entrypoint
from omium.worker._context import StepContext
from omium.worker._errors import AgentOutputError, StepTimeoutError

AgentFunction = Callable[[StepContext], Any]

_entrypoints: dict[str, AgentFunction] = {}
_entrypoints_lock = threading.Lock()


def load_agent(entrypoint: str) -> AgentFunction:
    """The agent function an entry point names (imported once per process).

    Raises:
        EntrypointError: The entry point does not import or is not callable.
    """
    with _entrypoints_lock:
        function = _entrypoints.get(entrypoint)
        if function is None:
            function = _entrypoints[entrypoint] = resolve_entrypoint(entrypoint)
    return function


def call_agent(
    function: AgentFunction, ctx: StepContext, *, timeout_s: float, cancel: threading.Event
) -> dict[str, Any]:
    """Run ``function(ctx)`` for at most ``timeout_s`` seconds and return its output.

    Raises:
        StepTimeoutError: It did not return in time (``cancel`` is then set).
        AgentOutputError: It returned something that is not JSON.
        Exception: Whatever the agent raised.
    """
    outcome: dict[str, Any] = {}
    finished = threading.Event()

    def run() -> None:
        try:
            result = function(ctx)
            if inspect.isawaitable(result):
                result = asyncio.run(_awaited(result))
            outcome["value"] = result
        except BaseException as exc:  # handed to the caller's thread as it is
            outcome["error"] = exc
        finally:
            finished.set()

    _THREADS.run(run)
    if not finished.wait(timeout_s):
        cancel.set()
        raise StepTimeoutError(ctx.step_id, timeout_s)
    if "error" in outcome:
        raise outcome["error"]
    return normalise_output(outcome.get("value"))


class _AgentThreads:
    """Daemon threads that run agents, kept for the next agent once one returns.

    Starting a thread per step cost more than a trivial step itself. A thread whose agent was
    abandoned (timed out) stays busy until the agent returns, and a new thread is started for
    the next agent meanwhile, so an abandoned agent never delays another.
    """

    def __init__(self, keep: int = 32) -> None:
        self._idle: list[queue.SimpleQueue[Callable[[], None]]] = []
        self._lock = threading.Lock()
        self._keep = keep

    def run(self, job: Callable[[], None]) -> None:
        """Run ``job`` in an idle thread, or in a new one."""
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is None:
            inbox = queue.SimpleQueue()
            threading.Thread(target=self._serve, args=(inbox,), name="agent", daemon=True).start()
        inbox.put(job)

    def _serve(self, inbox: queue.SimpleQueue[Callable[[], None]]) -> None:
        while True:
            inbox.get()()  # the job catches everything the agent raises
            with self._lock:
                if len(self._idle) >= self._keep:
                    return
                self._idle.append(inbox)


_THREADS = _AgentThreads()


async def _awaited(result: Any) -> Any:
    return await result


def normalise_output(value: Any) -> dict[str, Any]:
    """An agent's return value as the JSON object a step records.

    A mapping is kept (after a JSON round trip), text becomes ``{"text": ...}``, ``None`` an empty
    object and anything else ``{"value": ...}``.

    Raises:
        AgentOutputError: The value cannot be written as JSON.
    """
    if value is None:
        return {}
    if isinstance(value, str):
        value = {"text": value}
    elif not isinstance(value, Mapping):
        value = {"value": value}
    try:
        copy = json.loads(json.dumps(dict(value), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise AgentOutputError(f"the agent's output is not JSON: {exc}") from None
    return copy  # type: ignore[no-any-return]
