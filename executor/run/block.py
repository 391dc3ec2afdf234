"""A list of tasks with its ``errors`` and ``finally``: the state fold, written once.

Kestra's rules: a failure stops the list; ``errors`` then run, but never rescue it (the block
stays FAILED); ``finally`` runs after both, on success too. A cancelled branch starts nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from executor.flow.model import Task
from executor.model import State
from executor.run.context import RunContext
from executor.run.scope import Scope

# Which state wins when a block's tasks end differently.
_RANK = {
    State.KILLED: 6,
    State.FAILED: 5,
    State.CANCELLED: 4,
    State.PAUSED: 3,
    State.WARNING: 2,
    State.SUCCESS: 1,
    State.SKIPPED: 0,
}


def fold(states: Iterable[State]) -> State:
    """The state of a group of ended task runs: KILLED > FAILED > CANCELLED > WARNING > SUCCESS."""
    worst = max(states, key=lambda s: _RANK.get(s, 1), default=State.SUCCESS)
    return State.SUCCESS if worst in (State.SKIPPED, State.PAUSED) else worst


def run_sequence(tasks: Sequence[Task], scope: Scope, ctx: RunContext) -> State:
    """Tasks one after another; the first failure (or a cancel) stops the rest."""
    states: list[State] = []
    for task in tasks:
        if scope.cancel.cancelled:
            states.append(scope.cancel.state or State.KILLED)
            break
        state = ctx.run_task(task, scope)
        states.append(state)
        if state.failed:
            break
    return fold(states)


def run_block(
    tasks: Sequence[Task],
    errors: Sequence[Task],
    finally_: Sequence[Task],
    scope: Scope,
    ctx: RunContext,
) -> State:
    """``tasks``, then ``errors`` when they failed, then ``finally``; the block's state."""
    return close_block(run_sequence(tasks, scope, ctx), errors, finally_, scope, ctx)


def close_block(
    state: State,
    errors: Sequence[Task],
    finally_: Sequence[Task],
    scope: Scope,
    ctx: RunContext,
) -> State:
    """Given how a block's body ended: ``errors`` on failure, then ``finally``; its state.

    Called only once every task of the body has ended, so neither ever starts while a
    sibling still runs.
    """
    if state.failed and errors and not scope.cancel.cancelled:
        handled = run_sequence(errors, scope, ctx)
        if handled == State.KILLED:
            state = State.KILLED
    if finally_ and not scope.cancel.cancelled:
        closing = run_sequence(finally_, scope, ctx)
        state = fold([state, closing])
    return state
