"""The execution state machine: every command in every state.

The expected table is written out here on purpose, independent of ``ALLOWED_STATES``, so a
change to the state machine has to be made twice.
"""

from __future__ import annotations

import pytest

from omium.commands.errors import InvalidTransitionError
from omium.commands.executions import ALLOWED_STATES, TERMINAL_STATES, ExecutionState
from tests.commands.executions.builders import execution_in, issue

P = ExecutionState.PENDING
R = ExecutionState.RUNNING
W = ExecutionState.WAITING_FOR_APPROVAL

# command -> {state it is allowed in: state it leads to}
TRANSITIONS: dict[str, dict[ExecutionState, ExecutionState]] = {
    "schedule_step": {P: P, R: R, W: W},
    "start_step": {P: R, R: R, W: W},
    "complete_step": {R: R, W: W},
    "fail_step": {R: R, W: W},
    "create_checkpoint": {P: P, R: R, W: W},
    "roll_back_to_checkpoint": {R: R},
    "request_human_approval": {P: W, R: W, W: W},
    "grant_approval": {W: R},
    "reject_approval": {W: R},
    "apply_approval_default": {W: R},
    "complete_execution": {R: ExecutionState.COMPLETED},
    "fail_execution": {
        P: ExecutionState.FAILED,
        R: ExecutionState.FAILED,
        W: ExecutionState.FAILED,
    },
    "halt_execution": {
        P: ExecutionState.HALTED,
        R: ExecutionState.HALTED,
        W: ExecutionState.HALTED,
    },
    "cancel_execution": {
        P: ExecutionState.CANCELLED,
        R: ExecutionState.CANCELLED,
        W: ExecutionState.CANCELLED,
    },
}

ALLOWED = [(c, s) for c, targets in TRANSITIONS.items() for s in targets]
FORBIDDEN = [(c, s) for c in TRANSITIONS for s in ExecutionState if s not in TRANSITIONS[c]]


def test_the_table_matches_the_state_machine() -> None:
    assert {c: set(t) for c, t in TRANSITIONS.items()} == {
        c: set(s) for c, s in ALLOWED_STATES.items()
    }


@pytest.mark.parametrize(("command", "state"), ALLOWED)
def test_every_allowed_transition(command: str, state: ExecutionState) -> None:
    execution = execution_in(state)
    version = execution.version

    issue(execution, command)

    assert execution.state is TRANSITIONS[command][state]
    assert execution.version > version


@pytest.mark.parametrize(("command", "state"), FORBIDDEN)
def test_every_forbidden_transition_names_the_command_and_the_state(
    command: str, state: ExecutionState
) -> None:
    execution = execution_in(state)
    pending_events = len(execution.pending_events)

    with pytest.raises(InvalidTransitionError) as refused:
        issue(execution, command)

    assert (refused.value.command, refused.value.current_state) == (command, state.value)
    assert refused.value.aggregate_id == execution.id
    assert state.value in str(refused.value)
    assert len(execution.pending_events) == pending_events


def test_a_finished_run_refuses_everything() -> None:
    for state in TERMINAL_STATES:
        assert all(state not in allowed for allowed in ALLOWED_STATES.values())
