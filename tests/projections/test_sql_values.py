"""How the PostgreSQL projection turns a row's Python values into statement values (pure logic).

The set-based form (``Op.values``, read back by ``jsonb_to_recordset``) and the one-row form
(``Op.params``, adapted for the driver) must say the same thing about every kind of value; the
fast paths for plain values must not change what nested values become.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from psycopg.types.json import Jsonb

from omium.projections.postgres._sql import insert_once, json_row, jsonable, update_versioned

RUN = uuid.UUID("00000000-0000-4000-8000-000000000001")
AT = datetime(2026, 12, 7, 1, 2, 3, tzinfo=UTC)


def _row() -> dict[str, Any]:
    return {
        "execution_id": RUN,
        "event_id": RUN,
        "name": "step",
        "attempt": 2,
        "cost": 0.5,
        "ok": True,
        "missing": None,
        "at": AT,
        "blob": b"\x01\xff",
        "detail": {"ids": (RUN, 1), "when": AT, "raw": b"abc", "flag": False, "n": None},
    }


def test_set_based_values_are_json_ready_at_every_depth() -> None:
    assert json_row(_row()) == {
        "execution_id": str(RUN),
        "event_id": str(RUN),
        "name": "step",
        "attempt": 2,
        "cost": 0.5,
        "ok": True,
        "missing": None,
        "at": AT.isoformat(),
        "blob": "\\x01ff",  # a bytea column, as hex
        "detail": {
            "ids": [str(RUN), 1],
            "when": AT.isoformat(),
            "raw": {"bytes": 3},  # bytes inside JSON are only described
            "flag": False,
            "n": None,
        },
    }


def test_any_mapping_is_converted_and_its_keys_become_text() -> None:
    assert jsonable(MappingProxyType({1: RUN, "x": [AT]})) == {"1": str(RUN), "x": [AT.isoformat()]}
    assert jsonable({2: {3: "three"}}) == {"2": {"3": "three"}}


def test_the_one_row_form_adapts_dicts_to_jsonb_and_ids_to_text() -> None:
    op = insert_once("timeline", _row(), key=["event_id"])

    params = dict(op.params)

    assert params["execution_id"] == str(RUN)
    assert params["event_id"] == RUN  # the uuid column keeps its type
    assert params["at"] == AT and params["blob"] == b"\x01\xff"
    assert isinstance(params["detail"], Jsonb)
    assert params["detail"].obj == json_row(_row())["detail"]
    assert len(op.params) == len(_row()) and set(op.params) == set(_row())


def test_an_update_names_its_parameters_in_both_forms() -> None:
    op = update_versioned(
        "executions", {"execution_id": RUN}, version=7, values={"status": "running"}
    )

    assert dict(op.params) == {"k_execution_id": str(RUN), "v_status": "running", "_version": 7}
    assert op.values == {"k_execution_id": str(RUN), "v_status": "running", "_version": 7}
