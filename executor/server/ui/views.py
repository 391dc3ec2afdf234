"""What the pages show, shaped from our records: the task tree with its Gantt bars, durations,
output-file links, flow inputs as form fields, YAML lines with their problems, workers.

Nothing here renders HTML except ``highlight_yaml``, which escapes every piece it wraps; the
templates escape everything else (Jinja autoescape).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from markupsafe import Markup, escape

from executor.flow.model import Flow, Input
from executor.flow.walk import walk
from executor.model import Execution, State, TaskRun
from executor.store.files.artifacts import SCHEME
from executor.store.workers import WorkerRow

# where a FlowError puts the line of a flow that has no file: "flow:LINE:COLUMN: message"
_LOCATED = re.compile(r"^\s*flow:(\d+):(\d+):\s*(.*)$")
MIN_BAR_PERCENT = 0.4


def duration_text(seconds: float | None) -> str:
    """``0.25s``, ``12.3s``, ``4m 05s``, ``2h 03m``; empty when unknown."""
    if seconds is None:
        return ""
    seconds = max(seconds, 0.0)
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def time_text(when: datetime | None) -> str:
    """A timestamp as ``2024-05-01 12:00:03`` (UTC)."""
    if when is None:
        return ""
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def pretty_json(value: Any) -> str:
    """A value as indented JSON text (escaped by the template like any text)."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def state_class(state: State) -> str:
    """The CSS class that colours a state."""
    return f"state-{state.value.lower()}"


def elapsed(start: datetime, end: datetime | None, now: datetime) -> float:
    return ((end or now) - start).total_seconds()


@dataclass(frozen=True)
class TaskRow:
    """One task run as a row of the tree, with its bar on the execution's timeline."""

    run: TaskRun
    depth: int
    has_children: bool
    seconds: float
    offset_percent: float
    width_percent: float
    pending = False

    @property
    def label(self) -> str:
        if self.run.value is None:
            return self.run.task_id
        return f"{self.run.task_id} [{self.run.value}]"

    @property
    def kind(self) -> str:
        """The short type name (``Commands``, ``WorkingDirectory``)."""
        return self.run.task_type.rsplit(".", 1)[-1]


def task_rows(execution: Execution, now: datetime | None = None) -> list[TaskRow]:
    """The task runs depth-first (children under their ``parent_task_run_id``), in run order.

    Bars are placed relative to the execution's start, as percentages of its whole duration
    (so far, for one still running).
    """
    now = now or datetime.now(UTC)
    start = execution.state.start
    total = max(elapsed(start, execution.state.end, now), 1e-3)
    known = {run.id for run in execution.task_runs}
    children: dict[str | None, list[TaskRun]] = {}
    for run in execution.task_runs:
        parent = run.parent_task_run_id if run.parent_task_run_id in known else None
        children.setdefault(parent, []).append(run)

    def walk(parent: str | None, depth: int) -> Iterator[TaskRow]:
        for run in children.get(parent, []):
            seconds = elapsed(run.state.start, run.state.end, now)
            offset = (run.state.start - start).total_seconds() / total * 100
            offset = min(max(offset, 0.0), 100.0)
            width = min(max(seconds / total * 100, MIN_BAR_PERCENT), 100.0 - offset)
            yield TaskRow(
                run=run,
                depth=depth,
                has_children=run.id in children,
                seconds=seconds,
                offset_percent=round(offset, 3),
                width_percent=round(max(width, 0.0), 3),
            )
            yield from walk(run.id, depth + 1)

    return list(walk(None, 0))


@dataclass(frozen=True)
class PendingRow:
    """A task of the flow that has not started yet: a grey row of the tree."""

    task_id: str
    task_type: str
    depth: int
    parent_run_id: str | None
    pending = True

    @property
    def kind(self) -> str:
        return self.task_type.rsplit(".", 1)[-1]


def with_pending(
    rows: list[TaskRow], execution: Execution, flow: Flow | None
) -> list[TaskRow | PendingRow]:
    """The tree with the tasks still to come: those of the flow's ``tasks`` (at any depth) that
    have not started, under a parent that runs once and is still running, in flow order.

    Branches that may never run (``errors``, ``finally``, an If's ``then``/``else``) and loop
    bodies (their parent runs once per value) are left out: the tree shows what will run.
    """
    shown: list[TaskRow | PendingRow] = list(rows)
    if flow is None or execution.state.current.terminal:
        return shown
    started = {row.run.task_id for row in rows}
    for visit in walk(flow):
        task = visit.task
        if visit.path[0] != "tasks" or visit.branch != "tasks" or task.id in started:
            continue
        if task.disabled or any(a.id not in started for a in visit.ancestors):
            continue
        if not visit.ancestors:
            shown.append(PendingRow(task.id, task.type, 0, None))
            continue
        parents = [
            r for r in shown if isinstance(r, TaskRow) and r.run.task_id == visit.ancestors[-1].id
        ]
        if len(parents) != 1 or parents[0].run.state.current.terminal:
            continue
        parent = parents[0]
        at = shown.index(parent) + 1
        while at < len(shown) and shown[at].depth > parent.depth:
            at += 1
        shown.insert(at, PendingRow(task.id, task.type, parent.depth + 1, parent.run.id))
    return shown


@dataclass(frozen=True)
class FailedRun:
    """A task run that failed, as the top of the execution page says it."""

    run: TaskRun
    label: str

    @property
    def stderr(self) -> list[str]:
        return [strip_ansi(line) for line in self.run.stderr_tail[-12:]]


@dataclass(frozen=True)
class Failure:
    """Why an execution ended badly: its own reason and the task runs where it started."""

    headline: str
    runs: list[FailedRun]


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def strip_ansi(text: str) -> str:
    """``text`` without terminal colour and cursor sequences."""
    return _ANSI.sub("", text)


def failure_of(execution: Execution) -> Failure | None:
    """The failure to show first: None unless the execution ended FAILED, KILLED or CANCELLED.

    The task runs named are the innermost failed ones (a failed WorkingDirectory is listed
    through the child that failed), in the order they ran.
    """
    state = execution.state.current
    if not (state.terminal and state.failed):
        return None
    bad = [r for r in execution.task_runs if r.state.current.failed]
    parents = {r.parent_task_run_id for r in bad}
    innermost = [r for r in bad if r.id not in parents]
    runs = [
        FailedRun(r, r.task_id if r.value is None else f"{r.task_id} [{r.value}]")
        for r in innermost
    ]
    if execution.reason:
        headline = strip_ansi(execution.reason)
    elif runs:
        first = runs[0]
        headline = f"task '{first.label}' {first.run.state.current.value.lower()}"
    else:
        headline = f"the execution ended {state.value}"
    return Failure(headline, runs)


@dataclass(frozen=True)
class MetricRow:
    """One metric a task run recorded."""

    task: str
    name: str
    kind: str
    value: Any
    tags: dict[str, Any]


def metric_rows(execution: Execution) -> list[MetricRow]:
    """Every metric of every task run, in run order."""
    found = []
    for run in execution.task_runs:
        label = run.task_id if run.value is None else f"{run.task_id} [{run.value}]"
        for metric in run.metrics:
            if isinstance(metric, dict) and "name" in metric:
                value = metric.get("value")
                if metric.get("type") == "timer" and isinstance(value, int | float):
                    value = duration_text(float(value))
                elif isinstance(value, float) and value.is_integer():
                    value = int(value)  # a counter of whole things reads as one
                found.append(
                    MetricRow(
                        label,
                        str(metric["name"]),
                        str(metric.get("type", "")),
                        value,
                        dict(metric.get("tags") or {}),
                    )
                )
    return found


def timeline_ticks(execution: Execution, now: datetime | None = None, count: int = 4) -> list[str]:
    """Labels of the Gantt axis: ``count + 1`` evenly spaced offsets from the start."""
    total = elapsed(execution.state.start, execution.state.end, now or datetime.now(UTC))
    return [duration_text(total * i / count) for i in range(count + 1)]


@dataclass(frozen=True)
class OutputFile:
    """A ``kestra:///`` URI found in outputs, with the name it is shown by."""

    name: str
    uri: str


def output_files(outputs: Any) -> list[OutputFile]:
    """Every ``kestra:///`` URI anywhere in an outputs value (nested dicts and lists)."""
    found: list[OutputFile] = []

    def walk(value: Any, name: str) -> None:
        if isinstance(value, str) and value.startswith(SCHEME + "/"):
            found.append(OutputFile(name or value.rsplit("/", 1)[-1], value))
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, str(key))
        elif isinstance(value, list):
            for item in value:
                walk(item, name)

    walk(outputs, "")
    return found


@dataclass(frozen=True)
class InputField:
    """One flow input as an HTML form control."""

    input: Input
    control: str  # text, password, number, checkbox-like select, select, multiselect, textarea...
    default: str

    @property
    def label(self) -> str:
        return self.input.displayName or self.input.id


_CONTROLS = {
    "STRING": "text",
    "EMAIL": "email",
    "URI": "url",
    "SECRET": "password",
    "INT": "number",
    "FLOAT": "number",
    "BOOLEAN": "boolean",
    "BOOL": "boolean",
    "SELECT": "select",
    "ENUM": "select",
    "MULTISELECT": "multiselect",
    "JSON": "textarea",
    "YAML": "textarea",
    "ARRAY": "textarea",
    "FILE": "file",
    "DATE": "date",
    "TIME": "time",
}


def input_fields(specs: list[Input]) -> list[InputField]:
    """Inputs (a flow's, a Pause's ``onResume``) as form controls, each with its default as
    text."""
    fields = []
    for item in specs:
        default = item.defaults
        if default is None:
            text = ""
        elif isinstance(default, bool):
            text = "true" if default else "false"
        elif isinstance(default, dict | list):
            text = json.dumps(default)
        else:
            text = str(default)
        fields.append(InputField(item, _CONTROLS.get(item.type, "text"), text))
    return fields


@dataclass(frozen=True)
class Problem:
    """One validation problem, on a line of the source when it names one."""

    line: int | None
    message: str


def problems_of(message: str) -> list[Problem]:
    """The located problems of a FlowError's text (``flow:4:5: ...`` lines)."""
    problems = []
    for text in message.splitlines():
        match = _LOCATED.match(text)
        if match:
            problems.append(Problem(int(match[1]), match[3]))
        elif text.strip() and not text.rstrip().endswith("problem(s) in the flow:"):
            problems.append(Problem(None, text.strip()))
    return problems


# ----- a tiny YAML highlighter: keys, comments, quoted strings, {{ expressions }}

_KEY = re.compile(r"^(\s*(?:-\s+)?)((?!-\s)[^\s#'\"{\[][^:#'\"]*?|\"[^\"]*\"|'[^']*')(:)(?=\s|$)")
_TOKEN = re.compile(r"(\{\{.*?\}\}|\{%.*?%\}|\"(?:[^\"\\]|\\.)*\"|'[^']*'|(?:^|(?<=\s))#.*$)")


def _value(text: str) -> Markup:
    out = Markup()
    last = 0
    for match in _TOKEN.finditer(text):
        out += escape(text[last : match.start()])
        token = match.group(0)
        kind = "c" if token.startswith("#") else "t" if token.startswith("{") else "s"
        out += Markup('<span class="y-{}">{}</span>').format(kind, token)
        last = match.end()
    return out + escape(text[last:])


def highlight_yaml(source: str) -> list[Markup]:
    """Each line of ``source`` as escaped HTML with spans for keys, strings, comments, templates."""
    lines = []
    for line in source.split("\n"):
        match = _KEY.match(line)
        if match and not line.lstrip().startswith("#"):
            html = (
                escape(match[1])
                + Markup('<span class="y-k">{}</span>').format(match[2])
                + escape(match[3])
                + _value(line[match.end() :])
            )
        else:
            html = _value(line)
        lines.append(html)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def trigger_kinds(flow: Flow) -> list[str]:
    """Short type names of the flow's triggers (``Schedule``, ``Webhook``)."""
    return [t.type.rsplit(".", 1)[-1] for t in flow.triggers or []]


@dataclass(frozen=True)
class WorkerView:
    """One worker as the workers page shows it."""

    name: str
    host: str
    engine_id: str
    queues: list[str]
    labels: list[str]
    slots: int
    running: list[str]
    started: datetime
    last_seen: datetime
    age: float
    alive: bool

    @property
    def busy(self) -> int:
        return len(self.running)

    @property
    def free(self) -> int:
        return max(self.slots - self.busy, 0)

    @property
    def slot_states(self) -> list[bool]:
        """One entry per slot: busy (``True``) first, then free."""
        return [i < self.busy for i in range(max(self.slots, self.busy))]


def worker_views(rows: list[WorkerRow], lapse: timedelta, now: datetime) -> list[WorkerView]:
    """Workers as last heard of: alive ones first, each with its heartbeat's age.

    A worker silent for longer than ``lapse`` is lost: the server already marked its runs
    FAILED, so what it last said it ran is history, shown as such.
    """
    shown = [
        WorkerView(
            name=row.info.name,
            host=row.info.host,
            engine_id=row.info.engine_id,
            queues=row.info.queues,
            labels=row.info.labels,
            slots=row.info.slots,
            running=row.info.running,
            started=datetime.fromisoformat(row.info.started),
            last_seen=row.last_seen,
            age=max((now - row.last_seen).total_seconds(), 0.0),
            alive=now - row.last_seen <= lapse,
        )
        for row in rows
    ]
    return sorted(shown, key=lambda w: (not w.alive, w.name))
