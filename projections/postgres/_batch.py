"""Running a batch's statements set-based: one statement per kind of change, not one per row.

A batch's ops are put in *levels*: an op goes one level above the last earlier op that touches
one of its rows (or a table it changes wholesale), so every row sees its changes in event order
while ops on different rows share a level. Within a level the ops with the same template become
one ``INSERT ... SELECT`` / ``UPDATE ... FROM`` over ``jsonb_to_recordset`` of their rows; ops
without a set-based form run as ``executemany``. Level by level, this gives the same rows as
running the ops one by one, with a few dozen statements per batch instead of thousands.
"""

from __future__ import annotations

import json
import re
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from omium.projections.postgres._sql import Op

Types = Mapping[str, Mapping[str, str]]
"""Column types by table, as ``format_type`` spells them."""

_PARAM = re.compile(r"%\((\w+)\)s")


@dataclass
class Group:
    """Ops of one level that run as one statement (or one ``executemany``)."""

    template: Hashable
    ops: list[Op] = field(default_factory=list)


def plan(ops: Sequence[Op]) -> list[list[Group]]:
    """The ops in levels, each level's ops grouped by template (in first-seen order)."""
    last_row: dict[Hashable, int] = {}
    table_top: dict[str, int] = {}
    table_wall: dict[str, int] = {}
    top, wall = -1, -1  # highest level used; level of the last op ordered against all
    levels: list[dict[Hashable, Group]] = []
    for op in ops:
        level = wall + 1
        if not op.touches and not op.barrier:
            level = top + 1
        for row in op.touches:
            level = max(level, last_row.get(row, -1) + 1, table_wall.get(row[0], -1) + 1)
        for table in op.barrier:
            level = max(level, table_top.get(table, -1) + 1, table_wall.get(table, -1) + 1)
        for row in op.touches:
            last_row[row] = level
            table_top[row[0]] = max(table_top.get(row[0], -1), level)
        for table in op.barrier:
            table_wall[table] = level
            table_top[table] = max(table_top.get(table, -1), level)
        if not op.touches and not op.barrier:
            wall = level
        top = max(top, level)
        while len(levels) <= level:
            levels.append({})
        key: Hashable = op.template if op.template is not None else ("raw", op.sql)
        levels[level].setdefault(key, Group(key)).ops.append(op)
    return [list(groups.values()) for groups in levels]


def statement(group: Group, types: Types) -> tuple[str, list[Any]]:
    """The SQL of a group (``{s}`` for the schema) and its parameters.

    Returns:
        ``(sql, [json rows])`` for a set-based group; ``(sql, [params, ...])`` for ``executemany``
        when the template is a raw statement (marked by a first element ``"raw"``).
    """
    template = group.template
    assert isinstance(template, tuple)
    if template[0] == "raw":
        return template[1], [op.params for op in group.ops]
    rows = json.dumps([op.values for op in group.ops], separators=(",", ":"))
    return set_sql(template, types), [rows]


def set_sql(template: tuple[Any, ...], types: Types) -> str:
    """The set-based statement of a template; its one parameter is a JSON array of rows."""
    kind, table = template[0], template[1]
    columns = types[table]
    if kind in ("insert", "upsert"):
        names, key = template[2], template[3]
        record = ", ".join(f"{c} {columns[c]}" for c in names)
        listed = ", ".join(names)
        sql = (
            f"INSERT INTO {{s}}.{table} ({listed}) SELECT {listed} "
            f"FROM jsonb_to_recordset(%s::jsonb) AS v({record}) "
            f"ON CONFLICT ({', '.join(key)}) "
        )
        if kind == "insert":
            return sql + "DO NOTHING"
        version = template[4]
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in names if c not in key)
        return sql + f"DO UPDATE SET {updates} WHERE {table}.{version} < EXCLUDED.{version}"
    if kind == "update":
        key, values, increments, expressions, params = template[2:7]
        fields = [f"k_{c} {columns[c]}" for c in key]
        fields += [f"v_{c} {columns[c]}" for c in values]
        fields += [f"i_{c} {columns[c]}" for c in increments]
        fields += [f"p_{p} text" for p in params]
        fields.append("_version bigint")
        sets = [f"{c} = v.v_{c}" for c in values]
        sets += [f"{c} = {c} + v.i_{c}" for c in increments]
        sets += [f"{c} = {_PARAM.sub(_param_column, expr)}" for c, expr in expressions]
        sets.append("last_event_version = v._version")
        where = " AND ".join(f"{table}.{c} = v.k_{c}" for c in key)
        return (
            f"UPDATE {{s}}.{table} SET {', '.join(sets)} "
            f"FROM jsonb_to_recordset(%s::jsonb) AS v({', '.join(fields)}) "
            f"WHERE {where} AND {table}.last_event_version < v._version"
        )
    raise ValueError(f"no set-based form for {kind!r}")


def _param_column(match: re.Match[str]) -> str:
    return f"v.p_{match.group(1)}"
