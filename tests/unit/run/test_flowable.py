"""Flowable tasks on the fake engine: branching, loops, fan-out and failure, Kestra's rules."""

from __future__ import annotations

import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from executor.engine.api import ExecRequest, Stream
from executor.engine.fake import FakeBackend, echo_behaviour
from executor.errors import FlowValidationError
from executor.flow.loader import load_flow_text
from executor.flow.secrets import Secrets
from executor.images import ResolvedImage
from executor.model import Execution, LogLine, State, TaskRun
from executor.run.context import RunContext
from executor.run.runner import run_execution
from executor.settings import Settings

SH = "io.kestra.plugin.scripts.shell.Commands"
LOG = "io.kestra.plugin.core.log.Log"
RET = "io.kestra.plugin.core.debug.Return"
CORE = "io.kestra.plugin.core.flow"


class Lines:
    def __init__(self) -> None:
        self.lines: list[LogLine] = []

    def execution_changed(self, execution: Execution) -> None:
        pass

    def task_changed(self, execution: Execution, task_run: TaskRun) -> None:
        pass

    def log(self, line: LogLine) -> None:
        self.lines.append(line)


def flow(tasks: str, extra: str = "") -> str:
    return (
        "id: f\nnamespace: t\n" + extra + "tasks:\n" + textwrap.indent(textwrap.dedent(tasks), "  ")
    )


def run(
    text: str, engine: FakeBackend | None = None, hooks: Any = None
) -> tuple[Execution, FakeBackend, Lines]:
    engine = engine or FakeBackend()
    loaded = load_flow_text(text, Path("flow.yaml"))
    lines = Lines()
    execution = Execution(loaded.flow.namespace, loaded.flow.id)
    ctx = RunContext(
        loaded=loaded,
        execution=execution,
        inputs={},
        settings=Settings(home=Path("/nonexistent"), kill_grace_seconds=0.1),
        backend=engine,
        resolve_image=lambda ref, policy, auth=None: ResolvedImage(ref, ref, f"id-of-{ref}"),
        secrets=Secrets({}),
        listeners=[lines],
        hooks=hooks,
        sleep=lambda s: None,
    )
    run_execution(ctx)
    return execution, engine, lines


def states(execution: Execution) -> dict[str, str]:
    return {t.task_id: t.state.current.value for t in execution.task_runs}


def runs(execution: Execution, task_id: str) -> list[TaskRun]:
    return [t for t in execution.task_runs if t.task_id == task_id]


def test_parallel_children_run_at_once_in_one_container() -> None:
    """Three script children of a Parallel in a WorkingDirectory are three concurrent execs."""
    barrier = threading.Barrier(3, timeout=5)

    def together(request: ExecRequest) -> tuple[list[tuple[Stream, str]], int]:
        if "together" in request.argv[-1]:
            barrier.wait()  # breaks (exit 1) unless all three run at the same time
        return echo_behaviour(request)

    execution, engine, _ = run(
        flow(f"""
        - id: wd
          type: {CORE}.WorkingDirectory
          tasks:
            - id: fan
              type: {CORE}.Parallel
              tasks:
                - {{id: a, type: {SH}, commands: ["echo together"]}}
                - {{id: b, type: {SH}, commands: ["echo together"]}}
                - {{id: c, type: {SH}, commands: ["echo together"]}}
            - {{id: after, type: {SH}, commands: ["echo after"]}}
        """),
        FakeBackend(behaviour=together),
    )
    assert execution.state.current == State.SUCCESS, states(execution)
    assert {c for c, _ in engine.execs} == {engine.created[0]}
    assert len(engine.created) == 1
    fan = runs(execution, "fan")[0]
    assert all(runs(execution, x)[0].parent_task_run_id == fan.id for x in "abc")
    assert engine.execs[-1][1].argv[-1].endswith("echo after")


def _blocking(fail_on: str) -> Any:
    """A behaviour: the task named ``fail_on`` exits 1, ``block`` waits until killed."""

    def behaviour(request: ExecRequest) -> tuple[list[tuple[Stream, str]], int]:
        script = request.argv[-1]
        if "block" in script:
            engine = behaviour.engine  # type: ignore[attr-defined]
            killed = engine.kill_event(request.token).wait(timeout=10)
            return [], 143 if killed else 0
        if fail_on in script:
            return [(Stream.STDERR, "boom")], 1
        return echo_behaviour(request)

    return behaviour


def _engine(fail_on: str) -> FakeBackend:
    behaviour = _blocking(fail_on)
    engine = FakeBackend(behaviour=behaviour)
    behaviour.engine = engine
    return engine


@pytest.mark.parametrize(
    ("policy", "sibling", "final"),
    [("FAIL", "FAILED", "FAILED"), ("CANCEL", "CANCELLED", "FAILED")],
)
def test_a_failed_branch_stops_its_running_siblings(policy: str, sibling: str, final: str) -> None:
    """onChildFailure FAIL/CANCEL: the running sibling is killed, the unstarted never created."""
    engine = _engine("fail-now")
    execution, engine, _ = run(
        flow(f"""
        - id: wd
          type: {CORE}.WorkingDirectory
          tasks:
            - id: fan
              type: {CORE}.Parallel
              concurrent: 2
              onChildFailure: {policy}
              tasks:
                - {{id: slow, type: {SH}, commands: ["block"]}}
                - {{id: bad, type: {SH}, commands: ["fail-now"]}}
                - {{id: never, type: {SH}, commands: ["echo never"]}}
        """),
        engine,
    )
    got = states(execution)
    assert got["bad"] == "FAILED"
    assert got["slow"] == sibling
    assert "never" not in got
    assert got["fan"] == final and execution.state.current == State.FAILED
    assert any(token.startswith(runs(execution, "slow")[0].id) for token in engine.killed)


def test_continue_lets_siblings_finish() -> None:
    """onChildFailure CONTINUE: the others run to their end; the Parallel still fails."""
    execution, _, _ = run(
        flow(f"""
        - id: fan
          type: {CORE}.Parallel
          onChildFailure: CONTINUE
          concurrent: 1
          tasks:
            - {{id: bad, type: {SH}, commands: ["exit 1"]}}
            - {{id: good, type: {SH}, commands: ["echo ok"]}}
        """)
    )
    assert states(execution) == {"fan": "FAILED", "bad": "FAILED", "good": "SUCCESS"}


def test_errors_and_finally_start_after_every_branch_ended() -> None:
    """A Parallel's errors run once its branches have all ended, and never rescue it."""
    order: list[str] = []
    lock = threading.Lock()

    def behaviour(request: ExecRequest) -> tuple[list[tuple[Stream, str]], int]:
        script = request.argv[-1]
        with lock:
            order.append(script.rsplit("\n", 1)[-1])
        return echo_behaviour(request)

    execution, _, _ = run(
        flow(f"""
        - id: fan
          type: {CORE}.Parallel
          onChildFailure: CONTINUE
          tasks:
            - {{id: bad, type: {SH}, commands: ["exit 1"]}}
            - {{id: good, type: {SH}, commands: ["echo good"]}}
          errors:
            - {{id: handler, type: {SH}, commands: ["echo handled"]}}
          finally:
            - {{id: closing, type: {SH}, commands: ["echo closing"]}}
        """),
        FakeBackend(behaviour=behaviour),
    )
    assert states(execution)["fan"] == "FAILED"
    assert states(execution)["handler"] == "SUCCESS"
    assert execution.state.current == State.FAILED
    assert order[-2:] == ["echo handled", "echo closing"]


@pytest.mark.parametrize(
    ("condition", "branch"),
    [
        ("False", "then"),
        ("no", "then"),
        ("0.0", "then"),
        ("0", "else"),
        ("-0", "else"),
        ("false", "else"),
        ("", "else"),
        ("{{ 1 == 2 }}", "else"),
        ("{{ 1 == 1 }}", "then"),
    ],
)
def test_if_follows_kestra_truthiness(condition: str, branch: str) -> None:
    """Only "false", "0", "-0", "" and null are false; the result is kept as an output."""
    execution, _, _ = run(
        flow(f"""
        - id: check
          type: {CORE}.If
          condition: "{condition}"
          then: [{{id: yes, type: {RET}, format: "then"}}]
          else: [{{id: no, type: {RET}, format: "else"}}]
        """)
    )
    ran = "yes" if branch == "then" else "no"
    assert set(states(execution)) == {"check", ran}
    assert runs(execution, "check")[0].outputs == {"evaluationResult": branch == "then"}


def test_switch_exact_match_defaults_and_no_match() -> None:
    """Switch: the exact case; defaults when none matches; FAILED when there are no defaults."""
    execution, _, _ = run(
        flow(f"""
        - id: pick
          type: {CORE}.Switch
          value: "B"
          cases:
            b: [{{id: lower, type: {RET}, format: x}}]
            B: [{{id: upper, type: {RET}, format: x}}]
        - id: other
          type: {CORE}.Switch
          value: "{{{{ 'z' }}}}"
          cases:
            a: [{{id: a1, type: {RET}, format: x}}]
          defaults: [{{id: fallback, type: {RET}, format: x}}]
        - id: none
          type: {CORE}.Switch
          value: "q"
          cases:
            a: [{{id: a2, type: {RET}, format: x}}]
        """)
    )
    got = states(execution)
    assert got["upper"] == "SUCCESS" and "lower" not in got
    assert got["fallback"] == "SUCCESS" and "a1" not in got
    assert runs(execution, "other")[0].outputs == {"value": "z", "defaults": True}
    assert got["none"] == "FAILED" and execution.state.current == State.FAILED


def test_for_each_values_iteration_and_outputs_by_value() -> None:
    """ForEach: values de-duplicated, each child has value and iteration; outputs keyed by value."""
    execution, _, _ = run(
        flow(f"""
        - id: each
          type: {CORE}.ForEach
          values: ["a", "b", "a", 3, {{"k": "v"}}]
          tasks:
            - id: ret
              type: {RET}
              format: "{{{{ taskrun.value }}}}#{{{{ taskrun.iteration }}}}"
        - id: pick
          type: {RET}
          format: "{{{{ outputs.ret['b'].value }}}}|{{{{ outputs.ret['3'].value }}}}"
        """)
    )
    rets = runs(execution, "ret")
    assert [r.value for r in rets] == ["a", "b", "3", '{"k":"v"}']
    assert [r.iteration for r in rets] == [0, 1, 2, 3]
    assert runs(execution, "pick")[0].outputs["value"] == "b#1|3#2"
    each = runs(execution, "each")[0]
    assert all(r.parent_task_run_id == each.id for r in rets)
    assert rets[0].to_json()["value"] == "a" and rets[0].to_json()["parentTaskRunId"] == each.id


def test_for_each_concurrency_limit_runs_values_at_once_tasks_in_order() -> None:
    """concurrencyLimit 2: two values at once; the tasks of one value stay in order."""
    barrier = threading.Barrier(2, timeout=5)
    seen: list[str] = []
    lock = threading.Lock()

    def behaviour(request: ExecRequest) -> tuple[list[tuple[Stream, str]], int]:
        line = request.argv[-1].rsplit("\n", 1)[-1]
        if line.startswith("echo first"):
            barrier.wait()
        with lock:
            seen.append(line)
        return echo_behaviour(request)

    execution, _, _ = run(
        flow(f"""
        - id: wd
          type: {CORE}.WorkingDirectory
          tasks:
            - id: each
              type: {CORE}.ForEach
              values: '["x", "y"]'
              concurrencyLimit: 2
              tasks:
                - {{id: first, type: {SH}, commands: ["echo first {{{{ taskrun.value }}}}"]}}
                - {{id: second, type: {SH}, commands: ["echo second {{{{ taskrun.value }}}}"]}}
        """),
        FakeBackend(behaviour=behaviour),
    )
    assert execution.state.current == State.SUCCESS, states(execution)
    for value in "xy":
        assert seen.index(f"echo first {value}") < seen.index(f"echo second {value}")


def test_nested_loops_key_outputs_outermost_first_and_see_parents() -> None:
    """In ForEach > ForEach > t: outputs.t[outer][inner]; parent is the inner loop's value."""
    execution, _, _ = run(
        flow(f"""
        - id: outer
          type: {CORE}.ForEach
          values: ["o1", "o2"]
          tasks:
            - id: inner
              type: {CORE}.ForEach
              values: ["i1"]
              tasks:
                - id: t
                  type: {RET}
                  format: "{{{{ parents[0].taskrun.value }}}}/{{{{ taskrun.value }}}}"
                - id: cur
                  type: {RET}
                  format: "{{{{ currentEachOutput(outputs.t).value }}}}"
        - id: read
          type: {RET}
          format: "{{{{ outputs.t.o2.i1.value }}}}"
        """)
    )
    assert execution.state.current == State.SUCCESS, states(execution)
    assert runs(execution, "read")[0].outputs["value"] == "o2/i1"
    assert [r.outputs["value"] for r in runs(execution, "cur")] == ["o1/i1", "o2/i1"]


def test_dag_runs_in_dependency_order() -> None:
    """A Dag task starts only after every task it depends on has ended."""
    order: list[str] = []

    def behaviour(request: ExecRequest) -> tuple[list[tuple[Stream, str]], int]:
        order.append(request.argv[-1].rsplit("\n", 1)[-1])
        return echo_behaviour(request)

    execution, _, _ = run(
        flow(f"""
        - id: dag
          type: {CORE}.Dag
          tasks:
            - task: {{id: last, type: {SH}, commands: ["echo last"]}}
              dependsOn: [mid]
            - task: {{id: mid, type: {SH}, commands: ["echo mid"]}}
              dependsOn: [first]
            - task: {{id: first, type: {SH}, commands: ["echo first"]}}
        """),
        FakeBackend(behaviour=behaviour),
    )
    assert execution.state.current == State.SUCCESS
    assert order == ["echo first", "echo mid", "echo last"]


def test_allow_failure_warns_and_errors_never_rescue() -> None:
    """AllowFailure ends WARNING; a Sequential with successful errors still ends FAILED."""
    execution, _, _ = run(
        flow(f"""
        - id: tolerant
          type: {CORE}.AllowFailure
          tasks:
            - {{id: bad, type: io.kestra.plugin.core.execution.Fail}}
            - {{id: skipped, type: {RET}, format: x}}
        - id: seq
          type: {CORE}.Sequential
          tasks:
            - {{id: bad2, type: io.kestra.plugin.core.execution.Fail, errorMessage: nope}}
          errors:
            - {{id: rescue, type: {RET}, format: x}}
        """)
    )
    got = states(execution)
    assert got["bad"] == "FAILED" and "skipped" not in got
    assert got["tolerant"] == "WARNING"
    assert got["rescue"] == "SUCCESS" and got["seq"] == "FAILED"
    assert execution.state.current == State.FAILED
    assert runs(execution, "bad2")[0].reason == "nope"


def test_fail_condition() -> None:
    """Fail with a false condition succeeds; with a true one it fails the flow."""
    execution, _, _ = run(
        flow("""
        - {id: no, type: io.kestra.plugin.core.execution.Fail, condition: "{{ 1 > 2 }}"}
        - {id: yes, type: io.kestra.core.tasks.executions.Fail, condition: "{{ 2 > 1 }}"}
        """)
    )
    assert states(execution) == {"no": "SUCCESS", "yes": "FAILED"}


def test_each_sequential_and_each_parallel() -> None:
    """The deprecated Each tasks: every (value, task) pair, with values on the children."""
    execution, _, _ = run(
        flow(f"""
        - id: seq
          type: io.kestra.core.tasks.flows.EachSequential
          value: ["1", "2"]
          tasks: [{{id: s, type: {RET}, format: "{{{{ taskrun.value }}}}"}}]
        - id: par
          type: io.kestra.core.tasks.flows.EachParallel
          value: '["a", "b"]'
          tasks:
            - {{id: p1, type: {RET}, format: "{{{{ taskrun.value }}}}"}}
            - {{id: p2, type: {RET}, format: "{{{{ taskrun.value }}}}"}}
        """)
    )
    assert [r.outputs["value"] for r in runs(execution, "s")] == ["1", "2"]
    assert sorted(r.value for r in runs(execution, "p1") + runs(execution, "p2")) == [
        "a",
        "a",
        "b",
        "b",
    ]


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        (
            f"""
            - id: dag
              type: {CORE}.Dag
              tasks:
                - task: {{id: a, type: {RET}, format: x}}
                  dependsOn: [ghost]
            """,
            "Not existing task id in dependency: ghost",
        ),
        (
            f"""
            - id: dag
              type: {CORE}.Dag
              tasks:
                - task: {{id: a, type: {RET}, format: x}}
                  dependsOn: [b]
                - task: {{id: b, type: {RET}, format: x}}
                  dependsOn: [a]
            """,
            "Cyclic dependency detected: a -> b -> a",
        ),
        (
            f"""
            - id: each
              type: {CORE}.ForEach
              values: ["a", null]
              tasks: [{{id: t, type: {RET}, format: x}}]
            """,
            "null values",
        ),
        (
            f"""
            - id: each
              type: {CORE}.ForEach
              values: {{"a": 1}}
              tasks: [{{id: t, type: {RET}, format: x}}]
            """,
            "values must be a list",
        ),
        (
            f"""
            - id: each
              type: {CORE}.ForEach
              values: ["a"]
              concurrencyLimit: -1
              tasks: [{{id: t, type: {RET}, format: x}}]
            """,
            "concurrencyLimit",
        ),
        (
            f"""
            - id: sw
              type: {CORE}.Switch
              value: x
            """,
            "No task defined",
        ),
        (
            f"""
            - id: wd
              type: {CORE}.WorkingDirectory
              tasks:
                - {{id: wait, type: {CORE}.Pause, pauseDuration: PT1S}}
            """,
            "cannot run inside the WorkingDirectory 'wd'",
        ),
    ],
)
def test_bad_flowables_are_refused_with_a_location(tasks: str, message: str) -> None:
    """Each mistake is a located validation problem, before anything runs."""
    with pytest.raises(FlowValidationError) as info:
        load_flow_text(flow(tasks), Path("flow.yaml"))
    text = str(info.value)
    assert message in text
    assert "flow.yaml:" in text


def test_pause_with_a_duration_then_goes_on() -> None:
    """A Pause with pauseDuration waits (here: a fake clock) and then the flow goes on."""
    execution, _, _ = run(
        flow(f"""
        - {{id: wait, type: {CORE}.Pause, pauseDuration: PT0.1S}}
        - {{id: warned, type: {CORE}.Pause, delay: PT0.1S, behavior: WARN}}
        - {{id: after, type: {RET}, format: x}}
        """)
    )
    got = states(execution)
    assert got == {"wait": "SUCCESS", "warned": "WARNING", "after": "SUCCESS"}
    history = [s for s, _ in runs(execution, "wait")[0].state.history]
    assert State.PAUSED in history


def test_references_follow_dag_order_and_subflow_outputs() -> None:
    """A Dag task may read what it depends on, declared later; outputs.call.outputs.x is fine."""
    load_flow_text(
        flow(f"""
        - id: dag
          type: {CORE}.Dag
          tasks:
            - task: {{id: late, type: {RET}, format: "{{{{ outputs.early.value }}}}"}}
              dependsOn: [early]
            - task: {{id: early, type: {RET}, format: x}}
        - id: call
          type: {CORE}.Subflow
          namespace: t
          flowId: other
        - id: use
          type: {RET}
          format: "{{{{ outputs.call.outputs.message }}}}"
        """),
        Path("flow.yaml"),
    )
    with pytest.raises(FlowValidationError, match="has not run yet"):
        load_flow_text(
            flow(f"""
            - id: dag
              type: {CORE}.Dag
              tasks:
                - task: {{id: late, type: {RET}, format: "{{{{ outputs.early.value }}}}"}}
                - task: {{id: early, type: {RET}, format: x}}
            """),
            Path("flow.yaml"),
        )


class Resumer:
    """Hooks that answer a manual pause: with these inputs, or never (None: a timeout)."""

    def __init__(self, answers: list[dict[str, str] | None]) -> None:
        self.answers = answers
        self.paused_states: list[State] = []

    def wait_for_resume(
        self, execution: Execution, run: TaskRun, cancel: Any, timeout: float | None
    ) -> dict[str, str] | None:
        self.paused_states.append(execution.state.current)
        return self.answers.pop(0)

    def run_subflow(self, request: Any) -> Execution:
        raise AssertionError("no subflow here")


PAUSE_FLOW = f"""
- id: gate
  type: {CORE}.Pause
  timeout: PT1H
  onResume:
    - {{id: n, type: INT}}
- id: after
  type: {RET}
  format: "{{{{ outputs.gate.onResume.n + 1 }}}}"
"""


def test_manual_pause_is_paused_then_checks_resume_inputs() -> None:
    """The execution is PAUSED while waiting; a bad input keeps it paused, a good one resumes."""
    hooks = Resumer([{"n": "not a number"}, {"n": "41"}])
    execution, _, lines = run(flow(PAUSE_FLOW), hooks=hooks)
    assert hooks.paused_states == [State.PAUSED, State.PAUSED]
    assert states(execution) == {"gate": "SUCCESS", "after": "SUCCESS"}
    assert runs(execution, "after")[0].outputs["value"] == "42"
    assert any("resume refused" in line.message for line in lines.lines)


def test_manual_pause_not_resumed_in_time_fails() -> None:
    """A Pause whose timeout passes without a resume is FAILED, as in Kestra."""
    execution, _, _ = run(flow(PAUSE_FLOW), hooks=Resumer([None]))
    assert states(execution) == {"gate": "FAILED"}
    assert execution.state.current == State.FAILED
    assert "timeout" in (runs(execution, "gate")[0].reason or "")
