"""Helpers for testing code that produces or consumes Omium events (no servers needed)."""

from omium.testing.samples import (
    SAMPLE_TENANT,
    example_datum,
    sample_chain,
    sample_event,
    sample_payload,
)

__all__ = [
    # sample events
    "SAMPLE_TENANT",
    "sample_chain",
    "sample_event",
    "sample_payload",
    # generated data
    "example_datum",
]
