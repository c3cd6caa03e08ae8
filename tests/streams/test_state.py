"""State tables without Kafka: writes wait for the commit, restore wipes the local copy."""

from __future__ import annotations

from pathlib import Path

from omium.streams.base import StateTable, encode_value


def test_writes_are_seen_at_once_but_kept_locally_only_after_the_commit(tmp_path: Path) -> None:
    table = StateTable("t", changelog="c", directory=tmp_path)
    table.restore(0, [])

    table.put(0, "a", {"n": 1})
    assert table.get(0, "a") == {"n": 1}
    assert table.pending_changes() == [(0, "a", encode_value({"n": 1}))]
    table.rollback_local()
    assert table.get(0, "a") is None

    table.put(0, "a", {"n": 2})
    table.commit_local()
    assert table.pending_changes() == []
    assert table.get(0, "a") == {"n": 2}


def test_restore_replaces_whatever_the_local_copy_held(tmp_path: Path) -> None:
    table = StateTable("t", changelog="c", directory=tmp_path)
    table.restore(1, [])
    table.put(1, "stale", 1)
    table.commit_local()

    applied = table.restore(1, [(b"a", encode_value(1)), (b"b", encode_value(2)), (b"a", None)])

    assert applied == 3
    assert dict(table.items(1)) == {"b": 2}
    table.delete(1, "b")
    assert dict(table.items(1)) == {}
    table.close()
