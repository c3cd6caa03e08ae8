"""The gateway process's logs: no credential ever reaches a log line.

Two sources of lines, both redacted:

- uvicorn's own loggers (``uvicorn.error`` writes ``"WebSocket /api/v1/events/ws?access_token=..."
  [accepted]``, ``uvicorn.access`` every request line with its query string): their handlers get
  :class:`RedactingFilter` through :func:`uvicorn_log_config`;
- structlog (the gateway's own events): :func:`configure_logging` (``omium.kernel.logs``, what
  every Omium process uses) renders one line per event with :func:`redact_event`, and exceptions
  as plain tracebacks. structlog's default renderer prints each frame's local variables (rich
  ``show_locals``), which hold bearer tokens, API keys and the HS256 secret while a request is
  being authenticated.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from omium.kernel.logs import REDACTED, configure_logging, redact, redact_event

__all__ = [
    "REDACTED",
    "RedactingFilter",
    "configure_logging",
    "redact",
    "redact_event",
    "uvicorn_log_config",
]


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, tuple):
        return tuple(_redact_value(item) for item in value)
    return value


class RedactingFilter(logging.Filter):
    """Redacts the message and string arguments of every record it sees (never drops one).

    The arguments keep their types and count: uvicorn's access formatter unpacks them.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; always keep it."""
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = _redact_value(record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _redact_value(value) for key, value in record.args.items()}
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's default logging configuration with :class:`RedactingFilter` on every handler."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact"] = {"()": f"{__name__}.RedactingFilter"}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact")
    return config
