"""``PurgeExecutions`` and ``PurgeLogs``: ended executions and old log lines removed from the
run's record store (and their files from its artifact store), in batches.

Any flow may purge any namespace, as in Kestra's open-source edition: whoever may store a flow
may store it in any namespace. On a worker the records are the server's, which a worker may not
purge: the task fails, saying so (the server's retention does it there).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from executor.flow.tasks_purge import PurgeExecutionsTask, PurgeLogsTask
from executor.model import Level, State
from executor.run.handlers.attempts import AttemptResult, Handler, with_attempts
from executor.run.handlers.host import HostJob, TaskInputError, host_attempt
from executor.store.purge import (
    ExecutionSelection,
    LogSelection,
    PurgeParts,
    terminal_states,
)


def _date(job: HostJob, value: str | None, name: str) -> datetime | None:
    """A date property, rendered and read as ISO-8601 (without an offset: UTC)."""
    if value is None:
        return None
    text = job.text(value).strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise TaskInputError(
            f"'{name}': {text!r} is not an ISO-8601 date (such as 2024-05-01T00:00:00Z)"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _names(job: HostJob, value: Sequence[str] | str | None, name: str) -> list[str]:
    """A list property: a list, or the JSON or comma-separated text of one."""
    if value is None:
        return []
    rendered: Any = job.render(value)
    if isinstance(rendered, str):
        text = rendered.strip()
        try:
            rendered = json.loads(text) if text.startswith("[") else text.split(",")
        except ValueError:
            raise TaskInputError(f"'{name}' is neither a list nor its JSON text") from None
    if not isinstance(rendered, list):
        raise TaskInputError(f"'{name}' must be a list")
    return [str(item).strip() for item in rendered if str(item).strip()]


def _optional_text(job: HostJob, value: str | None) -> str | None:
    if value is None:
        return None
    return job.text(value).strip() or None


def _batch(job: HostJob, value: int | str | None) -> int | None:
    size = job.integer(value, "batchSize")
    if size is not None and size < 1:
        raise TaskInputError(f"'batchSize' must be at least 1, got {size}")
    return size


def _purge_executions(task: PurgeExecutionsTask, job: HostJob) -> AttemptResult:
    end = _date(job, task.endDate, "endDate")
    assert end is not None  # a required property
    selection = ExecutionSelection(
        ended_before=end,
        started_after=_date(job, task.startDate, "startDate"),
        namespace=_optional_text(job, task.namespace),
        flow_id=_optional_text(job, task.flowId),
        states=terminal_states(_names(job, task.states, "states"), "'states'"),
    )
    parts = PurgeParts(
        executions=job.flag(task.purgeExecution, "purgeExecution", True),
        logs=job.flag(task.purgeLog, "purgeLog", True),
        metrics=job.flag(task.purgeMetric, "purgeMetric", True),
        files=job.flag(task.purgeStorage, "purgeStorage", True),
    )
    stores = job.ctx.stores()
    counts = stores.records.purge(
        selection, parts, stores.artifacts, batch=_batch(job, task.batchSize)
    )
    job.log(
        Level.INFO,
        f"purged {counts.executions} execution(s), {counts.logs} log line(s),"
        f" {counts.files} file(s), {counts.metrics} metric(s) of executions ended before"
        f" {end.isoformat()}",
    )
    return AttemptResult(
        State.SUCCESS,
        outputs={
            "executionsCount": counts.executions,
            "logsCount": counts.logs,
            "storagesCount": counts.files,
            "metricsCount": counts.metrics,
        },
    )


def _purge_logs(task: PurgeLogsTask, job: HostJob) -> AttemptResult:
    end = _date(job, task.endDate, "endDate")
    assert end is not None  # a required property
    levels = _names(job, task.logLevels, "logLevels")
    try:
        chosen = tuple(Level(name.upper()) for name in levels)
    except ValueError:
        known = ", ".join(level.value for level in Level)
        raise TaskInputError(f"'logLevels': {levels} are not all levels ({known})") from None
    selection = LogSelection(
        before=end,
        after=_date(job, task.startDate, "startDate"),
        namespace=_optional_text(job, task.namespace),
        flow_id=_optional_text(job, task.flowId),
        execution_id=_optional_text(job, task.executionId),
        levels=chosen,
    )
    batch = _batch(job, task.batchSize)
    job.flag(task.purgeNonExecutionLogs, "purgeNonExecutionLogs", True)  # checked: none kept
    removed = 0
    if job.flag(task.purgeExecutionLogs, "purgeExecutionLogs", True):
        removed = job.ctx.stores().records.purge_logs(selection, batch=batch)
    job.log(Level.INFO, f"purged {removed} log line(s) written before {end.isoformat()}")
    # every line kept here belongs to an execution: no trigger logs to purge
    return AttemptResult(
        State.SUCCESS,
        outputs={"count": removed, "executionLogsCount": removed, "nonExecutionLogsCount": 0},
    )


HANDLES: dict[type[Any], Handler[Any]] = {
    PurgeExecutionsTask: with_attempts(host_attempt(_purge_executions)),
    PurgeLogsTask: with_attempts(host_attempt(_purge_logs)),
}
"""What this module runs, by task model (``run.handlers`` collects it)."""
