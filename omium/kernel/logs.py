"""How an Omium process logs: structlog key-value events, and no credential in any line.

Every part logs with ``structlog.get_logger(__name__)`` and an event name plus fields
(``log.info("worker.partitions_owned", partitions=[0, 2])``), never a formatted message. An
entrypoint calls :func:`configure_logging` once: one line per event with its timestamp and level,
tracebacks as plain text (structlog's default renderer prints each frame's local variables, which
can hold tokens, API keys and secrets), and every string value passed through :func:`redact`.

Needs the ``worker`` extra (structlog).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

REDACTED = "[redacted]"

_PATTERNS = (
    # A JWT (header.payload.signature, base64url; the header always starts with eyJ).
    re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"),
    # An API key: omk_<key id>_<secret>.
    re.compile(r"omk_[0-9A-Za-z]+_[0-9A-Za-z_-]+"),
    # Credentials in query strings (WebSocket access_token) and authorization values.
    re.compile(r"(?i)((?:access_token|api_key|token|secret|password)=)[^&\s\"']+"),
    re.compile(r"(?i)(bearer\s+)[^\s\"',]+"),
    # A password in a connection URL: scheme://user:password@host.
    re.compile(r"(://[^/:@\s]+:)[^@/\s]+(@)"),
)


def redact(text: str) -> str:
    """``text`` with every token, API key and password replaced by ``[redacted]``."""
    for pattern in _PATTERNS:
        if pattern.groups == 2:
            text = pattern.sub(rf"\g<1>{REDACTED}\g<2>", text)
        elif pattern.groups == 1:
            text = pattern.sub(rf"\g<1>{REDACTED}", text)
        else:
            text = pattern.sub(REDACTED, text)
    return text


def redact_event(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor: redact every string value of an event (after tracebacks render)."""
    for key, value in list(event_dict.items()):
        if isinstance(value, str):
            event_dict[key] = redact(value)
    return event_dict


def configure_logging(level: str = "INFO", *, stream: TextIO | None = None) -> None:
    """Route the process's structlog events through redaction, one key-value line each.

    Args:
        level: The lowest level written (``settings.log_level``).
        stream: Where lines go; standard error by default.
    """
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            # Plain text tracebacks: no frame locals, unlike the default renderer's.
            structlog.processors.format_exc_info,
            redact_event,
            structlog.processors.KeyValueRenderer(
                key_order=["timestamp", "level", "event"], drop_missing=True
            ),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
