"""Small builders of the idempotent statements the PostgreSQL mappers emit.

Every statement is safe to run twice: rows keyed by an event (audit entries, votes, checkpoints,
timeline entries) are inserted ``ON CONFLICT DO NOTHING``; rows an aggregate keeps changing
(executions, steps, rounds) are changed only ``WHERE last_event_version < <this event's>``.
Column names come from the mappers' code, never from events; ``{s}`` is the schema.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb


@dataclass(frozen=True)
class Op:
    """One parameterised statement; ``{s}`` in ``sql`` is replaced by the schema name.

    ``sql`` with ``params`` is the one-row form. The builders below also describe the statement
    so that a batch can run many of them as one set-based statement (``_batch``):

    Attributes:
        template: What the statement does, hashable: ops with equal templates differ only in
            ``values`` and run together (``None``: only the one-row form exists).
        values: The row of the set-based form, JSON-ready.
        touches: The rows read or written, as ``(table, key values)``; a batch keeps the order
            of ops touching the same row.
        barrier: Tables the statement touches beyond single rows (ordered against every op on
            them). An op with neither ``touches`` nor ``barrier`` is ordered against all ops.
    """

    sql: str
    params: Mapping[str, Any] = field(default_factory=dict)
    template: tuple[Any, ...] | None = None
    values: Mapping[str, Any] | None = None
    touches: tuple[tuple[str, tuple[str, ...]], ...] = ()
    barrier: tuple[str, ...] = ()


def row_of(table: str, key: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """The identity of a row for ordering: table and key values (by sorted column name)."""
    return (table, tuple(str(key[c]) for c in sorted(key)))


def insert_once(table: str, row: Mapping[str, Any], *, key: Sequence[str]) -> Op:
    """Insert ``row`` unless a row with the same ``key`` exists."""
    return Op(
        _insert_once_sql(table, tuple(row), tuple(key)),
        _Adapted(row),
        template=("insert", table, tuple(row), tuple(key)),
        values=json_row(row),
        touches=(row_of(table, {c: row[c] for c in key}),),
    )


@cache
def _insert_once_sql(table: str, columns: tuple[str, ...], key: tuple[str, ...]) -> str:
    values = ", ".join(f"%({c})s" for c in columns)
    return (
        f"INSERT INTO {{s}}.{table} ({', '.join(columns)}) VALUES ({values}) "
        f"ON CONFLICT ({', '.join(key)}) DO NOTHING"
    )


def upsert_versioned(
    table: str, row: Mapping[str, Any], *, key: Sequence[str], version_column: str
) -> Op:
    """Insert ``row`` or update its non-key columns, only if ``version_column`` grows."""
    return Op(
        _upsert_sql(table, tuple(row), tuple(key), version_column),
        _Adapted(row),
        template=("upsert", table, tuple(row), tuple(key), version_column),
        values=json_row(row),
        touches=(row_of(table, {c: row[c] for c in key}),),
    )


@cache
def _upsert_sql(table: str, columns: tuple[str, ...], key: tuple[str, ...], version: str) -> str:
    values = ", ".join(f"%({c})s" for c in columns)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in key)
    return (
        f"INSERT INTO {{s}}.{table} ({', '.join(columns)}) VALUES ({values}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates} "
        f"WHERE {table}.{version} < EXCLUDED.{version}"
    )


def update_versioned(
    table: str,
    key: Mapping[str, Any],
    *,
    version: int,
    values: Mapping[str, Any] | None = None,
    increments: Mapping[str, float] | None = None,
    expressions: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
) -> Op:
    """Update the row at ``key`` if its ``last_event_version`` is below ``version``.

    Args:
        table: Table name.
        key: Primary-key columns and values.
        version: The event's aggregate version; becomes ``last_event_version``.
        values: Columns set to values.
        increments: Columns increased by amounts.
        expressions: Columns set to SQL expressions (from code), using ``params``.
        params: Extra named parameters for ``expressions``.
    """
    values, increments, expressions = values or {}, increments or {}, expressions or {}
    sql = _update_sql(
        table, tuple(key), tuple(values), tuple(increments), tuple(expressions.items())
    )
    bound = {
        **{f"k_{c}": v for c, v in key.items()},
        **{f"v_{c}": v for c, v in values.items()},
        **{f"i_{c}": v for c, v in increments.items()},
        **(params or {}),
        "_version": version,
    }
    extra = tuple(sorted((params or {}).keys()))
    plain = {
        **{f"k_{c}": v for c, v in key.items()},
        **{f"v_{c}": v for c, v in values.items()},
        **{f"i_{c}": v for c, v in increments.items()},
        **{f"p_{c}": v for c, v in (params or {}).items()},
        "_version": version,
    }
    return Op(
        sql,
        _Adapted(bound),
        template=(
            "update",
            table,
            tuple(key),
            tuple(values),
            tuple(increments),
            tuple(expressions.items()),
            extra,
        ),
        values=json_row(plain),
        touches=(row_of(table, key),),
    )


@cache
def _update_sql(
    table: str,
    key: tuple[str, ...],
    values: tuple[str, ...],
    increments: tuple[str, ...],
    expressions: tuple[tuple[str, str], ...],
) -> str:
    sets = [f"{c} = %(v_{c})s" for c in values]
    sets += [f"{c} = {c} + %(i_{c})s" for c in increments]
    sets += [f"{c} = {expr}" for c, expr in expressions]
    sets.append("last_event_version = %(_version)s")
    where = " AND ".join(f"{c} = %(k_{c})s" for c in key)
    return (
        f"UPDATE {{s}}.{table} SET {', '.join(sets)} "
        f"WHERE {where} AND last_event_version < %(_version)s"
    )


class _Adapted(Mapping[str, Any]):
    """The one-row form's parameters, adapted on first use.

    A set-based batch reads only ``Op.values``; adapting every op's parameters as well, up front,
    walked each row's JSON a second time for nothing.
    """

    __slots__ = ("_adapted", "_row")

    def __init__(self, row: Mapping[str, Any]) -> None:
        self._row = row
        self._adapted: dict[str, Any] | None = None

    def _values(self) -> dict[str, Any]:
        if self._adapted is None:
            self._adapted = _adapt(self._row)
        return self._adapted

    def __getitem__(self, name: str) -> Any:
        return self._values()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values())

    def __len__(self) -> int:
        return len(self._row)


def _adapt(row: Mapping[str, Any]) -> dict[str, Any]:
    """Driver-ready values: dicts become ``jsonb``, UUIDs text (ids are text columns)."""
    adapted: dict[str, Any] = {}
    for name, value in row.items():
        if isinstance(value, dict):
            adapted[name] = Jsonb(jsonable(value))
        elif isinstance(value, UUID) and name != "event_id":
            adapted[name] = str(value)
        else:
            adapted[name] = value
    return adapted


def json_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """``row`` as JSON that ``jsonb_to_recordset`` reads back into the columns' types: dicts
    stay JSON (jsonb columns), bytes become bytea hex, times ISO 8601, UUIDs text."""
    converted: dict[str, Any] = {}
    for name, value in row.items():
        kind = type(value)
        if kind in _PLAIN:
            converted[name] = value
        elif isinstance(value, bytes):
            converted[name] = "\\x" + value.hex()
        else:
            converted[name] = jsonable(value)
    return converted


_PLAIN = frozenset({str, int, float, bool, type(None)})


def jsonable(value: Any) -> Any:
    """``value`` with UUIDs, datetimes and bytes turned into JSON-friendly values."""
    # Exact types first: most values are plain, and isinstance against the Mapping ABC was
    # most of a projection batch's mapping time (measured: ~40% of `apply`).
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is dict:
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return {"bytes": len(value)}
    return value


def to_json(value: Any) -> str:
    """Compact JSON of ``value`` after :func:`jsonable`."""
    return json.dumps(jsonable(value), separators=(",", ":"), sort_keys=True)
