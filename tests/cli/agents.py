"""Agents for the CLI tests: quick, deterministic, with a little state to checkpoint."""

from __future__ import annotations

import time
from typing import Any

from omium.worker import StepContext


def echo(ctx: StepContext) -> dict[str, Any]:
    """Sleep ``input.sleep_s``, count the steps seen in ``ctx.state`` and return what it saw."""
    time.sleep(float(ctx.input.get("sleep_s", 0)))
    seen = list(ctx.state.get("seen", []))
    seen.append(ctx.step_id)
    ctx.state["seen"] = seen
    return {"step": ctx.step_id, "seen": seen, "note": ctx.state.get("note")}
