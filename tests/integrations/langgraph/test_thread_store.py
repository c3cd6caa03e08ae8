"""The thread store contract, run on both backends (STYLE §5): in memory and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace

import psycopg
import pytest
from eventsourcing.postgres import PostgresDatastore
from psycopg import sql

from omium.commands.langgraph import (
    InMemoryThreadStore,
    PostgresThreadStore,
    Query,
    StoredCheckpoint,
    StoredWrite,
    ThreadStore,
    decode_cursor,
    encode_cursor,
)
from omium.kernel.settings import OmiumSettings

T = "tenant-a"


def cp(thread: str, cid: str, ns: str = "", **metadata: object) -> StoredCheckpoint:
    return StoredCheckpoint(
        thread_id=thread,
        checkpoint_ns=ns,
        checkpoint_id=cid,
        parent_checkpoint_id=None,
        type="msgpack",
        data=cid.encode(),
        metadata={"source": "loop", **metadata},
    )


def write(task: str, idx: int, path: str = "", data: bytes = b"v") -> StoredWrite:
    return StoredWrite(
        task_id=task, idx=idx, channel=f"ch{idx}", type="msgpack", data=data, task_path=path
    )


class ThreadStoreContract:
    """What every thread store must do; subclasses provide ``store``."""

    @pytest.fixture
    def store(self) -> Iterator[ThreadStore]:
        raise NotImplementedError

    def test_bindings_survive_races_and_deletion(self, store: ThreadStore) -> None:
        first, second = uuid.uuid4(), uuid.uuid4()
        assert store.binding(T, "th") is None
        assert store.bind(T, "th", 0, first) == first
        assert store.bind(T, "th", 0, second) == first  # the loser gets the winner's execution
        store.add_step(T, "th", 0, "graph")
        store.add_step(T, "th", 0, "graph")
        assert store.binding(T, "th") == replace(
            store.binding(T, "th"),  # type: ignore[type-var]
            steps=frozenset({"graph"}),
        )
        store.put_checkpoint(T, cp("th", "1"))
        count, old = store.delete_thread(T, "th")
        assert count == 1 and old is not None and old.execution_id == first
        after = store.binding(T, "th")
        assert after is not None and after.execution_id is None and after.generation == 1
        assert store.bind(T, "th", 0, second) is None  # a stale generation binds nothing
        assert store.bind(T, "th", 1, second) == second
        assert store.binding(T, "th").steps == frozenset()  # type: ignore[union-attr]

    def test_find_orders_filters_and_pages(self, store: ThreadStore) -> None:
        for cid, ns, step in (("01", "", 0), ("02", "", 1), ("03", "sub:1", 0), ("04", "", 2)):
            store.put_checkpoint(T, cp("th", cid, ns, step=step))
        store.put_checkpoint("tenant-b", cp("th", "05"))

        def ids(query: Query) -> list[str]:
            return [c.checkpoint_id for c in store.find(T, query)]

        assert ids(Query(thread_id="th")) == ["04", "03", "02", "01"]
        assert ids(Query(thread_id="th", checkpoint_ns="")) == ["04", "02", "01"]
        assert ids(Query(thread_id="th", checkpoint_id="02")) == ["02"]
        assert ids(Query(thread_id="th", before="03", checkpoint_ns="")) == ["02", "01"]
        assert ids(Query(thread_id="th", metadata={"step": 0})) == ["03", "01"]
        assert ids(Query(metadata={"source": "loop", "step": 2})) == ["04"]
        first = store.find(T, Query(thread_id="th", limit=2))
        rest = ids(Query(thread_id="th", after_key=decode_cursor(encode_cursor(first[-1].key))))
        assert [c.checkpoint_id for c in first] + rest == ["04", "03", "02", "01"]

    def test_writes_are_kept_or_replaced_and_sorted(self, store: ThreadStore) -> None:
        store.put_checkpoint(T, cp("th", "01"))
        key = ("th", "", "01")
        store.put_writes(T, key, [write("b", 0), write("a", 1, "p")], replace=False)
        store.put_writes(T, key, [write("b", 0, data=b"new")], replace=False)
        store.put_writes(T, key, [write("a", -1, data=b"err")], replace=True)
        store.put_writes(T, key, [write("a", -1, data=b"err2")], replace=True)
        (found,) = store.find(T, Query(thread_id="th"))
        assert [(w.task_id, w.idx, w.data) for w in found.writes] == [
            ("a", -1, b"err2"),
            ("b", 0, b"v"),
            ("a", 1, b"v"),
        ]
        store.put_checkpoint(T, replace(cp("th", "01"), data=b"again"))
        (again,) = store.find(T, Query(thread_id="th"))
        assert again.data == b"again" and len(again.writes) == 3

    def test_runs_and_pruning(self, store: ThreadStore) -> None:
        for cid, ns, run in (
            ("01", "", "r1"),
            ("02", "", "r2"),
            ("03", "s:1", "r1"),
            ("04", "s:1", "r2"),
            ("05", "", "r2"),
        ):
            store.put_checkpoint(T, cp("th", cid, ns, run_id=run))
            store.put_writes(T, ("th", ns, cid), [write("t", 0)], replace=False)
        store.put_checkpoint(T, cp("other", "09"))
        assert store.delete_runs(T, ["r1"]) == 2
        assert store.prune(T, ["th"], "keep_latest") == 1
        assert [c.checkpoint_id for c in store.find(T, Query(thread_id="th"))] == ["05", "04"]
        assert store.prune(T, ["th"], "delete") == 2
        assert [c.checkpoint_id for c in store.find(T, Query())] == ["09"]
        assert [c.checkpoint_id for c in store.history(T, "other")] == ["09"]


class TestInMemoryThreadStore(ThreadStoreContract):
    @pytest.fixture
    def store(self) -> Iterator[ThreadStore]:
        yield InMemoryThreadStore()


@pytest.mark.integration
class TestPostgresThreadStore(ThreadStoreContract):
    @pytest.fixture
    def store(self, stack: OmiumSettings) -> Iterator[ThreadStore]:
        pg, schema = stack.postgres, f"test_lgstore_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        datastore = PostgresDatastore(
            pg.database, pg.host, pg.port, pg.user, pg.password.get_secret_value(), schema=schema
        )
        yield PostgresThreadStore(datastore)
        datastore.close()
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
