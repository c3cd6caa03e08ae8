"""The canary workflow's agent: quick, deterministic, with a little state to checkpoint."""

from __future__ import annotations

from typing import Any

from omium.worker import StepContext


def echo(ctx: StepContext) -> dict[str, Any]:
    """Count the steps seen in the run's state and return them."""
    seen = [*ctx.state.get("seen", []), ctx.step_id]
    ctx.state["seen"] = seen
    return {"step": ctx.step_id, "seen": seen}
