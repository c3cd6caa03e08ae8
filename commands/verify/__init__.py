"""Verifying the hash chains of stored and published histories (``omium verify``).

Every event the relay publishes carries ``prev_hash`` and ``hash`` (see
:mod:`omium.kernel.events`). :class:`HistoryVerifier` checks a run, a tenant or everything in two
places and names the first broken link of each chain (aggregate, version, expected and found):

- **the event store**: the stored events are re-encoded exactly as the relay encodes them and
  compared with what it published (its chain heads, and every message on Kafka);
- **Kafka**: the domain topics, read committed from the beginning: every message must hash to
  its ``hash``, follow its predecessor's version and point at its hash; byte-identical re-sends
  are counted, different messages for one version, gaps and missing events are breaks.

In code::

    with HistoryVerifier.create(settings) as verifier:
        report = verifier.verify(VerifyScope(execution_id=run_id))
        if not report.ok:
            print(report.first_break.describe())
"""

from omium.commands.verify._kafka import KafkaHistory, KafkaHistoryReader
from omium.commands.verify._report import (
    BreakKind,
    ChainBreak,
    VerifyReport,
    VerifyScope,
    Where,
)
from omium.commands.verify._verifier import HistoryVerifier, domain_topics
from omium.commands.verify.errors import HistoryUnavailableError

__all__ = [
    # Verifying
    "HistoryVerifier",
    "VerifyScope",
    "domain_topics",
    # The report
    "BreakKind",
    "ChainBreak",
    "VerifyReport",
    "Where",
    # Parts
    "KafkaHistory",
    "KafkaHistoryReader",
    # Errors
    "HistoryUnavailableError",
]
