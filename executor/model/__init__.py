"""The ground floor: executions, task runs, attempts, states, log lines; imports nothing of ours."""

from executor.model.records import (
    Attempt,
    Execution,
    Level,
    LogBatch,
    LogLine,
    RunListener,
    State,
    StateHistory,
    TaskRun,
    iso,
    new_id,
    now,
)

__all__ = [
    "Attempt",
    "Execution",
    "Level",
    "LogBatch",
    "LogLine",
    "RunListener",
    "State",
    "StateHistory",
    "TaskRun",
    "iso",
    "new_id",
    "now",
]
