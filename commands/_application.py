"""The base of every command application: loading, tenancy, idempotency, error translation.

Handlers are methods decorated with :func:`command_handler`. Their body loads (or creates) one
aggregate, calls its command methods and returns it; the decorator does the rest: replaying an
idempotency key, saving the pending events together with the key, and translating the library's
errors into Omium's.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Concatenate, ParamSpec, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    ApplicationRecorder,
    IntegrityError,
    JSONTranscoder,
)
from eventsourcing.persistence import PersistenceError as LibraryPersistenceError
from eventsourcing.utils import Environment, EnvType

from omium.commands._idempotency import (
    ALSO_WRITE_KWARG,
    IDEMPOTENCY_KWARG,
    IdempotencyRecord,
    IdempotencyStore,
    command_fingerprint,
)
from omium.commands._persistence import BytesAsBase64, construct_idempotent_recorder
from omium.commands._result import CommandResult, Outcome
from omium.commands.errors import (
    ConflictError,
    EventStoreError,
    IdempotencyKeyReusedError,
    InvalidCommandError,
    NotFoundError,
)
from omium.kernel.errors import ConcurrencyError, DomainError

TransactionalWrite = Callable[[Any], None]
"""A write that commits with a command's events: called with the transaction's cursor
(PostgreSQL) or ``None`` (the in-memory store, after the events are in)."""

_ALSO_WRITE: contextvars.ContextVar[tuple[TransactionalWrite, ...]] = contextvars.ContextVar(
    "omium_also_write", default=()
)


@contextlib.contextmanager
def also_writing(*writes: TransactionalWrite) -> Iterator[None]:
    """Commit ``writes`` in the transaction of every command this context runs.

    A read model that must be visible exactly when the events are (a LangGraph checkpoint's
    row) is written this way: both commit, or neither does. A command that replays an
    idempotency key, or changes nothing, runs no write.
    """
    token = _ALSO_WRITE.set(_ALSO_WRITE.get() + writes)
    try:
        yield
    finally:
        _ALSO_WRITE.reset(token)


A = TypeVar("A", bound=Aggregate)
App = TypeVar("App", bound="CommandApplication")
P = ParamSpec("P")


class CommandApplication(Application[UUID]):
    """An event-sourced application whose public methods are command handlers and queries.

    Configured only by the ``env`` it is given (see :func:`omium.commands.event_store_env`); unlike
    the library's default it does not read ``os.environ``, because only an entrypoint reads
    the environment.
    """

    clock: ClassVar[Callable[[], datetime]] = staticmethod(lambda: datetime.now(UTC))

    def __init__(self, env: EnvType | None = None) -> None:
        """Connect to the event store described by ``env``.

        Args:
            env: Event-store environment, usually from :func:`omium.commands.event_store_env`.
        """
        super().__init__(env)

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        """Build the environment from class defaults and ``env`` only (never ``os.environ``)."""
        merged = dict(type(self).env)
        merged.update(env or {})
        return Environment(name, merged)

    def construct_recorder(self) -> ApplicationRecorder:
        """Use a recorder that writes idempotency keys in the events' transaction."""
        with translate_persistence_errors():
            return construct_idempotent_recorder(self.factory)

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        """Add ``bytes`` to the library's JSON transcodings."""
        super().register_transcodings(transcoder)
        transcoder.register(BytesAsBase64())

    @property
    def idempotency(self) -> IdempotencyStore:
        """Where this application's idempotency keys are recorded."""
        assert isinstance(self.recorder, IdempotencyStore)
        return self.recorder

    def load(
        self,
        aggregate_type: type[A],
        tenant_id: str,
        aggregate_id: UUID | str,
        *,
        expected_version: int | None = None,
    ) -> A:
        """Load an aggregate of the caller's tenant.

        Args:
            aggregate_type: The class expected.
            tenant_id: The caller's tenant; another tenant's aggregate is "not found".
            aggregate_id: The aggregate's id.
            expected_version: When given, the version the caller last saw.

        Returns:
            The aggregate at its current version.

        Raises:
            NotFoundError: No such aggregate for this tenant.
            ConflictError: ``expected_version`` is not the current version.
        """
        name = aggregate_type.__name__
        try:
            uuid = aggregate_id if isinstance(aggregate_id, UUID) else UUID(aggregate_id)
        except ValueError:
            raise NotFoundError(aggregate_id, aggregate_type=name) from None
        try:
            with translate_persistence_errors():
                aggregate: Aggregate = self.repository.get(uuid)
        except AggregateNotFoundError:
            raise NotFoundError(uuid, aggregate_type=name) from None
        owner = getattr(aggregate, "tenant_id", None)
        if not isinstance(aggregate, aggregate_type) or owner != tenant_id:
            raise NotFoundError(uuid, aggregate_type=name)
        if expected_version is not None and expected_version != aggregate.version:
            raise ConflictError(
                uuid, expected_version=expected_version, actual_version=aggregate.version
            )
        return aggregate

    def exists(self, aggregate_id: UUID) -> bool:
        """Whether any aggregate (of any tenant) has this id."""
        with translate_persistence_errors():
            return aggregate_id in self.repository

    def now(self, now: datetime | None = None) -> datetime:
        """``now`` if given (must be timezone-aware), else the application's clock."""
        if now is None:
            return type(self).clock()
        if now.tzinfo is None:
            raise InvalidCommandError("now must be timezone-aware", reason="naive_datetime")
        return now

    def run_command(
        self,
        command: str,
        tenant_id: str,
        arguments: Mapping[str, Any],
        idempotency_key: str | None,
        decide: Callable[[], Aggregate | Outcome[Any]],
    ) -> CommandResult:
        """Run one command: replay its key, or decide and save events and key together.

        Args:
            command: The handler's name (part of the key's fingerprint).
            tenant_id: The caller's tenant.
            arguments: The handler's arguments, for the fingerprint.
            idempotency_key: The client's key, or None.
            decide: Loads or creates the aggregate and applies the command to it.

        Returns:
            The new result, or the first result recorded under ``idempotency_key``.
        """
        check_tenant_id(tenant_id)
        fingerprint = command_fingerprint(command, arguments)
        # Decide first and let the key's primary key catch a repeat at save time: the common
        # case (a new key) then costs no read. A repeat is recognised either there or, when the
        # aggregate has moved on so the command is refused now, before the refusal is raised.
        try:
            outcome = decide()
        except (DomainError, ConcurrencyError):
            replay = self._replay_if_keyed(tenant_id, idempotency_key, fingerprint)
            if replay is not None:
                return replay
            raise
        if not isinstance(outcome, Outcome):
            outcome = Outcome(outcome)
        aggregate = outcome.aggregate
        events = tuple(type(event).__name__ for event in aggregate.pending_events)
        result = CommandResult(aggregate.id, aggregate.version, events, outcome.data)
        if not events:
            # Nothing changed (e.g. a consensus round that is still open): nothing to record,
            # unless this key already answered once (its first answer is the answer).
            replay = self._replay_if_keyed(tenant_id, idempotency_key, fingerprint)
            return result if replay is None else replay
        return self._save(aggregate, result, tenant_id, idempotency_key, fingerprint)

    def _save(
        self,
        aggregate: Aggregate,
        result: CommandResult,
        tenant_id: str,
        idempotency_key: str | None,
        fingerprint: str,
    ) -> CommandResult:
        record = None
        if idempotency_key is not None:
            record = IdempotencyRecord(
                tenant_id, self.name, idempotency_key, fingerprint, result, self.now()
            )
        try:
            with translate_persistence_errors():
                self.save(
                    aggregate, **{IDEMPOTENCY_KWARG: record, ALSO_WRITE_KWARG: _ALSO_WRITE.get()}
                )
        except IntegrityError as exc:
            # Either the same key won a race (replay its result) or the aggregate moved on; a
            # cached copy is stale either way (without fast-forward it would stay stale).
            self._forget(aggregate.id)
            if idempotency_key is not None:
                replay = self._replay(tenant_id, idempotency_key, fingerprint)
                if replay is not None:
                    return replay
            decided_on = result.version - len(result.events)
            raise ConflictError(aggregate.id, expected_version=decided_on) from exc
        return result

    def _forget(self, aggregate_id: UUID) -> None:
        cache = self.repository.cache
        if cache is not None:
            with contextlib.suppress(KeyError):
                cache.get(aggregate_id, evict=True)

    def _replay_if_keyed(
        self, tenant_id: str, key: str | None, fingerprint: str
    ) -> CommandResult | None:
        return None if key is None else self._replay(tenant_id, key, fingerprint)

    def _replay(self, tenant_id: str, key: str, fingerprint: str) -> CommandResult | None:
        with translate_persistence_errors():
            record = self.idempotency.get_idempotency_record(tenant_id, self.name, key)
        if record is None:
            return None
        if record.fingerprint != fingerprint:
            raise IdempotencyKeyReusedError(key)
        return CommandResult.from_json(record.result.to_json(), replayed=True)


def command_handler(
    func: Callable[Concatenate[App, P], Aggregate | Outcome[Any]],
) -> Callable[Concatenate[App, P], CommandResult]:
    """Turn a handler body into an idempotent, error-translating command handler.

    The body's first argument after ``self`` must be ``tenant_id``; an ``idempotency_key``
    keyword is taken out of the arguments and handled here. The body returns the aggregate it
    changed (or an :class:`~omium.commands._result.Outcome`), the wrapper returns a
    :class:`~omium.commands._result.CommandResult`.
    """
    signature = inspect.signature(func)

    @functools.wraps(func)
    def handler(self: App, *args: P.args, **kwargs: P.kwargs) -> CommandResult:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        del arguments["self"]
        key = arguments.pop("idempotency_key", None)
        return self.run_command(
            func.__name__,
            arguments["tenant_id"],
            arguments,
            key,
            lambda: func(self, *args, **kwargs),
        )

    return handler  # type: ignore[return-value]  # functools.wraps hides the new return type


def check_tenant_id(tenant_id: object) -> None:
    """Refuse a missing or blank tenant id (every aggregate belongs to one tenant)."""
    if not isinstance(tenant_id, str) or not tenant_id.strip():
        raise InvalidCommandError(
            "tenant_id must be a non-empty string", reason="invalid_tenant", field="tenant_id"
        )


@contextlib.contextmanager
def translate_persistence_errors() -> Iterator[None]:
    """Turn the library's store errors into :class:`~omium.commands.errors.EventStoreError`.

    ``IntegrityError`` passes through untouched: callers turn it into a conflict.
    """
    try:
        yield
    except IntegrityError:
        raise
    except LibraryPersistenceError as exc:
        raise EventStoreError(str(exc)) from exc
