"""The record store's values: snapshots to write, rows read back, and how they are encoded.

Everything here is plain data and pure functions (no connection): the recorder snapshots a run
into these records on its hot path, the wire format (``store.wire``) carries them from workers,
and the store's writers and readers (``store.writes``, ``store.queries``) turn them into rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, is_dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from executor.host import Owner
from executor.model import Execution, LogBatch, LogLine, State, StateHistory, TaskRun

DIED_REASON = "executor died"
# The one list of unfinished states. QUEUED is not among them: queued work belongs to no process
# (it waits on disk in the server's queue), so a dead server's queued executions run again.
UNFINISHED: tuple[str, ...] = tuple(s.value for s in State if not s.terminal and s != State.QUEUED)
# The same states as an SQL list (our own enum's values: nothing a user wrote goes into it).
UNFINISHED_SQL = "(" + ", ".join(f"'{state}'" for state in UNFINISHED) + ")"

# ----- value objects


@dataclass(frozen=True)
class ExecutionRecord:
    """A snapshot of an execution row, ready to be written (JSON fields already encoded)."""

    id: str
    namespace: str
    flow_id: str
    state: str
    start_date: str
    end_date: str | None
    inputs: str
    histories: str
    images: str
    labels: str
    reason: str | None
    owner: Owner
    extra: str = "{}"


@dataclass(frozen=True)
class AttemptRecord:
    """A snapshot of one attempt of a task run."""

    number: int
    state: str
    start_date: str
    end_date: str | None
    duration: float | None
    exit_code: int | None
    oom_killed: bool
    reason: str | None
    histories: str


@dataclass(frozen=True)
class TaskRunRecord:
    """A snapshot of a task run and its attempts, ready to be written."""

    id: str
    execution_id: str
    position: int
    task_id: str
    task_type: str
    parent_id: str | None
    state: str
    start_date: str
    end_date: str | None
    duration: float | None
    histories: str
    outputs: str
    metrics: str
    output_files: str
    image_id: str | None
    reason: str | None
    stderr_tail: str
    attempts: tuple[AttemptRecord, ...] = ()
    extra: str = "{}"


Write = ExecutionRecord | TaskRunRecord | LogLine | LogBatch


@dataclass(frozen=True)
class ExecutionSummary:
    """One line of ``executor executions``."""

    id: str
    namespace: str
    flow_id: str
    state: State
    start: datetime
    end: datetime | None
    reason: str | None
    owner: Owner

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, ``None`` while it runs."""
        return (self.end - self.start).total_seconds() if self.end else None


@dataclass
class StoredExecution:
    """An execution read back from the store, with who ran it."""

    execution: Execution
    owner: Owner
    task_positions: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredLogLine:
    """A log line read back from the store, with its row id (for ``--follow``)."""

    row_id: int
    line: LogLine


# ----- encoding


def ts(value: datetime) -> str:
    """A timestamp as stored: ISO 8601 in UTC with microseconds (sorts as text)."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def parse_ts(text: str) -> datetime:
    """The inverse of :func:`ts`."""
    return datetime.fromisoformat(text)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def from_micros(value: int) -> datetime:
    """A log line's timestamp from its stored form, microseconds since the epoch.

    Integers, not ISO text: exact, and cheap for a million lines (``_Chunker.add``).
    """
    return _EPOCH + timedelta(microseconds=value)


def dumps(value: Any) -> str:
    """Compact JSON; values JSON cannot hold (dates, paths) become strings."""
    return json.dumps(value, default=str, separators=(",", ":"), ensure_ascii=False)


def histories_of(history: StateHistory) -> str:
    return dumps([[s.value, ts(t)] for s, t in history.history])


def state_history(current: str, histories: str) -> StateHistory:
    pairs = [(State(s), parse_ts(t)) for s, t in json.loads(histories)]
    return StateHistory(State(current), pairs or [(State(current), datetime.now(UTC))])


def execution_record(
    execution: Execution, owner: Owner, *, inputs: Any = None, reason: str | None = None
) -> ExecutionRecord:
    """Snapshot an execution (``inputs``/``reason`` override the raw values, e.g. masked)."""
    state = execution.state
    return ExecutionRecord(
        id=execution.id,
        namespace=execution.namespace,
        flow_id=execution.flow_id,
        state=state.current.value,
        start_date=ts(state.start),
        end_date=ts(state.end) if state.end else None,
        inputs=dumps(execution.inputs if inputs is None else inputs),
        histories=histories_of(state),
        images=dumps(execution.images),
        labels=dumps(execution.labels),
        reason=execution.reason if reason is None else reason,
        owner=owner,
        extra=dumps(
            {
                k: v
                for k, v in (
                    ("parentId", execution.parent_id),
                    ("trigger", execution.trigger),
                    ("outputs", execution.outputs),
                    ("imageDigests", execution.image_digests),
                    ("flowRevision", execution.flow_revision),
                    ("originalId", execution.original_id),
                    ("flowFile", execution.flow_file),
                )
                if v
            }
        ),
    )


def output_files(outputs: dict[str, Any]) -> dict[str, str]:
    """The files a task kept (``outputFiles`` of scripts, ``uris`` of LocalFiles): name -> URI."""
    found: dict[str, str] = {}
    for key in ("outputFiles", "uris"):
        value = outputs.get(key)
        if isinstance(value, dict):
            found.update({str(k): str(v) for k, v in value.items()})
    return found


def task_run_record(
    execution_id: str,
    position: int,
    run: TaskRun,
    *,
    outputs: dict[str, Any] | None = None,
    metrics: list[dict[str, Any]] | None = None,
) -> TaskRunRecord:
    """Snapshot a task run and its attempts (``outputs``/``metrics`` override, e.g. masked)."""
    outputs = run.outputs if outputs is None else outputs
    attempts = tuple(
        AttemptRecord(
            number=a.number,
            state=a.state.current.value,
            start_date=ts(a.state.start),
            end_date=ts(a.state.end) if a.state.end else None,
            duration=a.state.duration,
            exit_code=a.exit_code,
            oom_killed=a.oom_killed,
            reason=a.reason,
            histories=histories_of(a.state),
        )
        for a in run.attempts
    )
    return TaskRunRecord(
        id=run.id,
        execution_id=execution_id,
        position=position,
        task_id=run.task_id,
        task_type=run.task_type,
        parent_id=run.parent_task_run_id,
        state=run.state.current.value,
        start_date=ts(run.state.start),
        end_date=ts(run.state.end) if run.state.end else None,
        duration=run.state.duration,
        histories=histories_of(run.state),
        outputs=dumps(outputs),
        metrics=dumps(run.metrics if metrics is None else metrics),
        output_files=dumps(output_files(outputs)),
        image_id=run.image_id,
        reason=run.reason,
        stderr_tail=dumps(run.stderr_tail),
        extra=dumps(
            {
                k: v
                for k, v in (
                    ("value", run.value),
                    ("iteration", run.iteration),
                    ("resumeInputs", run.resume_inputs),
                )
                if v is not None
            }
        ),
        attempts=attempts,
    )


def encodable(record: Any) -> Any:
    """``record`` (a dataclass) with every lone surrogate in its text, nested ones too, replaced."""
    changes: dict[str, Any] = {}
    for item in fields(record):
        value = getattr(record, item.name)
        if type(value) is str:  # not a str enum such as Level
            changes[item.name] = _utf8_safe(value)
        elif is_dataclass(value):
            changes[item.name] = encodable(value)
        elif isinstance(value, tuple):
            changes[item.name] = tuple(encodable(v) if is_dataclass(v) else v for v in value)
        elif isinstance(value, list):
            changes[item.name] = [_utf8_safe(v) if type(v) is str else v for v in value]
    return replace(record, **changes)


def _utf8_safe(text: str) -> str:
    """``text`` with surrogate pairs joined and lone surrogates replaced by U+FFFD."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
