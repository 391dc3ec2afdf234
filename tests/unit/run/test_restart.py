"""Restart and replay on the fake engine: what is kept, what runs again, and what a task after
them sees (the real-server proof is tests/integration/test_restart_replay.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from executor.engine.api import ExecRequest, Stream
from executor.engine.fake import FakeBackend, echo_behaviour
from executor.errors import NotFoundError
from executor.flow.loader import load_flow_text
from executor.flow.secrets import Secrets
from executor.images import ResolvedImage
from executor.model import Execution, State
from executor.run.context import RunContext
from executor.run.restart import NotRestartable, plan_replay, plan_restart
from executor.run.runner import run_execution
from executor.settings import Settings
from tests.unit.run.test_flowable import CORE, LOG, RET, SH, Lines, flow, runs

LOOP = flow(
    f"""
    - id: first
      type: {RET}
      format: forty-one
    - id: each
      type: {CORE}.ForEach
      values: ["a", "b"]
      tasks:
        - id: step
          type: {SH}
          commands: ["echo run {{{{ taskrun.value }}}}"]
    - id: after
      type: {LOG}
      message: "after saw {{{{ outputs.first.value }}}}"
    """,
    extra=f"errors:\n  - {{id: on_error, type: {LOG}, message: handled}}\n",
)

WORKDIR = flow(
    f"""
    - id: first
      type: {RET}
      format: one
    - id: wd
      type: {CORE}.WorkingDirectory
      tasks:
        - {{id: ok, type: {SH}, commands: ["echo fine"]}}
        - {{id: bad, type: {SH}, commands: ["echo broken"]}}
    - id: after
      type: {RET}
      format: two
    """
)


class Engine(FakeBackend):
    """Runs what it is asked; a command that echoes a ``broken`` word fails while ``broken``."""

    def __init__(self) -> None:
        super().__init__(behaviour=self.answer)
        self.broken = {"run b", "broken"}
        self.ran: list[str] = []

    def answer(self, request: ExecRequest) -> tuple[list[tuple[Stream, str]], int]:
        lines, code = echo_behaviour(request)
        said = [text for _, text in lines]
        self.ran += said
        return lines, 1 if set(said) & self.broken else code


def run(text: str, execution: Execution, engine: Engine) -> tuple[Execution, Lines]:
    loaded = load_flow_text(text, Path("flow.yaml"))
    lines = Lines()
    ctx = RunContext(
        loaded=loaded,
        execution=execution,
        inputs=execution.inputs,
        settings=Settings(home=Path("/nonexistent"), kill_grace_seconds=0.1),
        backend=engine,
        resolve_image=lambda ref, policy, auth=None: ResolvedImage(ref, ref, f"id-of-{ref}"),
        secrets=Secrets({}),
        listeners=[lines],
        sleep=lambda s: None,
    )
    run_execution(ctx)
    return execution, lines


def _loaded(text: str) -> Execution:
    loaded = load_flow_text(text, Path("flow.yaml"))
    return Execution(loaded.flow.namespace, loaded.flow.id)


def test_restart_runs_only_the_failed_iteration_and_what_follows() -> None:
    engine = Engine()
    failed, _ = run(LOOP, _loaded(LOOP), engine)
    assert failed.state.current == State.FAILED
    assert [r.state.current for r in runs(failed, "on_error")] == [State.SUCCESS]
    first_id = runs(failed, "first")[0].id
    b_id = next(r.id for r in runs(failed, "step") if r.value == "b")
    on_error_id = runs(failed, "on_error")[0].id

    plan = plan_restart(failed, load_flow_text(LOOP, Path("flow.yaml")).flow)
    assert plan.execution.state.current == State.RESTARTED
    assert plan.dropped == [on_error_id]  # errors tasks answer the new end
    engine.broken.clear()
    engine.ran.clear()
    done, lines = run(LOOP, plan.execution, engine)

    assert done.state.current == State.SUCCESS
    assert engine.ran == ["run b"]  # "run a" ended well: not run again
    assert runs(done, "first")[0].id == first_id
    step_b = next(r for r in runs(done, "step") if r.value == "b")
    assert step_b.id == b_id
    assert [a.number for a in step_b.attempts] == [1, 2]
    assert [a.state.current for a in step_b.attempts] == [State.FAILED, State.SUCCESS]
    assert State.RESTARTED in [s for s, _ in step_b.state.history]
    assert len(runs(done, "step")) == 2
    assert runs(done, "on_error") == []
    assert "after saw forty-one" in [line.message for line in lines.lines]


def test_a_failed_child_restarts_its_whole_working_directory() -> None:
    engine = Engine()
    failed, _ = run(WORKDIR, _loaded(WORKDIR), engine)
    ok_id, bad_id = runs(failed, "ok")[0].id, runs(failed, "bad")[0].id
    plan = plan_restart(failed, load_flow_text(WORKDIR, Path("flow.yaml")).flow)
    assert set(plan.dropped) == {ok_id, bad_id}
    engine.broken.clear()
    engine.ran.clear()
    done, _ = run(WORKDIR, plan.execution, engine)
    assert done.state.current == State.SUCCESS
    assert engine.ran == ["fine", "broken"]  # the container was gone: both children again
    assert runs(done, "ok")[0].id != ok_id
    assert [r.state.current for r in runs(done, "after")] == [State.SUCCESS]
    assert len(runs(done, "first")[0].attempts) == 1


def test_only_a_failed_or_killed_execution_restarts() -> None:
    engine = Engine()
    engine.broken.clear()
    done, _ = run(WORKDIR, _loaded(WORKDIR), engine)
    with pytest.raises(NotRestartable, match="SUCCESS"):
        plan_restart(done, load_flow_text(WORKDIR, Path("flow.yaml")).flow)


def test_replay_copies_what_came_before_and_runs_the_rest() -> None:
    engine = Engine()
    engine.broken.clear()
    original, _ = run(LOOP, _loaded(LOOP), engine)
    spec = load_flow_text(LOOP, Path("flow.yaml")).flow
    start = runs(original, "after")[0]
    replay = plan_replay(original, spec, start.id)
    assert replay.id != original.id and replay.original_id == original.id
    assert replay.labels["system.replay"] == "true"
    assert {r.task_id for r in replay.task_runs} == {"first", "each", "step"}
    assert not {r.id for r in replay.task_runs} & {r.id for r in original.task_runs}
    engine.ran.clear()
    done, lines = run(LOOP, replay, engine)
    assert done.state.current == State.SUCCESS
    assert engine.ran == []  # the loop was copied, only `after` ran
    assert "after saw forty-one" in [line.message for line in lines.lines]
    with pytest.raises(NotFoundError):
        plan_replay(original, spec, "no-such-run")
