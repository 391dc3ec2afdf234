"""What the web UI's pages show: the task tree and its Gantt bars, YAML lines, problems, files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from executor.flow.model import Flow
from executor.model import Execution, State, StateHistory, TaskRun
from executor.server.ui import views

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def _history(start: float, end: float | None, final: State = State.SUCCESS) -> StateHistory:
    history = [(State.CREATED, T0 + timedelta(seconds=start))]
    if end is None:
        return StateHistory(State.RUNNING, [*history, (State.RUNNING, history[0][1])])
    return StateHistory(final, [*history, (final, T0 + timedelta(seconds=end))])


def _run(task_id: str, start: float, end: float | None, parent: str | None = None) -> TaskRun:
    return TaskRun(
        task_id=task_id,
        task_type="io.kestra.plugin.scripts.shell.Commands",
        parent_task_run_id=parent,
        id=f"run-{task_id}",
        state=_history(start, end),
    )


def test_rows_nest_children_under_their_parent_and_place_bars_on_the_timeline() -> None:
    wd = _run("wd", 1, 9)
    wd.task_type = "io.kestra.plugin.core.flow.WorkingDirectory"
    execution = Execution(
        namespace="n",
        flow_id="f",
        state=_history(0, 10),
        task_runs=[_run("first", 0, 1), wd, _run("a", 2, 5, wd.id), _run("b", 5, 9, wd.id)],
    )

    rows = views.task_rows(execution)

    assert [(r.run.task_id, r.depth, r.has_children) for r in rows] == [
        ("first", 0, False),
        ("wd", 0, True),
        ("a", 1, False),
        ("b", 1, False),
    ]
    assert [(r.offset_percent, r.width_percent) for r in rows] == [
        (0.0, 10.0),
        (10.0, 80.0),
        (20.0, 30.0),
        (50.0, 40.0),
    ]
    assert rows[1].kind == "WorkingDirectory"
    assert views.timeline_ticks(execution) == ["0.00s", "2.50s", "5.00s", "7.50s", "10.0s"]


def test_a_running_task_is_drawn_up_to_now_and_an_instant_one_stays_visible() -> None:
    execution = Execution(
        namespace="n",
        flow_id="f",
        state=_history(0, None),
        task_runs=[_run("instant", 0, 0), _run("running", 1, None)],
    )

    rows = views.task_rows(execution, now=T0 + timedelta(seconds=4))

    assert rows[0].width_percent == views.MIN_BAR_PERCENT
    assert (rows[1].offset_percent, rows[1].width_percent, rows[1].seconds) == (25.0, 75.0, 3.0)


def test_a_child_whose_parent_is_unknown_is_shown_at_the_top_level() -> None:
    execution = Execution(
        namespace="n", flow_id="f", state=_history(0, 1), task_runs=[_run("x", 0, 1, "gone")]
    )

    assert [(r.run.task_id, r.depth) for r in views.task_rows(execution)] == [("x", 0)]


def test_durations_read_well() -> None:
    assert [views.duration_text(s) for s in (None, 0.004, 12.34, 65, 7322)] == [
        "",
        "0.00s",
        "12.3s",
        "1m 05s",
        "2h 02m",
    ]


def test_highlighted_yaml_escapes_markup_and_marks_keys_strings_templates_comments() -> None:
    source = 'id: x  # the id\nmessage: "<script>alert(1)</script> {{ inputs.a }}"\n- <b>: 1\n'

    lines = [str(line) for line in views.highlight_yaml(source)]

    assert lines[0] == ('<span class="y-k">id</span>: x  <span class="y-c"># the id</span>')
    assert "<script>" not in "".join(lines)
    assert lines[1] == (
        '<span class="y-k">message</span>: <span class="y-s">'
        "&#34;&lt;script&gt;alert(1)&lt;/script&gt; {{ inputs.a }}&#34;</span>"
    )
    assert lines[2] == '- <span class="y-k">&lt;b&gt;</span>: 1'
    assert len(lines) == 3


def test_problems_are_read_off_the_loaders_located_lines() -> None:
    message = (
        "2 problem(s) in the flow:\n"
        "  flow:4:5: tasks[0].message (task 'x'): missing required property 'message'\n"
        "  flow:6:5: tasks[0].mesage (task 'x'): unknown property 'mesage'"
    )

    problems = views.problems_of(message)

    assert [(p.line, p.message[:15]) for p in problems] == [
        (4, "tasks[0].messag"),
        (6, "tasks[0].mesage"),
    ]
    assert views.problems_of("the flow is empty") == [views.Problem(None, "the flow is empty")]


def test_output_files_are_found_anywhere_in_outputs() -> None:
    outputs = {
        "outputFiles": {"out.txt": "kestra:///n/f/executions/e/tasks/t/1/out.txt"},
        "uri": "kestra:///n/f/executions/e/x.csv",
        "other": ["text", {"deep": "kestra:///n/f/executions/e/y.bin"}],
        "not": "s3://bucket/key",
    }

    found = views.output_files(outputs)

    assert [(f.name, f.uri.rsplit("/", 1)[-1]) for f in found] == [
        ("out.txt", "out.txt"),
        ("uri", "x.csv"),
        ("deep", "y.bin"),
    ]


def test_inputs_become_form_controls_with_their_defaults_as_text() -> None:
    flow = Flow.model_validate(
        {
            "id": "f",
            "namespace": "n",
            "inputs": [
                {"id": "name", "type": "STRING", "defaults": "bob"},
                {"id": "n", "type": "INT", "defaults": 3},
                {"id": "on", "type": "BOOLEAN", "defaults": True},
                {"id": "pick", "type": "SELECT", "values": ["a", "b"]},
                {"id": "data", "type": "FILE"},
                {"id": "cfg", "type": "JSON", "defaults": {"k": 1}},
            ],
            "tasks": [{"id": "t", "type": "io.kestra.plugin.core.log.Log", "message": "m"}],
        }
    )

    fields = views.input_fields(list(flow.inputs))

    assert [(f.input.id, f.control, f.default) for f in fields] == [
        ("name", "text", "bob"),
        ("n", "number", "3"),
        ("on", "boolean", "true"),
        ("pick", "select", ""),
        ("data", "file", ""),
        ("cfg", "textarea", '{"k": 1}'),
    ]


PENDING_FLOW = """
id: f
namespace: n
tasks:
  - id: first
    type: io.kestra.plugin.core.log.Log
    message: a
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - {id: a, type: io.kestra.plugin.scripts.shell.Commands, commands: [ls]}
      - {id: b, type: io.kestra.plugin.scripts.shell.Commands, commands: [ls]}
  - id: check
    type: io.kestra.plugin.core.flow.If
    condition: "{{ true }}"
    then:
      - {id: maybe, type: io.kestra.plugin.core.log.Log, message: m}
  - id: off
    type: io.kestra.plugin.core.log.Log
    message: x
    disabled: true
errors:
  - {id: on_error, type: io.kestra.plugin.core.log.Log, message: e}
"""


def test_the_tasks_still_to_come_are_placed_where_they_will_run() -> None:
    """While the WorkingDirectory runs its first child, its second comes under it and the
    later top-level task after everything; branches that may not run, disabled tasks and
    errors are not announced; an ended execution announces nothing."""
    from executor.flow.loader import load_flow_text

    flow = load_flow_text(PENDING_FLOW, Path("f.yaml")).flow
    wd = _run("wd", 1, None)
    execution = Execution(
        namespace="n",
        flow_id="f",
        state=_history(0, None),
        task_runs=[_run("first", 0, 1), wd, _run("a", 2, None, wd.id)],
    )
    rows = views.with_pending(views.task_rows(execution), execution, flow)
    assert [(r.pending, r.task_id if r.pending else r.run.task_id, r.depth) for r in rows] == [
        (False, "first", 0),
        (False, "wd", 0),
        (False, "a", 1),
        (True, "b", 1),
        (True, "check", 0),
    ]
    execution.state = _history(0, 10)
    assert not [
        r for r in views.with_pending(views.task_rows(execution), execution, flow) if r.pending
    ]


def test_a_failure_names_the_innermost_failed_runs_and_their_stderr() -> None:
    """A failed child inside a failed WorkingDirectory: the child is named, with its reason and
    the end of its stderr, colours taken out; a success has no failure."""
    wd = _run("wd", 1, 9)
    wd.state = _history(1, 9, State.FAILED)
    child = _run("load", 2, 5, wd.id)
    child.state = _history(2, 5, State.FAILED)
    child.reason = "exit code 3"
    child.stderr_tail = ["\x1b[31mpsql: refused\x1b[0m"]
    execution = Execution(
        namespace="n", flow_id="f", state=_history(0, 10, State.FAILED), task_runs=[wd, child]
    )
    failure = views.failure_of(execution)
    assert failure is not None
    assert failure.headline == "task 'load' failed"
    assert [(f.label, f.run.reason, f.stderr) for f in failure.runs] == [
        ("load", "exit code 3", ["psql: refused"])
    ]
    execution.reason = "the engine went away"
    assert views.failure_of(execution).headline == "the engine went away"  # type: ignore[union-attr]
    execution.state = _history(0, 10)
    assert views.failure_of(execution) is None
