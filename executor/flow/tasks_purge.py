"""The tasks that keep history in check: ``execution.PurgeExecutions`` and ``log.PurgeLogs``.

Kestra's names and properties; both run on the host, against the run's record store (only ended
executions are ever purged). Dates are rendered, then read as ISO-8601 (``{{ now() |
dateAdd(-1, 'MONTHS') }}``).
"""

from __future__ import annotations

from typing import Literal

from executor.flow.base import TaskBase

PURGE_EXECUTIONS_TYPES = (
    "io.kestra.plugin.core.execution.PurgeExecutions",
    "io.kestra.plugin.core.storage.Purge",  # Kestra's aliases of the task it replaced
    "io.kestra.core.tasks.storages.Purge",
)
PURGE_LOGS_TYPES = ("io.kestra.plugin.core.log.PurgeLogs",)
PURGE_TYPES = PURGE_EXECUTIONS_TYPES + PURGE_LOGS_TYPES

LEVEL_NAMES = Literal["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]


class PurgeExecutionsTask(TaskBase):
    """``PurgeExecutions``: remove ended executions with their logs, metrics and files.

    ``namespace`` is a namespace and those below it, or with ``flowId`` that flow's namespace;
    ``startDate``/``endDate`` bound when the executions started and ended.
    """

    type: Literal[PURGE_EXECUTIONS_TYPES]  # type: ignore[valid-type]
    endDate: str
    startDate: str | None = None
    namespace: str | None = None
    flowId: str | None = None
    states: list[str] | str | None = None
    purgeExecution: bool | str = True
    purgeLog: bool | str = True
    purgeMetric: bool | str = True
    purgeStorage: bool | str = True
    batchSize: int | str | None = None


class PurgeLogsTask(TaskBase):
    """``PurgeLogs``: remove log lines written between ``startDate`` and ``endDate``."""

    type: Literal[PURGE_LOGS_TYPES]  # type: ignore[valid-type]
    endDate: str
    startDate: str | None = None
    namespace: str | None = None
    flowId: str | None = None
    executionId: str | None = None
    logLevels: list[LEVEL_NAMES] | str | None = None
    purgeExecutionLogs: bool | str = True
    purgeNonExecutionLogs: bool | str = True  # trigger logs: none are kept here
    batchSize: int | str | None = None
