"""Real LangGraph graphs checkpointed in Omium: a subgraph, an interrupt, a resume elsewhere.

The interrupt sits inside the subgraph, so resuming needs both namespaces' checkpoints and the
pending interrupt write back from Omium, through a new saver and client, as a restarted process
would have them.
"""

from __future__ import annotations

import operator
import uuid
from collections.abc import Callable
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, StateSnapshot, interrupt

from omium.integrations.langgraph import AsyncOmiumSaver, OmiumSaver
from omium.sdk.client import AsyncClient, Client, ConflictError

pytestmark = pytest.mark.integration


class Report(TypedDict):
    topic: str
    notes: Annotated[list[str], operator.add]
    approved: bool


def research(state: Report) -> dict[str, Any]:
    return {"notes": [f"tides follow the moon ({state['topic']})"]}


def draft(state: Report) -> dict[str, Any]:
    return {"notes": ["draft: " + "; ".join(state["notes"])]}


def review(state: Report) -> dict[str, Any]:
    answer = interrupt({"question": "publish?", "draft": state["notes"][-1]})
    return {"approved": answer == "yes", "notes": [f"reviewed: {answer}"]}


def build() -> StateGraph[Report]:
    writer = StateGraph(Report)
    writer.add_node("draft", draft)
    writer.add_node("review", review)
    writer.add_edge(START, "draft")
    writer.add_edge("draft", "review")
    writer.add_edge("review", END)
    graph = StateGraph(Report)
    graph.add_node("research", research)
    graph.add_node("writer", writer.compile())
    graph.add_edge(START, "research")
    graph.add_edge("research", "writer")
    graph.add_edge("writer", END)
    return graph


def omium_view(client: Client, thread_id: str) -> tuple[str, set[str]]:
    """The thread's execution id and the namespaces it has checkpoints in."""
    page = client.request("GET", "/api/v1/langgraph/checkpoints", params={"thread_id": thread_id})
    execution_ids = {item["execution_id"] for item in page["items"]}
    assert len(execution_ids) == 1, execution_ids
    return execution_ids.pop(), {item["checkpoint_ns"] for item in page["items"]}


@pytest.mark.anyio
async def test_a_subgraph_interrupt_is_resumed_through_omium(
    async_client_factory: Callable[..., AsyncClient],
    client_factory: Callable[..., Client],
) -> None:
    config: Any = {"configurable": {"thread_id": f"report-{uuid.uuid4().hex[:8]}"}}
    async with async_client_factory("developer") as omium:
        graph = build().compile(checkpointer=AsyncOmiumSaver(omium))
        first = await graph.ainvoke({"topic": "tides", "notes": [], "approved": False}, config)
        assert first["__interrupt__"][0].value["question"] == "publish?"
        paused = await graph.aget_state(config, subgraphs=True)
        inner = paused.tasks[0].state  # the subgraph's own snapshot (subgraphs=True)
        assert isinstance(inner, StateSnapshot)
        assert paused.next == ("writer",) and inner.next == ("review",)

    # Another process: a new client and saver resume the thread from what Omium stored.
    async with async_client_factory("developer") as omium:
        graph = build().compile(checkpointer=AsyncOmiumSaver(omium))
        final = await graph.ainvoke(Command(resume="yes"), config)
    assert final["approved"] is True
    assert final["notes"][0].startswith("tides follow") and final["notes"][-1] == "reviewed: yes"

    viewer = client_factory("viewer")
    execution_id, namespaces = omium_view(viewer, config["configurable"]["thread_id"])
    run = viewer.get_execution(execution_id)
    assert "" in namespaces and any(ns.startswith("writer:") for ns in namespaces)
    # Every put of both graphs is a checkpoint of the one execution, in order.
    listed = viewer.request(
        "GET",
        "/api/v1/langgraph/checkpoints",
        params={"thread_id": config["configurable"]["thread_id"]},
    )
    assert len(run.checkpoints) == len(listed["items"]) >= 6
    assert {step.step_id for step in run.steps} == {"graph", *namespaces} - {""}
    assert run.state == "running" and all(c.position == "after" for c in run.checkpoints)


def test_the_sync_saver_runs_a_sync_graph_and_halting_stops_it(
    client_factory: Callable[..., Client],
) -> None:
    thread = f"sync-{uuid.uuid4().hex[:8]}"
    config: Any = {"configurable": {"thread_id": thread}}
    saver = OmiumSaver(client_factory("developer"))
    graph = build().compile(checkpointer=saver)
    graph.invoke({"topic": "sync", "notes": [], "approved": False}, config)
    assert graph.get_state(config).next == ("writer",)
    root = list(saver.list({"configurable": {"thread_id": thread, "checkpoint_ns": ""}}))
    assert [t.metadata["step"] for t in root] == [1, 0, -1]
    assert len(list(saver.list(config))) == 6  # the subgraph's three as well

    operator_client = client_factory("operator")
    execution_id, _ = omium_view(operator_client, thread)
    operator_client.halt_execution(execution_id, reason="budget exceeded")
    with pytest.raises(ConflictError) as halted:
        graph.invoke(Command(resume="no"), config)
    assert halted.value.extensions["current_state"] == "halted"

    saver.delete_thread(thread)
    assert saver.get_tuple(config) is None
    # The thread id can be used again: a new execution records it.
    graph.invoke({"topic": "again", "notes": [], "approved": False}, config)
    new_execution, _ = omium_view(operator_client, thread)
    assert new_execution != execution_id
    assert operator_client.get_execution(execution_id).state == "halted"
