"""The flow language: Kestra's flow and task properties as pydantic models.

Every model forbids unknown fields (a typo is an error with its location), task models
are discriminated on ``type`` and accept Kestra's old and new type names alike.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from executor import names
from executor.flow.base import Model, TaskBase, scalar_text
from executor.flow.base import Retry as Retry  # re-exported: the loader and retry use it here
from executor.flow.durations import Duration, DurationOrTemplate
from executor.flow.tasks_cli import (
    AnsibleTask,
    AwsCliTask,
    DbtCliTask,
    DbtCommandTask,
    ModalTask,
    SparkTask,
    SqlMeshTask,
    TerraformTask,
    TrivyTask,
)
from executor.flow.tasks_compress import (
    ArchiveCompressTask,
    ArchiveDecompressTask,
    FileCompressTask,
    FileDecompressTask,
)
from executor.flow.tasks_core import (
    AssertTask,
    ConcatTask,
    DeleteFilesTask,
    DownloadFilesTask,
    ExitTask,
    LabelsTask,
    LogFetchTask,
    PurgeFilesTask,
    SizeTask,
    SplitTask,
    StorageDeleteTask,
    UploadFilesTask,
    WriteTask,
)
from executor.flow.tasks_docker import DockerBuildTask, DockerPushTask, DockerRunTask
from executor.flow.tasks_exec import (  # the container options are re-exported from here
    DOCKER_RUNNER_TYPES as DOCKER_RUNNER_TYPES,
)
from executor.flow.tasks_exec import PROCESS_RUNNER_TYPES as PROCESS_RUNNER_TYPES
from executor.flow.tasks_exec import Credentials as Credentials
from executor.flow.tasks_exec import DeviceRequestSpec as DeviceRequestSpec
from executor.flow.tasks_exec import DockerOptions as DockerOptions
from executor.flow.tasks_exec import ExecScript, needs_one_body
from executor.flow.tasks_exec import NamespaceFiles as NamespaceFiles
from executor.flow.tasks_exec import TaskRunner as TaskRunner
from executor.flow.tasks_git import (
    PushExecutionFilesTask,
    PushFlowsTask,
    PushNamespaceFilesTask,
    PushTask,
    SyncFlowsTask,
    SyncNamespaceFilesTask,
)
from executor.flow.tasks_gitlab import (
    GitLabIssueCreate,
    GitLabIssueSearch,
    GitLabMergeRequestCreate,
)
from executor.flow.tasks_http import DownloadTask, RequestTask
from executor.flow.tasks_jdbc import (
    JdbcBatch,
    JdbcQueries,
    JdbcQuery,
    PostgresCopyIn,
    PostgresCopyOut,
)
from executor.flow.tasks_jira import JiraCreate, JiraCreateComment, JiraUpdateFields
from executor.flow.tasks_kv import KvDeleteTask, KvGetKeysTask, KvGetTask, KvSetTask
from executor.flow.tasks_n8n import N8nTriggerWorkflow
from executor.flow.tasks_notify import MailSendTask, WebhookTask
from executor.flow.tasks_odoo import OdooQuery
from executor.flow.tasks_redis import (
    RedisDelete,
    RedisGet,
    RedisIncrement,
    RedisListPop,
    RedisListPush,
    RedisPublish,
    RedisSet,
)
from executor.flow.tasks_s3 import (
    S3Copy,
    S3Delete,
    S3Download,
    S3Downloads,
    S3List,
    S3Upload,
)
from executor.flow.tasks_scripts import (
    JBangScriptTask,
    LanguageCommandsTask,
    LanguageScriptTask,
)
from executor.flow.tasks_serdes import (
    AvroToIon,
    CsvToIon,
    ExcelToIon,
    IonToAvro,
    IonToCsv,
    IonToExcel,
    IonToJson,
    IonToParquet,
    JsonToIon,
    JsonToJsonl,
    ParquetToIon,
)
from executor.flow.tasks_sockets import TcpSendTask, UdpSendTask
from executor.flow.triggers import AnyTrigger, Concurrency

WORKING_DIRECTORY_TYPES = (
    "io.kestra.plugin.core.flow.WorkingDirectory",
    "io.kestra.core.tasks.flows.WorkingDirectory",
    "io.kestra.core.tasks.flows.Worker",
)
SHELL_COMMANDS_TYPES = (
    "io.kestra.plugin.scripts.shell.Commands",
    "io.kestra.core.tasks.scripts.Bash",
)
SHELL_SCRIPT_TYPES = ("io.kestra.plugin.scripts.shell.Script",)
PYTHON_COMMANDS_TYPES = (
    "io.kestra.plugin.scripts.python.Commands",
    "io.kestra.core.tasks.scripts.Python",
)
PYTHON_SCRIPT_TYPES = ("io.kestra.plugin.scripts.python.Script",)
LEGACY_PYTHON_TYPE = "io.kestra.core.tasks.scripts.Python"
LEGACY_SCRIPT_TYPES = (LEGACY_PYTHON_TYPE, "io.kestra.core.tasks.scripts.Bash")
SCRIPT_TYPES = (
    SHELL_COMMANDS_TYPES + SHELL_SCRIPT_TYPES + PYTHON_COMMANDS_TYPES + PYTHON_SCRIPT_TYPES
)
CLONE_TYPES = ("io.kestra.plugin.git.Clone",)
LOCAL_FILES_TYPES = (
    "io.kestra.plugin.core.storage.LocalFiles",
    "io.kestra.core.tasks.storages.LocalFiles",
)
LOG_TYPES = ("io.kestra.plugin.core.log.Log", "io.kestra.core.tasks.log.Log")
RETURN_TYPES = ("io.kestra.plugin.core.debug.Return", "io.kestra.core.tasks.debugs.Return")
OUTPUT_VALUES_TYPES = (
    "io.kestra.plugin.core.output.OutputValues",
    "io.kestra.core.tasks.outputs.OutputValues",
)


def _core(kind: str, *old: str) -> tuple[str, ...]:
    """A core type's current name under io.kestra.plugin.core, then its old aliases."""
    return (f"io.kestra.plugin.core.{kind}", *(f"io.kestra.core.tasks.{o}" for o in old))


SEQUENTIAL_TYPES = _core("flow.Sequential", "flows.Sequential")
PARALLEL_TYPES = _core("flow.Parallel", "flows.Parallel")
IF_TYPES = _core("flow.If", "flows.If")
SWITCH_TYPES = _core("flow.Switch", "flows.Switch")
FOR_EACH_TYPES = _core("flow.ForEach")
EACH_SEQUENTIAL_TYPES = _core("flow.EachSequential", "flows.EachSequential")
EACH_PARALLEL_TYPES = _core("flow.EachParallel", "flows.EachParallel")
DAG_TYPES = _core("flow.Dag", "flows.Dag")
ALLOW_FAILURE_TYPES = _core("flow.AllowFailure", "flows.AllowFailure")
FAIL_TYPES = _core("execution.Fail", "executions.Fail")
PAUSE_TYPES = _core("flow.Pause", "flows.Pause")
SUBFLOW_TYPES = _core("flow.Subflow", "flows.Subflow", "flows.Flow")
FOR_EACH_ITEM_TYPES = _core("flow.ForEachItem", "flows.ForEachItem")
FLOWABLE_TYPES = (
    SEQUENTIAL_TYPES
    + PARALLEL_TYPES
    + IF_TYPES
    + SWITCH_TYPES
    + FOR_EACH_TYPES
    + EACH_SEQUENTIAL_TYPES
    + EACH_PARALLEL_TYPES
    + DAG_TYPES
    + ALLOW_FAILURE_TYPES
    + PAUSE_TYPES
    + SUBFLOW_TYPES
    + FOR_EACH_ITEM_TYPES
)


PackageManager = Literal["PIP", "UV"]


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


class ScriptTask(ExecScript):
    """Shell and Python ``Commands``/``Script`` tasks, and the legacy ``Bash``/``Python``."""

    type: Literal[SCRIPT_TYPES]  # type: ignore[valid-type]
    script: str | None = None
    interpreterArgs: list[str] | None = None  # legacy Bash/Python, with a string interpreter
    exitOnFailed: bool | None = None
    dependencies: list[str] = Field(default_factory=list)
    requirements: list[str] = Field(default_factory=list)
    executionContext: bool = False
    # python tasks
    pythonVersion: str | None = None
    packageManager: Annotated[PackageManager, BeforeValidator(_upper)] | None = None
    dependencyCacheEnabled: bool = True
    # legacy io.kestra.core.tasks.scripts.Bash / Python
    args: list[str] | None = None
    pythonPath: str | None = None
    virtualEnv: bool = True
    files: list[str] | None = None
    outputsFiles: list[str] | None = None
    outputDirs: list[str] | None = None

    @model_validator(mode="after")
    def _body(self) -> ScriptTask:
        if self.type in SHELL_SCRIPT_TYPES + PYTHON_SCRIPT_TYPES:
            needs_one_body(self, is_script=True)
        elif self.commands is None and self.type != LEGACY_PYTHON_TYPE:
            raise ValueError("a Commands task needs 'commands'")
        elif self.script is not None:
            raise ValueError("a Commands task takes 'commands', not 'script'")
        if self.dependencies and self.type not in PYTHON_COMMANDS_TYPES + PYTHON_SCRIPT_TYPES:
            raise ValueError("'dependencies' is only for python tasks")
        if self.interpreterArgs is not None and not isinstance(self.interpreter, str):
            raise ValueError("'interpreterArgs' goes with an 'interpreter' given as one string")
        return self

    @property
    def command_line(self) -> list[str]:
        """The interpreter and its arguments (the legacy form: a string and ``interpreterArgs``)."""
        if isinstance(self.interpreter, str):
            args = ["-c"] if self.interpreterArgs is None else self.interpreterArgs
            return [self.interpreter, *args]
        return list(self.interpreter)

    @property
    def output_globs(self) -> list[str]:
        """``outputFiles`` and the legacy tasks' deprecated ``outputsFiles`` and ``files``."""
        return [*(self.outputFiles or []), *(self.outputsFiles or []), *(self.files or [])]

    @property
    def command_list(self) -> list[str]:
        """``commands``, or the legacy Python task's default ``./bin/python main.py``."""
        if self.commands is None and self.type == LEGACY_PYTHON_TYPE:
            return ["./bin/python main.py"]
        return list(self.commands or [])

    @property
    def is_python(self) -> bool:
        return self.type in PYTHON_COMMANDS_TYPES + PYTHON_SCRIPT_TYPES

    @property
    def is_legacy(self) -> bool:
        """``io.kestra.core.tasks.scripts.Bash``/``Python``: ``outputFiles`` are names there."""
        return self.type in LEGACY_SCRIPT_TYPES

    @property
    def fail_fast(self) -> bool:
        return self.failFast if self.exitOnFailed is None else self.exitOnFailed


class CloneTask(TaskBase):
    """``io.kestra.plugin.git.Clone``: a git clone into the workspace."""

    type: Literal[CLONE_TYPES]  # type: ignore[valid-type]
    url: str
    branch: str | None = None
    tag: str | None = None
    commit: str | None = None
    depth: int = Field(default=1, ge=1)
    directory: str | None = None
    cloneSubmodules: bool = False
    username: str | None = None
    password: str | None = None
    privateKey: str | None = None
    passphrase: str | None = None
    trustedHosts: list[str] | None = None


class LocalFilesTask(TaskBase):
    """``LocalFiles``: write files into the workspace and collect files out of it."""

    type: Literal[LOCAL_FILES_TYPES]  # type: ignore[valid-type]
    inputs: dict[str, str] | None = None
    outputs: list[str] | None = None


class LogTask(TaskBase):
    """``Log``: a message in the execution's log, on the host."""

    type: Literal[LOG_TYPES]  # type: ignore[valid-type]
    message: str | list[str]
    level: Literal["TRACE", "DEBUG", "INFO", "WARN", "ERROR"] = "INFO"


class ReturnTask(TaskBase):
    """``Return``: a rendered value as ``outputs.<id>.value``."""

    type: Literal[RETURN_TYPES]  # type: ignore[valid-type]
    format: str | None = None


class OutputValuesTask(TaskBase):
    """``OutputValues``: rendered values as ``outputs.<id>.values``."""

    type: Literal[OUTPUT_VALUES_TYPES]  # type: ignore[valid-type]
    values: dict[str, Any] = Field(default_factory=dict)


class Cache(Model):
    """A WorkingDirectory's cache of files between executions."""

    patterns: list[str] = Field(min_length=1)
    ttl: Duration | None = None


class WorkingDirectoryTask(TaskBase):
    """``WorkingDirectory``: children sharing one workspace and one container per image."""

    type: Literal[WORKING_DIRECTORY_TYPES]  # type: ignore[valid-type]
    tasks: list[ChildTask] = Field(min_length=1)
    errors: list[ChildTask] = Field(default_factory=list)
    finally_: list[ChildTask] = Field(default_factory=list, alias="finally")
    namespaceFiles: NamespaceFiles | None = None
    inputFiles: dict[str, str] | str | None = None
    outputFiles: list[str] | None = None
    cache: Cache | None = None

    def children(self) -> list[tuple[str, list[Task]]]:
        return [("tasks", list(self.tasks)), ("errors", self.errors), ("finally", self.finally_)]


class FailTask(TaskBase):
    """``Fail``: fail the task (and so its parents) with a message, or when a condition holds."""

    type: Literal[FAIL_TYPES]  # type: ignore[valid-type]
    condition: Any = None
    errorMessage: str = "Task failure"


ON_CHILD_FAILURE = Literal["FAIL", "FAILED", "CANCEL", "CANCELLED", "CONTINUE"]


class Flowable(TaskBase):
    """A task that runs other tasks; ``errors`` and ``finally`` on every one."""

    errors: list[AnyTask] = Field(default_factory=list)
    finally_: list[AnyTask] = Field(default_factory=list, alias="finally")

    def children(self) -> list[tuple[str, list[Task]]]:
        return [*self.body(), ("errors", list(self.errors)), ("finally", list(self.finally_))]

    def body(self) -> list[tuple[str, list[Task]]]:
        """The task lists of the body, without ``errors`` and ``finally``."""
        return [("tasks", list(getattr(self, "tasks", [])))]


class SequentialTask(Flowable):
    """``Sequential``: children one after another; a failure stops the rest."""

    type: Literal[SEQUENTIAL_TYPES]  # type: ignore[valid-type]
    tasks: list[AnyTask] = Field(min_length=1)


class AllowFailureTask(Flowable):
    """``AllowFailure``: a Sequential whose failure ends WARNING."""

    type: Literal[ALLOW_FAILURE_TYPES]  # type: ignore[valid-type]
    tasks: list[AnyTask] = Field(min_length=1)


class ParallelTask(Flowable):
    """``Parallel``: children at once (``concurrent``: at most that many, 0 for no limit)."""

    type: Literal[PARALLEL_TYPES]  # type: ignore[valid-type]
    tasks: list[AnyTask] = Field(min_length=1)
    concurrent: int = Field(default=0, ge=0)
    onChildFailure: ON_CHILD_FAILURE = "FAIL"


class IfTask(Flowable):
    """``If``: ``then`` when the condition is true (Kestra's truthiness), else ``else``."""

    type: Literal[IF_TYPES]  # type: ignore[valid-type]
    condition: Any = None
    then: list[AnyTask] = Field(min_length=1)
    else_: list[AnyTask] = Field(default_factory=list, alias="else")

    def body(self) -> list[tuple[str, list[Task]]]:
        return [("then", list(self.then)), ("else", list(self.else_))]


class SwitchTask(Flowable):
    """``Switch``: the tasks of the case equal to ``value``, else ``defaults``."""

    type: Literal[SWITCH_TYPES]  # type: ignore[valid-type]
    value: Any
    cases: dict[str, list[AnyTask]] = Field(default_factory=dict)
    defaults: list[AnyTask] = Field(default_factory=list)

    @field_validator("cases", mode="before")
    @classmethod
    def _string_keys(cls, value: Any) -> Any:
        # YAML gives `true:` or `1:` as a bool or int; Kestra compares the text.
        if isinstance(value, dict):
            return {scalar_text(k): v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _some_tasks(self) -> SwitchTask:
        if not self.defaults and not any(self.cases.values()):
            raise ValueError("No task defined, neither cases or default have any tasks")
        return self

    def body(self) -> list[tuple[str, list[Task]]]:
        return [
            *((f"cases.{key}", list(tasks)) for key, tasks in self.cases.items()),
            ("defaults", list(self.defaults)),
        ]


def _check_values(value: Any) -> Any:
    """ForEach ``values``: a list (strings, numbers, maps), or text rendered to a JSON list."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise ValueError("values must be a list or a JSON array in a string")
    nulls = sum(1 for item in value if item is None)
    if nulls:
        raise ValueError(f"Found '{nulls}' null values on Each, with values={value}")
    for item in value:
        if isinstance(item, list):
            raise ValueError(f"Unknown value element type: a list ({item!r})")
    return value


LoopValues = Annotated[Any, AfterValidator(_check_values)]


class ForEachTask(Flowable):
    """``ForEach``: the tasks once per value, ``concurrencyLimit`` values at once (0: all)."""

    type: Literal[FOR_EACH_TYPES]  # type: ignore[valid-type]
    values: LoopValues
    concurrencyLimit: int = Field(default=1, ge=0)
    tasks: list[AnyTask] = Field(min_length=1)


class EachSequentialTask(Flowable):
    """``EachSequential`` (deprecated): a ForEach with one value at a time."""

    type: Literal[EACH_SEQUENTIAL_TYPES]  # type: ignore[valid-type]
    value: LoopValues
    tasks: list[AnyTask] = Field(min_length=1)


class EachParallelTask(Flowable):
    """``EachParallel`` (deprecated): every (value, task) pair at once, ``concurrent`` at most."""

    type: Literal[EACH_PARALLEL_TYPES]  # type: ignore[valid-type]
    value: LoopValues
    concurrent: int = Field(default=0, ge=0)
    tasks: list[AnyTask] = Field(min_length=1)


class DagNode(Model):
    """One task of a Dag and the ids it waits for."""

    task: AnyTask
    dependsOn: list[str] = Field(default_factory=list)


class DagTask(Flowable):
    """``Dag``: each task once every task it depends on has ended."""

    type: Literal[DAG_TYPES]  # type: ignore[valid-type]
    tasks: list[DagNode] = Field(min_length=1)
    concurrent: int = Field(default=0, ge=0)
    onChildFailure: ON_CHILD_FAILURE = "FAIL"

    def body(self) -> list[tuple[str, list[Task]]]:
        return [("tasks", [node.task for node in self.tasks])]

    def child_path(self, key: str, index: int) -> tuple[str | int, ...]:
        return (key, index, "task") if key == "tasks" else (key, index)


class PauseTask(Flowable):
    """``Pause``: wait for a duration, or until ``executor resume``."""

    type: Literal[PAUSE_TYPES]  # type: ignore[valid-type]
    delay: DurationOrTemplate | None = None
    pauseDuration: DurationOrTemplate | None = None
    behavior: Literal["RESUME", "WARN", "FAIL", "CANCEL"] = "RESUME"
    onResume: list[Input] = Field(default_factory=list)
    onPause: Any = None
    tasks: list[AnyTask] = Field(default_factory=list)


class SubflowTask(TaskBase):
    """``Subflow``: run another flow as its own execution, and wait for it by default."""

    type: Literal[SUBFLOW_TYPES]  # type: ignore[valid-type]
    namespace: str
    flowId: str
    revision: int | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    labels: dict[str, str] | list[dict[str, str]] | None = None
    wait: bool = True
    transmitFailed: bool = True
    inheritLabels: bool = False
    outputs: dict[str, Any] | None = None
    scheduleDate: str | None = None
    scheduleOnDate: str | None = None
    restartBehavior: str | None = None


FOR_EACH_ITEM_PARTS = ("_split", "_items", "_merge")
"""The suffixes of ForEachItem's own task runs (Kestra's ids): each publishes outputs."""


class ForEachItemBatch(Model):
    """How ForEachItem cuts ``items``: Kestra decides by ``regexPattern``, then ``bytes``, then
    ``partitions``, then ``rows`` (1 by default); a value may be a template."""

    rows: Annotated[int, Field(ge=1)] | str | None = 1
    bytes: Annotated[int, Field(ge=1)] | str | None = None
    partitions: Annotated[int, Field(ge=1)] | str | None = None
    separator: str = "\n"
    regexPattern: str | None = None


class ForEachItemTask(Flowable):
    """``ForEachItem``: a stored file cut into batches, one execution of a flow per batch.

    Kestra runs it as three task runs, ``<id>_split``, ``<id>_items`` and ``<id>_merge``; so
    does :mod:`executor.run.handlers.for_each_item`.
    """

    type: Literal[FOR_EACH_ITEM_TYPES]  # type: ignore[valid-type]
    items: str
    batch: ForEachItemBatch = Field(default_factory=ForEachItemBatch)
    namespace: str
    flowId: str
    revision: int | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    labels: dict[str, str] | list[dict[str, str]] | None = None
    wait: bool = True
    transmitFailed: bool = True
    inheritLabels: bool = False
    scheduleDate: str | None = None
    restartBehavior: Literal["RETRY_FAILED", "NEW_EXECUTION"] = "RETRY_FAILED"

    def body(self) -> list[tuple[str, list[Task]]]:
        return []


FLOW_CALLS = (SubflowTask, ForEachItemTask)
"""Tasks that start executions of another flow (``namespace``, ``flowId``, ``revision``)."""


Task = (
    WorkingDirectoryTask
    | ScriptTask
    | CloneTask
    | LocalFilesTask
    | LogTask
    | ReturnTask
    | OutputValuesTask
    | FailTask
    | SequentialTask
    | AllowFailureTask
    | ParallelTask
    | IfTask
    | SwitchTask
    | ForEachTask
    | EachSequentialTask
    | EachParallelTask
    | DagTask
    | PauseTask
    | SubflowTask
    | ForEachItemTask
    | RequestTask
    | DownloadTask
    | KvSetTask
    | KvGetTask
    | KvGetKeysTask
    | KvDeleteTask
    | WebhookTask
    | MailSendTask
    | LabelsTask
    | ExitTask
    | AssertTask
    | WriteTask
    | SizeTask
    | ConcatTask
    | SplitTask
    | StorageDeleteTask
    | PurgeFilesTask
    | LogFetchTask
    | UploadFilesTask
    | DownloadFilesTask
    | DeleteFilesTask
    | LanguageCommandsTask
    | LanguageScriptTask
    | JBangScriptTask
    | TerraformTask
    | AnsibleTask
    | SqlMeshTask
    | ModalTask
    | SparkTask
    | AwsCliTask
    | TrivyTask
    | DbtCliTask
    | DbtCommandTask
    | JdbcQuery
    | JdbcQueries
    | JdbcBatch
    | PostgresCopyIn
    | PostgresCopyOut
    | CsvToIon
    | IonToCsv
    | JsonToIon
    | IonToJson
    | JsonToJsonl
    | IonToAvro
    | AvroToIon
    | IonToParquet
    | ParquetToIon
    | ExcelToIon
    | IonToExcel
    | ArchiveCompressTask
    | ArchiveDecompressTask
    | FileCompressTask
    | FileDecompressTask
    | S3Upload
    | S3Download
    | S3Downloads
    | S3List
    | S3Delete
    | S3Copy
    | RedisGet
    | RedisSet
    | RedisDelete
    | RedisIncrement
    | RedisListPush
    | RedisListPop
    | RedisPublish
    | PushTask
    | PushFlowsTask
    | PushNamespaceFilesTask
    | PushExecutionFilesTask
    | SyncFlowsTask
    | SyncNamespaceFilesTask
    | DockerBuildTask
    | DockerPushTask
    | DockerRunTask
    | TcpSendTask
    | UdpSendTask
    | GitLabIssueCreate
    | GitLabIssueSearch
    | GitLabMergeRequestCreate
    | JiraCreate
    | JiraCreateComment
    | JiraUpdateFields
    | N8nTriggerWorkflow
    | OdooQuery
)
AnyTask = Annotated[Task, Field(discriminator="type")]
SUPPORTED_TASK_TYPES: tuple[str, ...] = tuple(
    name for kind in get_args(Task) for name in get_args(kind.model_fields["type"].annotation)
)
"""Every ``type`` a flow may name: those of the models of :data:`Task`, the one list."""
ChildTask = AnyTask  # what a WorkingDirectory may hold is checked in flow.checks

INPUT_TYPES = (
    "STRING",
    "INT",
    "FLOAT",
    "BOOLEAN",
    "BOOL",
    "JSON",
    "FILE",
    "SELECT",
    "ENUM",
    "MULTISELECT",
    "DATETIME",
    "DATE",
    "TIME",
    "DURATION",
    "URI",
    "ARRAY",
    "YAML",
    "SECRET",
    "EMAIL",
)


class Input(Model):
    """A flow input: its type, default and whether it must be given."""

    id: str = Field(pattern=names.NAME)
    type: Literal[INPUT_TYPES]  # type: ignore[valid-type]
    description: str | None = None
    displayName: str | None = None
    defaults: Any = None
    required: bool = True
    values: list[str] | None = None
    validator: str | None = None
    min: float | None = None
    max: float | None = None
    itemType: str | None = None
    dependsOn: Any = None
    allowCustomValue: bool = False
    prefill: Any = None

    @model_validator(mode="before")
    @classmethod
    def _legacy_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and "name" in data and "id" not in data:
            data = {**data, "id": data["name"]}
            del data["name"]
        return data

    @model_validator(mode="after")
    def _choices(self) -> Input:
        if self.type in ("SELECT", "ENUM", "MULTISELECT") and not self.values:
            raise ValueError(f"a {self.type} input needs 'values'")
        return self


class PluginDefault(Model):
    """``pluginDefaults`` entry: values applied to every task whose type starts with ``type``."""

    type: str
    values: dict[str, Any]
    forced: bool = False


class Flow(Model):
    """A Kestra flow."""

    id: str = Field(pattern=names.NAME)
    namespace: str = Field(pattern=names.NAMESPACE)
    description: str | None = None
    labels: dict[str, str] | list[dict[str, str]] | None = None
    inputs: list[Input] = Field(default_factory=list)
    variables: dict[str, Any] = Field(default_factory=dict)
    tasks: list[AnyTask] = Field(min_length=1)
    errors: list[AnyTask] = Field(default_factory=list)
    finally_: list[AnyTask] = Field(default_factory=list, alias="finally")
    pluginDefaults: list[PluginDefault] = Field(default_factory=list)
    taskDefaults: list[PluginDefault] = Field(default_factory=list)
    # Acted on by the server (schedules, webhooks, the queue); `executor run` ignores them.
    triggers: list[AnyTrigger] | None = None
    concurrency: Concurrency | None = None
    outputs: list[dict[str, Any]] | None = None
    disabled: bool = False
    revision: int | None = None
    deleted: bool = False
    tenantId: str | None = None
    retry: Retry | None = None
    sla: list[dict[str, Any]] | None = None
    workerSelector: dict[str, Any] | None = None  # Kestra 2.0: the default of its tasks
    afterExecution: list[dict[str, Any]] | None = None

    @field_validator("triggers")
    @classmethod
    def _unique_trigger_ids(cls, triggers: list[AnyTrigger] | None) -> list[AnyTrigger] | None:
        seen: set[str] = set()
        for trigger in triggers or ():
            if trigger.id in seen:
                raise ValueError(f"trigger id '{trigger.id}' is used twice")
            seen.add(trigger.id)
        return triggers


for _model in (
    WorkingDirectoryTask,
    SequentialTask,
    AllowFailureTask,
    ParallelTask,
    IfTask,
    SwitchTask,
    ForEachTask,
    EachSequentialTask,
    EachParallelTask,
    DagNode,
    DagTask,
    PauseTask,
    Flow,
):
    _model.model_rebuild()
