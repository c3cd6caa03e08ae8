"""The step-graph helpers the worker schedules with."""

from __future__ import annotations

import pytest

from omium.sdk.workflow import descendants, find_cycle, ready_steps, topological_order

DIAMOND = {"fetch": [], "left": ["fetch"], "right": ["fetch"], "join": ["right", "left"]}


def test_topological_order_keeps_declaration_order_among_ready_steps() -> None:
    graph = {"c": [], "a": [], "b": ["c"], "d": ["b", "a"]}

    assert topological_order(graph) == ["c", "a", "b", "d"]
    assert topological_order(DIAMOND) == ["fetch", "left", "right", "join"]


def test_topological_order_refuses_a_cycle() -> None:
    with pytest.raises(ValueError, match="a -> b -> a"):
        topological_order({"a": ["b"], "b": ["a"], "c": []})


def test_find_cycle() -> None:
    assert find_cycle(DIAMOND) is None
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": [], "a": ["a"]}) == ["a", "a"]


def test_ready_steps_is_the_frontier() -> None:
    assert ready_steps(DIAMOND, []) == ["fetch"]
    assert ready_steps(DIAMOND, ["fetch"]) == ["left", "right"]
    assert ready_steps(DIAMOND, ["fetch"], started=["left"]) == ["right"]
    assert ready_steps(DIAMOND, ["fetch", "left"]) == ["right"]
    assert ready_steps(DIAMOND, ["fetch", "left", "right"]) == ["join"]
    assert ready_steps(DIAMOND, list(DIAMOND)) == []


def test_descendants_are_what_a_rollback_must_rerun() -> None:
    assert descendants(DIAMOND, "fetch") == ["left", "right", "join"]
    assert descendants(DIAMOND, "left") == ["join"]
    assert descendants(DIAMOND, "join") == []
