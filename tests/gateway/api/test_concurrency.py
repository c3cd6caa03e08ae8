"""Concurrent commands on one aggregate over HTTP: exactly one wins, the others get 409.

The same Idempotency-Key sent concurrently creates one run and answers every sender alike.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.gateway.api.fixtures import Caller, Reply

pytestmark = pytest.mark.integration

ROUNDS = 6


def race(senders: list[Callable[[], Reply]]) -> list[Reply]:
    """Run the senders at the same moment, each on its own thread."""
    barrier = threading.Barrier(len(senders))

    def go(send: Callable[[], Reply]) -> Reply:
        barrier.wait()
        return send()

    with ThreadPoolExecutor(len(senders)) as pool:
        return list(pool.map(go, senders))


def poster(
    c: Caller, path: str, body: Any, role: str = "admin", **headers: str
) -> Callable[[], Reply]:
    """A sender of one POST."""
    return lambda: c.post(path, body, role=role, **headers)


@pytest.mark.parametrize("attempt", range(ROUNDS))
def test_racing_different_commands_on_one_run_exactly_one_wins(
    attempt: int, caller: Caller, event_count: Callable[[str, str], int]
) -> None:
    """cancel, halt and fail race on a running run: one ends it, the others are refused.

    Whichever way the race goes (the loser read the old version and lost at save time, or read
    the ended run), the loser gets 409: ``conflict`` or ``invalid-transition``.
    """
    eid = caller.running()
    before = event_count("executions", eid)
    responses = race(
        [
            poster(caller, f"/executions/{eid}/cancel", {"reason": "race"}),
            poster(caller, f"/executions/{eid}/halt", {"reason": "race"}),
            poster(caller, f"/executions/{eid}/fail", {"error": "race"}),
        ]
    )
    statuses = Counter(response.status_code for response in responses)
    assert statuses == {200: 1, 409: 2}, [r.text for r in responses]
    for response in responses:
        if response.status_code == 409:
            assert response.json()["type"].rsplit(":", 1)[1] in {"conflict", "invalid-transition"}
    assert event_count("executions", eid) == before + 1
    winner = next(r for r in responses if r.status_code == 200).url.path.rsplit("/", 1)[1]
    state = caller.ok(caller.get(f"/executions/{eid}"))["state"]
    assert state == {"cancel": "cancelled", "halt": "halted", "fail": "failed"}[winner]


@pytest.mark.parametrize("attempt", range(ROUNDS))
def test_racing_with_if_match_exactly_one_wins(
    attempt: int, caller: Caller, event_count: Callable[[str, str], int]
) -> None:
    """Four workers schedule different steps, each decided on the same version."""
    eid = caller.execution()
    version = caller.ok(caller.get(f"/executions/{eid}"))["version"]
    responses = race(
        [
            poster(
                caller, f"/executions/{eid}/steps", {"step_id": f"s{i}"}, If_Match=f'"{version}"'
            )
            for i in range(4)
        ]
    )
    statuses = Counter(response.status_code for response in responses)
    assert statuses == {200: 1, 409: 3}, [r.text for r in responses]
    for response in responses:
        if response.status_code == 409:
            problem = response.json()
            assert problem["type"].endswith(":conflict")
            assert problem["expected_version"] == version
    assert event_count("executions", eid) == version + 1


def test_racing_without_if_match_still_loses_no_update(
    caller: Caller, event_count: Callable[[str, str], int]
) -> None:
    """Without If-Match, the store's version check still refuses lost updates.

    Every accepted command is stored; every refused one got 409.
    """
    eid = caller.execution()
    responses = race(
        [poster(caller, f"/executions/{eid}/steps", {"step_id": f"s{i}"}) for i in range(6)]
    )
    accepted = [r for r in responses if r.status_code == 200]
    assert accepted and all(r.status_code in (200, 409) for r in responses)
    assert event_count("executions", eid) == 1 + len(accepted)
    steps = {step["step_id"] for step in caller.ok(caller.get(f"/executions/{eid}"))["steps"]}
    assert len(steps) == len(accepted)


def test_same_idempotency_key_sent_concurrently_starts_one_run(
    caller: Caller,
    event_count: Callable[[str, str], int],
    idempotency_count: Callable[[str], int],
) -> None:
    wid = caller.workflow()
    body = {"workflow_id": wid, "workflow_version": 1, "input": {"n": 1}}
    responses = race([poster(caller, "/executions", body, Idempotency_Key="start-once")] * 5)
    assert {r.status_code for r in responses} == {201}, [r.text for r in responses]
    assert len({r.content for r in responses}) == 1
    eid = responses[0].json()["execution_id"]
    assert event_count("executions", eid) == 1
    assert idempotency_count(caller.tenant) == 1


def test_racing_votes_each_counted_once(
    caller: Caller, event_count: Callable[[str, str], int]
) -> None:
    """The same participant votes three times at once: one vote counts, two are refused."""
    rid = caller.round()
    responses = race(
        [
            poster(caller, f"/consensus/rounds/{rid}/votes", {"participant": "a", "choice": c})
            for c in ("x", "y", "z")
        ]
    )
    assert Counter(r.status_code for r in responses) == {200: 1, 409: 2}
    assert event_count("consensus", rid) == 2
    votes = caller.ok(caller.get(f"/consensus/rounds/{rid}"))["votes"]
    assert list(votes) == ["a"]
