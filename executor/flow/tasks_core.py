"""Core tasks that act on the execution, its files, its logs and namespace files (Kestra's names).

``execution.Labels``/``Exit``/``Assert``, ``storage.*``, ``log.Fetch`` and ``namespace.*Files``;
all run on the host.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from executor.flow.base import TaskBase


def _core(kind: str, *old: str) -> tuple[str, ...]:
    return (f"io.kestra.plugin.core.{kind}", *(f"io.kestra.core.tasks.{o}" for o in old))


LABELS_TYPES = _core("execution.Labels", "executions.Labels")
EXIT_TYPES = _core("execution.Exit")
ASSERT_TYPES = _core("execution.Assert")
WRITE_TYPES = _core("storage.Write")
SIZE_TYPES = _core("storage.Size", "storages.Size")
CONCAT_TYPES = _core("storage.Concat", "storages.Concat")
SPLIT_TYPES = _core("storage.Split", "storages.Split")
STORAGE_DELETE_TYPES = _core("storage.Delete", "storages.Delete")
PURGE_TYPES = (
    *_core("storage.PurgeCurrentExecutionFiles", "storages.PurgeExecution"),
    "io.kestra.plugin.core.storage.PurgeExecution",
)
LOG_FETCH_TYPES = _core("log.Fetch", "log.Fetch")  # io.kestra.core.tasks.log.Fetch
UPLOAD_FILES_TYPES = _core("namespace.UploadFiles")
DOWNLOAD_FILES_TYPES = _core("namespace.DownloadFiles")
DELETE_FILES_TYPES = _core("namespace.DeleteFiles")
CORE_TYPES = (
    LABELS_TYPES
    + EXIT_TYPES
    + ASSERT_TYPES
    + WRITE_TYPES
    + SIZE_TYPES
    + CONCAT_TYPES
    + SPLIT_TYPES
    + STORAGE_DELETE_TYPES
    + PURGE_TYPES
    + LOG_FETCH_TYPES
    + UPLOAD_FILES_TYPES
    + DOWNLOAD_FILES_TYPES
    + DELETE_FILES_TYPES
)

LEVELS = Literal["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]


class LabelsTask(TaskBase):
    """``Labels``: add or replace labels of the running execution."""

    type: Literal[LABELS_TYPES]  # type: ignore[valid-type]
    labels: dict[str, Any] | list[dict[str, Any]] | str


class ExitTask(TaskBase):
    """``Exit``: end the execution now, in ``state``; nothing after it starts."""

    type: Literal[EXIT_TYPES]  # type: ignore[valid-type]
    state: Literal["SUCCESS", "WARNING", "KILLED", "FAILED", "CANCELED"] | str = "SUCCESS"


class AssertTask(TaskBase):
    """``Assert``: every condition must render true, else the task fails naming each one."""

    type: Literal[ASSERT_TYPES]  # type: ignore[valid-type]
    conditions: list[Any] = Field(min_length=1)
    errorMessage: str | None = None


class WriteTask(TaskBase):
    """``Write``: ``content`` into a new file of the artifact store (``outputs.<id>.uri``)."""

    type: Literal[WRITE_TYPES]  # type: ignore[valid-type]
    content: Any
    extension: str = ".ion"


class SizeTask(TaskBase):
    """``Size``: the size in bytes of a stored file (``outputs.<id>.size``)."""

    type: Literal[SIZE_TYPES]  # type: ignore[valid-type]
    uri: str


class ConcatTask(TaskBase):
    """``Concat``: stored files one after another (a ``separator`` after each) into a new one."""

    type: Literal[CONCAT_TYPES]  # type: ignore[valid-type]
    files: list[str] | str
    separator: str | None = None
    extension: str = ".tmp"


class SplitTask(TaskBase):
    """``Split``: a stored file cut by ``bytes``, ``partitions``, ``rows`` or ``regexPattern``."""

    type: Literal[SPLIT_TYPES]  # type: ignore[valid-type]
    from_: str = Field(alias="from")
    bytes: str | int | None = None
    partitions: int | str | None = None
    rows: int | str | None = None
    regexPattern: str | None = None
    separator: str = "\n"


class StorageDeleteTask(TaskBase):
    """``Delete``: remove a file of this execution from the artifact store."""

    type: Literal[STORAGE_DELETE_TYPES]  # type: ignore[valid-type]
    uri: str
    errorOnMissing: bool | str = False


class PurgeFilesTask(TaskBase):
    """``PurgeCurrentExecutionFiles``: remove every stored file of this execution."""

    type: Literal[PURGE_TYPES]  # type: ignore[valid-type]


class LogFetchTask(TaskBase):
    """``Fetch``: log lines of an execution (this one by default) into a stored file."""

    type: Literal[LOG_FETCH_TYPES]  # type: ignore[valid-type]
    executionId: str | None = None
    namespace: str | None = None
    flowId: str | None = None
    tasksId: list[str] | None = None
    level: LEVELS = "INFO"


class UploadFilesTask(TaskBase):
    """``UploadFiles``: stored files (``kestra:///`` URIs) into namespace files."""

    type: Literal[UPLOAD_FILES_TYPES]  # type: ignore[valid-type]
    namespace: str
    files: list[str] | dict[str, str] | str
    destination: str = "/"
    conflict: Literal["OVERWRITE", "ERROR", "SKIP"] = "OVERWRITE"


class DownloadFilesTask(TaskBase):
    """``DownloadFiles``: namespace files matching globs into the artifact store."""

    type: Literal[DOWNLOAD_FILES_TYPES]  # type: ignore[valid-type]
    namespace: str
    files: list[str] | str
    destination: str | None = None


class DeleteFilesTask(TaskBase):
    """``DeleteFiles``: namespace files matching globs, removed."""

    type: Literal[DELETE_FILES_TYPES]  # type: ignore[valid-type]
    namespace: str
    files: list[str] | str
    deleteParentFolder: bool = False
