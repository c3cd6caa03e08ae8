"""The root of Omium's error tree.

Every area defines its own errors as subclasses of these, so callers catch Omium types and never
driver types (psycopg, confluent-kafka, fastavro). Errors carry machine-readable fields, not only a
message.
"""

from __future__ import annotations


class OmiumError(Exception):
    """Root of every error Omium raises on purpose."""


class DomainError(OmiumError):
    """A command broke an invariant of an aggregate."""


class ConcurrencyError(OmiumError):
    """An aggregate changed between read and write (optimistic concurrency)."""


class PersistenceError(OmiumError):
    """A store or log could not be read or written."""


class ConfigurationError(OmiumError):
    """Settings or files needed to start are missing or invalid."""
