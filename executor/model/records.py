"""An execution and its task runs: states, attempts, outputs, in Kestra's shape."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol


def now() -> datetime:
    return datetime.now(UTC)


def iso(ts: datetime | None) -> str | None:
    return ts.isoformat().replace("+00:00", "Z") if ts else None


BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def new_id() -> str:
    """A unique id in Kestra's style: a random UUID in base62, 22 letters and digits.

    Never starts with '-', so it is always safe as a command-line argument.
    """
    number, digits = uuid.uuid4().int, []
    while number:
        number, rest = divmod(number, 62)
        digits.append(BASE62[rest])
    return "".join(reversed(digits)).rjust(22, "0")


class State(enum.StrEnum):
    QUEUED = "QUEUED"  # server mode: submitted, waiting on disk for a free slot
    CREATED = "CREATED"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    WARNING = "WARNING"
    FAILED = "FAILED"
    KILLED = "KILLED"
    SKIPPED = "SKIPPED"
    RETRYING = "RETRYING"
    PAUSED = "PAUSED"
    RESTARTED = "RESTARTED"  # asked to run again: its failed task runs run again
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return self in (
            State.SUCCESS,
            State.WARNING,
            State.FAILED,
            State.KILLED,
            State.SKIPPED,
            State.CANCELLED,
        )

    @property
    def failed(self) -> bool:
        return self in (State.FAILED, State.KILLED, State.CANCELLED)


@dataclass
class StateHistory:
    """The current state and every state before it, with the time it was entered."""

    current: State = State.CREATED
    history: list[tuple[State, datetime]] = field(default_factory=lambda: [(State.CREATED, now())])

    def to(self, state: State) -> None:
        self.current = state
        self.history.append((state, now()))

    @property
    def start(self) -> datetime:
        return self.history[0][1]

    @property
    def end(self) -> datetime | None:
        return self.history[-1][1] if self.current.terminal else None

    @property
    def duration(self) -> float | None:
        end = self.end
        return (end - self.start).total_seconds() if end else None

    def to_json(self) -> dict[str, Any]:
        return {
            "current": self.current.value,
            "startDate": iso(self.start),
            "endDate": iso(self.end),
            "duration": self.duration,
            "histories": [{"state": s.value, "date": iso(t)} for s, t in self.history],
        }


@dataclass
class Attempt:
    """One try of a task run."""

    number: int
    state: StateHistory = field(default_factory=StateHistory)
    exit_code: int | None = None
    oom_killed: bool = False
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state.to_json(),
            "exitCode": self.exit_code,
            "oomKilled": self.oom_killed,
            "reason": self.reason,
        }


@dataclass
class TaskRun:
    """One task of one execution."""

    task_id: str
    task_type: str
    parent_task_run_id: str | None = None
    id: str = field(default_factory=new_id)
    state: StateHistory = field(default_factory=StateHistory)
    attempts: list[Attempt] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    image_id: str | None = None
    reason: str | None = None
    stderr_tail: list[str] = field(default_factory=list)
    value: Any = None
    iteration: int | None = None
    # a Pause waiting to be resumed: its ``onResume`` inputs as declared (Input fields, JSON)
    resume_inputs: list[dict[str, Any]] | None = None

    def to_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {}
        if self.value is not None:
            shown["value"] = self.value
        if self.iteration is not None:
            shown["iteration"] = self.iteration
        return {
            "id": self.id,
            "taskId": self.task_id,
            "type": self.task_type,
            "parentTaskRunId": self.parent_task_run_id,
            **shown,
            "state": self.state.to_json(),
            "attempts": [a.to_json() for a in self.attempts],
            "outputs": self.outputs,
            "metrics": self.metrics,
            "imageId": self.image_id,
            "reason": self.reason,
        }


@dataclass
class Execution:
    """One run of a flow."""

    namespace: str
    flow_id: str
    inputs: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=new_id)
    state: StateHistory = field(default_factory=StateHistory)
    task_runs: list[TaskRun] = field(default_factory=list)
    images: dict[str, str] = field(default_factory=dict)
    image_digests: dict[str, str] = field(default_factory=dict)  # ref -> the digest it pins
    reason: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    parent_id: str | None = None
    trigger: dict[str, Any] | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    flow_revision: int | None = None  # server mode: the stored revision that ran
    # a replay: the execution it replays (that one's own original, when it was a replay too)
    original_id: str | None = None
    # ``executor run``: the flow file that ran (what ``executor restart`` runs again)
    flow_file: str | None = None

    def task_run(self, task_id: str) -> TaskRun:
        for run in self.task_runs:
            if run.task_id == task_id:
                return run
        raise KeyError(task_id)

    def to_json(self) -> dict[str, Any]:
        """The execution in the shape of Kestra's execution API."""
        return {
            "id": self.id,
            "namespace": self.namespace,
            "flowId": self.flow_id,
            "inputs": self.inputs,
            "labels": [{"key": k, "value": v} for k, v in self.labels.items()],
            "state": self.state.to_json(),
            "taskRunList": [t.to_json() for t in self.task_runs],
            "images": self.images,
            "imageDigests": self.image_digests,
            "reason": self.reason,
            "parentId": self.parent_id,
            "trigger": self.trigger,
            "outputs": self.outputs,
            "originalId": self.original_id or self.id,
        }


class Level(enum.StrEnum):
    TRACE = "TRACE"
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARN = "WARN"
    ERROR = "ERROR"


@dataclass(frozen=True)
class LogLine:
    """One line of an execution's log."""

    timestamp: datetime
    execution_id: str
    task_id: str | None
    task_run_id: str | None
    attempt: int | None
    stream: str  # stdout, stderr or executor
    level: Level
    message: str

    @classmethod
    def many(
        cls,
        timestamp: datetime,
        execution_id: str,
        task_id: str | None,
        task_run_id: str | None,
        attempt: int | None,
        stream: str,
        level: Level,
        messages: list[str],
    ) -> list[LogLine]:
        """Lines that share everything but their message (a loud task's output, a chunk at once).

        Set field by field like the frozen ``__init__`` does (so each line stays as compact),
        without its per-field global lookups.
        """
        new, set_field = object.__new__, object.__setattr__
        lines: list[LogLine] = []
        for message in messages:
            line = new(cls)
            set_field(line, "timestamp", timestamp)
            set_field(line, "execution_id", execution_id)
            set_field(line, "task_id", task_id)
            set_field(line, "task_run_id", task_run_id)
            set_field(line, "attempt", attempt)
            set_field(line, "stream", stream)
            set_field(line, "level", level)
            set_field(line, "message", message)
            lines.append(line)
        return lines


@dataclass(frozen=True, slots=True)
class LogBatch:
    """Lines of one task attempt, stream and level that arrived together: one object for all.

    A loud task's output travels from the exec to the store as these, not as one object a line;
    :meth:`lines` gives the lines one by one to whoever wants them so.
    """

    timestamp: datetime
    execution_id: str
    task_id: str | None
    task_run_id: str | None
    attempt: int | None
    stream: str
    level: Level
    messages: list[str]

    def __len__(self) -> int:
        return len(self.messages)

    def lines(self) -> list[LogLine]:
        return LogLine.many(
            self.timestamp,
            self.execution_id,
            self.task_id,
            self.task_run_id,
            self.attempt,
            self.stream,
            self.level,
            self.messages,
        )


class RunListener(Protocol):
    """What the runner tells the store, the live view, or a test as it goes."""

    def execution_changed(self, execution: Execution) -> None: ...

    def task_changed(self, execution: Execution, task_run: TaskRun) -> None: ...

    def log(self, line: LogLine) -> None: ...
