"""Calling an agent function: in its own thread, within the step's timeout, output normalised.

An agent that overruns its timeout cannot be killed (it is Python code in a thread), so it is
abandoned: its context is cancelled (its next model call raises) and whatever it returns later is
dropped. Its attempt is reported as timed out at once, which is what recovery acts on.
"""

from __future__ import annotations

import asyncio
import inspect
import json
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

    thread = threading.Thread(target=run, name=f"agent-{ctx.step_id}-{ctx.agent}", daemon=True)
    thread.start()
    if not finished.wait(timeout_s):
        cancel.set()
        raise StepTimeoutError(ctx.step_id, timeout_s)
    if "error" in outcome:
        raise outcome["error"]
    return normalise_output(outcome.get("value"))


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
