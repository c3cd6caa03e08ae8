"""Pin the public names of ``omium.integrations.langgraph`` (STYLE §3)."""

from __future__ import annotations

import omium.integrations.langgraph as langgraph

EXPECTED = {"AsyncOmiumSaver", "OmiumSaver"}
REMOVED: set[str] = set()


def test_exports_are_pinned() -> None:
    assert set(langgraph.__all__) == EXPECTED
    assert not REMOVED & set(langgraph.__all__)
    for name in langgraph.__all__:
        assert hasattr(langgraph, name)


def test_both_savers_implement_every_saver_method() -> None:
    methods = {
        "get_tuple",
        "list",
        "put",
        "put_writes",
        "delete_thread",
        "delete_for_runs",
        "copy_thread",
        "prune",
    }
    for saver in (langgraph.OmiumSaver, langgraph.AsyncOmiumSaver):
        defined = set(vars(saver))
        assert methods <= defined and {f"a{m}" for m in methods} <= defined, saver
