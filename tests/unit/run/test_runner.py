"""The sequential runner's semantics, driven through a fake engine (no Docker)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from executor.engine.api import ExecRequest, Stream
from executor.engine.fake import FakeBackend
from executor.flow.loader import load_flow_text
from executor.flow.secrets import Secrets
from executor.images import ResolvedImage
from executor.model import Execution, LogLine, State
from executor.run.context import RunContext
from executor.run.runner import run_execution
from executor.settings import Settings


class Lines:
    """Keeps log lines."""

    def __init__(self) -> None:
        self.lines: list[LogLine] = []

    def execution_changed(self, execution: Execution) -> None:
        pass

    def task_changed(self, execution: Execution, task_run: object) -> None:
        pass

    def log(self, line: LogLine) -> None:
        self.lines.append(line)


def run(
    text: str,
    engine: FakeBackend | None = None,
    inputs: dict[str, object] | None = None,
) -> tuple[Execution, FakeBackend, Lines]:
    engine = engine or FakeBackend()
    loaded = load_flow_text(textwrap.dedent(text), Path("flow.yaml"))
    lines = Lines()
    execution = Execution(loaded.flow.namespace, loaded.flow.id)
    ctx = RunContext(
        loaded=loaded,
        execution=execution,
        inputs=dict(inputs or {}),
        settings=Settings(home=Path("/nonexistent")),
        backend=engine,
        resolve_image=lambda ref, policy, auth=None: ResolvedImage(ref, ref, f"id-of-{ref}"),
        secrets=Secrets({}),
        listeners=[lines],
        sleep=lambda s: None,
    )
    run_execution(ctx)
    return execution, engine, lines


def states(execution: Execution) -> dict[str, str]:
    return {t.task_id: t.state.current.value for t in execution.task_runs}


def wd(children: str, extra: str = "") -> str:
    body = textwrap.indent(textwrap.dedent(children), " " * 6)
    return (
        "id: f\nnamespace: t\ntasks:\n  - id: wd\n"
        "    type: io.kestra.plugin.core.flow.WorkingDirectory\n" + extra + "    tasks:\n" + body
    )


SH = "io.kestra.plugin.scripts.shell.Commands"


def test_children_run_in_order_in_one_container() -> None:
    """Three children of one image make one container and three execs, in order."""
    execution, engine, _ = run(
        wd(f"""
        - id: a
          type: {SH}
          commands: ["echo 1"]
        - id: b
          type: {SH}
          commands: ["echo 2"]
        - id: c
          type: {SH}
          commands: ["echo 3"]
    """)
    )
    assert execution.state.current == State.SUCCESS
    assert len(engine.created) == 1
    assert [req.argv[-1].splitlines()[-1] for _, req in engine.execs] == [
        "echo 1",
        "echo 2",
        "echo 3",
    ]
    assert not engine.containers and not engine.volumes  # all removed


def test_first_failure_stops_the_rest_then_errors_and_finally() -> None:
    """After a failed child the rest are not started; errors then finally run."""
    execution, _, _ = run(
        wd(f"""
        - id: ok
          type: {SH}
          commands: ["echo fine"]
        - id: bad
          type: {SH}
          commands: ["exit 2"]
        - id: after
          type: {SH}
          commands: ["echo never"]
    """)
        + textwrap.dedent(f"""\
        errors:
          - id: handler
            type: {SH}
            commands: ["echo handled"]
        finally:
          - id: closing
            type: io.kestra.plugin.core.log.Log
            message: done
    """)
    )
    assert states(execution) == {
        "wd": "FAILED",
        "ok": "SUCCESS",
        "bad": "FAILED",
        "handler": "SUCCESS",
        "closing": "SUCCESS",
    }
    assert execution.state.current == State.FAILED


def test_allow_failure_gives_warning_and_goes_on() -> None:
    """allowFailure turns a failure into WARNING and the next child runs."""
    execution, _, _ = run(
        wd(f"""
        - id: tolerated
          type: {SH}
          allowFailure: true
          commands: ["exit 3"]
        - id: next
          type: {SH}
          commands: ["echo ok"]
    """)
    )
    assert states(execution) == {"wd": "WARNING", "tolerated": "WARNING", "next": "SUCCESS"}
    assert execution.state.current == State.WARNING


def test_stderr_warns_only_when_asked_and_allow_warning_clears_it() -> None:
    """Kestra 0.23+: exit 0 is SUCCESS whatever stderr says, unless warningOnStdErr: true."""
    execution, _, lines = run(
        wd(f"""
        - id: plain
          type: {SH}
          commands: ["echo oops >&2"]
        - id: noisy
          type: {SH}
          warningOnStdErr: true
          commands: ["echo oops >&2"]
        - id: quiet
          type: {SH}
          warningOnStdErr: false
          commands: ["echo oops >&2"]
        - id: allowed
          type: {SH}
          warningOnStdErr: true
          allowWarning: true
          commands: ["echo oops >&2"]
    """)
    )
    assert states(execution)["plain"] == "SUCCESS"
    assert states(execution)["noisy"] == "WARNING"
    assert states(execution)["quiet"] == "SUCCESS"
    assert states(execution)["allowed"] == "SUCCESS"
    stderr = [line for line in lines.lines if line.stream == "stderr"]
    assert len(stderr) == 4 and all(line.level == "ERROR" for line in stderr)


def test_run_if_and_disabled_skip() -> None:
    """A false runIf and disabled: true give SKIPPED without an exec."""
    execution, engine, _ = run(
        wd(f"""
        - id: cond
          type: {SH}
          runIf: "{{{{ inputs.go }}}}"
          commands: ["echo no"]
        - id: off
          type: {SH}
          disabled: true
          commands: ["echo no"]
        - id: on
          type: {SH}
          runIf: "{{{{ not inputs.go }}}}"
          commands: ["echo yes"]
    """).replace(
            "tasks:\n  - id: wd", "inputs:\n  - id: go\n    type: BOOLEAN\ntasks:\n  - id: wd"
        ),
        inputs={"go": False},
    )
    assert states(execution) == {
        "wd": "SUCCESS",
        "cond": "SKIPPED",
        "off": "SKIPPED",
        "on": "SUCCESS",
    }
    assert len(engine.execs) == 1


def test_retry_reruns_in_the_same_container_and_records_attempts() -> None:
    """A constant retry re-runs the failing child until it passes; attempts are recorded."""
    calls: list[str] = []

    def flaky(request: ExecRequest) -> tuple[list[tuple[Stream, str]], int]:
        calls.append(request.token)
        return [], 1 if len(calls) < 3 else 0

    execution, engine, _ = run(
        wd(f"""
        - id: flaky
          type: {SH}
          retry:
            type: constant
            interval: PT0.1S
            maxAttempt: 5
            warningOnRetry: true
          commands: ["true"]
    """),
        FakeBackend(behaviour=flaky),
    )
    run_ = execution.task_run("flaky")
    assert [a.state.current.value for a in run_.attempts] == ["FAILED", "FAILED", "SUCCESS"]
    assert run_.state.current == State.WARNING  # warningOnRetry
    assert len({cid for cid, _ in engine.execs}) == 1
    assert len(set(calls)) == 3  # each attempt has its own record token


def test_retry_stops_at_max_attempt() -> None:
    """An always-failing child is tried maxAttempt times, then FAILED."""
    execution, _, _ = run(
        wd(f"""
        - id: never
          type: {SH}
          retry:
            type: exponential
            interval: PT0.01S
            maxInterval: PT0.1S
            maxAttempt: 3
          commands: ["exit 1"]
    """)
    )
    assert len(execution.task_run("never").attempts) == 3
    assert execution.task_run("never").state.current == State.FAILED


def test_protocol_lines_become_outputs_and_metrics() -> None:
    """::{"outputs":..}:: lines merge into outputs.vars; metrics are kept; later tasks see them."""

    def script(request: ExecRequest) -> tuple[list[tuple[Stream, str]], int]:
        if "rows" in request.argv[-1]:
            return [(Stream.STDOUT, "rows={{ done }}".replace("{{ done }}", "ok"))], 0
        return [
            (Stream.STDOUT, '::{"outputs": {"n": 3}}::'),
            (Stream.STDOUT, '::{"metrics": [{"name": "items", "type": "counter", "value": 3}]}::'),
            (Stream.STDOUT, "plain line"),
        ], 0

    execution, engine, lines = run(
        wd(f"""
        - id: produce
          type: {SH}
          commands: ["produce"]
        - id: consume
          type: {SH}
          commands: ["echo rows={{{{ outputs.produce.vars.n }}}}"]
    """),
        FakeBackend(behaviour=script),
    )
    produce = execution.task_run("produce")
    assert produce.outputs == {"vars": {"n": 3}}
    assert produce.metrics[0]["name"] == "items" and produce.metrics[0]["value"] == 3
    assert "echo rows=3" in engine.execs[1][1].argv[-1]
    assert "plain line" in [ln.message for ln in lines.lines]


def test_hostile_protocol_lines_are_warned_about_and_the_run_goes_on() -> None:
    """Too deep or lone-surrogate protocol lines give a WARN each; the task still succeeds."""
    hostile = [
        '::{"outputs":{"a":' + "[" * 5000 + "]" * 5000 + "}}::",
        '::{"outputs":{"a":"\\ud800"}}::',
    ]

    def script(request: ExecRequest) -> tuple[list[tuple[Stream, str]], int]:
        return [
            *((Stream.STDOUT, line) for line in hostile),
            (Stream.STDOUT, '::{"outputs":{"ok":1}}::'),
        ], 0

    execution, _, lines = run(
        wd(f"""
        - id: t
          type: {SH}
          commands: ["hostile"]
    """),
        FakeBackend(behaviour=script),
    )
    assert states(execution) == {"wd": "SUCCESS", "t": "SUCCESS"}
    assert execution.task_run("t").outputs == {"vars": {"ok": 1}}
    warnings = [ln.message for ln in lines.lines if ln.level.value == "WARN"]
    assert len(warnings) == 2
    assert all(w.startswith("ignored a malformed protocol line: ") for w in warnings)


def test_undefined_variable_fails_the_task_naming_the_expression() -> None:
    """An undefined name in a command fails that task with a message naming it."""
    execution, engine, lines = run(
        wd(f"""
        - id: broken
          type: {SH}
          commands: ["echo {{{{ vars.missing }}}}"]
    """)
    )
    assert execution.task_run("broken").state.current == State.FAILED
    assert any("missing" in ln.message for ln in lines.lines)
    assert not engine.execs


def test_host_tasks_return_and_output_values() -> None:
    """Return and OutputValues render on the host and feed later templates."""
    execution, _, lines = run("""
        id: f
        namespace: t
        variables:
          who: world
        tasks:
          - id: ret
            type: io.kestra.plugin.core.debug.Return
            format: "hello {{ vars.who }}"
          - id: vals
            type: io.kestra.plugin.core.output.OutputValues
            values:
              greeting: "{{ outputs.ret.value | upper }}"
          - id: say
            type: io.kestra.plugin.core.log.Log
            message: "{{ outputs.vals.values.greeting }}"
    """)
    assert execution.task_run("ret").outputs == {"value": "hello world"}
    assert "HELLO WORLD" in [ln.message for ln in lines.lines]


def test_flow_level_errors_and_finally() -> None:
    """A failing top-level task runs the flow's errors and finally."""
    execution, _, _ = run(f"""
        id: f
        namespace: t
        tasks:
          - id: bad
            type: {SH}
            commands: ["exit 1"]
          - id: skipped_after
            type: {SH}
            commands: ["echo no"]
        errors:
          - id: alert
            type: io.kestra.plugin.core.log.Log
            message: failed
        finally:
          - id: always
            type: io.kestra.plugin.core.log.Log
            message: bye
    """)
    assert states(execution) == {"bad": "FAILED", "alert": "SUCCESS", "always": "SUCCESS"}


def test_python_child_gets_unbuffered_output_and_kestra_module() -> None:
    """A python child runs with PYTHONUNBUFFERED=1 and the kestra module on PYTHONPATH."""
    _, engine, _ = run(
        wd("""
        - id: py
          type: io.kestra.plugin.scripts.python.Commands
          commands: ["python -V"]
    """)
    )
    env = engine.execs[0][1].env
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PYTHONPATH"].startswith("/.executor/python")


@pytest.mark.parametrize("fail_fast, expected", [(True, "set -e"), (False, "echo a")])
def test_fail_fast_prepends_set_e(fail_fast: bool, expected: str) -> None:
    """failFast (default true) makes the shell stop at the first failing command."""
    _, engine, _ = run(
        wd(f"""
        - id: x
          type: {SH}
          failFast: {str(fail_fast).lower()}
          commands: ["echo a"]
    """)
    )
    assert engine.execs[0][1].argv[-1].splitlines()[0] == expected


def test_an_engine_lost_mid_task_ends_the_execution_with_that_reason() -> None:
    """The engine stops answering under a task: no retry, no next child, no errors branch;
    the task, its attempt and the execution are FAILED naming the engine and the task."""
    from executor.errors import EngineLost

    def lose(request: ExecRequest) -> tuple[list[tuple[Stream, str]], int]:
        if "lost" in request.argv[-1]:
            raise EngineLost("unix:///e.sock", "connection refused")
        return [], 0

    flow = """
        id: f
        namespace: n
        tasks:
          - id: wd
            type: io.kestra.plugin.core.flow.WorkingDirectory
            tasks:
              - id: x
                type: io.kestra.plugin.scripts.shell.Commands
                retry: {type: constant, interval: PT1S, maxAttempt: 3}
                commands: ["echo lost"]
              - id: next
                type: io.kestra.plugin.scripts.shell.Commands
                commands: ["echo next"]
        errors:
          - id: on_error
            type: io.kestra.plugin.core.log.Log
            message: handled
    """
    engine = FakeBackend(behaviour=lose)
    seen: list[Execution] = []

    class Keep(Lines):
        def execution_changed(self, execution: Execution) -> None:
            seen.append(execution)

    loaded = load_flow_text(textwrap.dedent(flow), Path("flow.yaml"))
    ctx = RunContext(
        loaded=loaded,
        execution=Execution("n", "f"),
        inputs={},
        settings=Settings(home=Path("/nonexistent")),
        backend=engine,
        resolve_image=lambda ref, policy, auth=None: ResolvedImage(ref, ref, f"id-of-{ref}"),
        secrets=Secrets({}),
        listeners=[Keep()],
        sleep=lambda s: None,
    )
    with pytest.raises(EngineLost) as caught:
        run_execution(ctx)

    expected = "the Docker engine at unix:///e.sock stopped answering during task 'x'"
    assert str(caught.value) == f"{expected} (connection refused)"
    execution = seen[-1]
    assert execution.state.current == State.FAILED
    assert execution.reason == str(caught.value)
    runs = {t.task_id: t for t in execution.task_runs}
    assert set(runs) == {"wd", "x"}  # neither 'next' nor the errors branch ran
    assert runs["x"].state.current == State.FAILED and runs["wd"].state.current == State.FAILED
    assert [a.state.current for a in runs["x"].attempts] == [State.FAILED]
    assert runs["x"].reason == str(caught.value)
    assert len(engine.execs) == 1
    assert not engine.containers and not engine.volumes  # the workdir was still closed
