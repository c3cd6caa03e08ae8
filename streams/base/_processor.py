"""The contract every stream processor implements; the runtime supplies Kafka and transactions."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from omium.streams.base._context import Context
from omium.streams.base._state import StateTable


class Processor(ABC):
    """One stream processor: which topics it reads, which tables it keeps, what it does.

    Handlers run inside a Kafka transaction that also commits the input offsets and the state
    tables' changelog writes, so every effect of an input message happens once. Handlers must not
    call external systems (use a command on ``omium.commands`` for that) and must be
    deterministic given the event and the state.
    """

    name: str = "processor"
    """Name used in the ``omium.source`` header of outputs."""

    tables: Sequence[str] = ()
    """Names of the state tables; each gets a compacted changelog topic."""

    @abstractmethod
    def input_areas(self) -> Sequence[str]:
        """Areas (topic suffixes) to consume; they must have the same partition count."""

    def internal_inputs(self) -> Sequence[str]:
        """Suffixes of processor-internal topics to consume as well (see ``internal_topic``).

        Their records are JSON objects (written with ``Context.send``), handed to ``handle`` as
        ``ctx.event`` as they are.
        """
        return ()

    @abstractmethod
    def handle(self, ctx: Context) -> None:
        """Process ``ctx.event``; ignore event types the processor does not use.

        Raises:
            PersistenceError: Something it depends on is down; the message is retried.
            Exception: Anything else dead-letters the message with the error as the reason.
        """

    def on_tick(self, ctx: Context) -> None:  # noqa: B027 - optional hook
        """Run timers for one owned partition (``ctx.event`` is ``None``)."""

    def on_assigned(self, partition: int, tables: dict[str, StateTable]) -> None:  # noqa: B027
        """A partition's state was restored; rebuild in-memory indexes (e.g. deadlines)."""

    def on_revoked(self, partition: int) -> None:  # noqa: B027 - optional hook
        """A partition was taken away; drop its in-memory indexes."""

    def poll_side_inputs(self) -> None:  # noqa: B027 - optional hook
        """Read broadcast inputs (e.g. published policies) between transactions."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the processor holds."""
