"""What every script-shaped task shares: Kestra's ``AbstractExecScript`` and its container options.

Shell and Python tasks (:class:`executor.flow.model.ScriptTask`), the other languages'
``Commands``/``Script`` (:mod:`executor.flow.tasks_scripts`) and the CLI tasks (dbt, Terraform,
...: :mod:`executor.flow.tasks_cli`) are each one exec in the WorkingDirectory's container
model; they build on :class:`ExecScript` here.
"""

from __future__ import annotations

import shlex
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from executor.flow.base import Model, TaskBase, scalar_text
from executor.flow.durations import Duration
from executor.flow.vendors import vendor_service

PROCESS_RUNNER_TYPES = (
    "io.kestra.plugin.core.runner.Process",
    "io.kestra.core.models.tasks.runners.types.ProcessTaskRunner",
)
DOCKER_RUNNER_TYPES = ("io.kestra.plugin.scripts.runner.docker.Docker",)


class NamespaceFiles(Model):
    """Which namespace files seed the workspace."""

    enabled: bool = True
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    namespaces: list[str] | None = None
    folderPerNamespace: bool = False
    ifExists: Literal["OVERWRITE", "FAIL", "WARN", "IGNORE"] = "OVERWRITE"


class Credentials(Model):
    """Kestra's Docker ``credentials`` for a private registry; values may be ``{{ secret(...) }}``.

    They are rendered when the image is pulled, and every rendered value is masked.
    """

    registry: str | None = None
    username: str | None = None
    password: str | None = None
    auth: str | None = None
    registryToken: str | None = None
    identityToken: str | None = None


class DeviceRequestSpec(Model):
    """One of Kestra's Docker ``deviceRequests`` (what ``docker run --gpus`` asks for)."""

    driver: str | None = None
    count: int | None = Field(default=None, ge=-1)
    deviceIds: list[str] | None = None
    capabilities: list[list[str]] | None = None
    options: dict[str, str] | None = None


class DockerOptions(Model):
    """Container options from a Docker task runner or the legacy ``docker`` block."""

    image: str | None = None
    pullPolicy: Literal["IF_NOT_PRESENT", "ALWAYS", "NEVER"] = "IF_NOT_PRESENT"
    user: str | None = None
    entryPoint: list[str] | None = None
    networkMode: str | None = None
    shmSize: str | None = None
    cpu: dict[str, float] | None = None
    memory: dict[str, str] | None = None
    config: Any = None
    credentials: Credentials | None = None
    volumes: list[str] | None = None
    privileged: bool | None = None
    extraHosts: list[str] | None = None
    deviceRequests: list[DeviceRequestSpec] | None = None


class TaskRunner(DockerOptions):
    """``taskRunner``: Process (the WorkingDirectory's container) or Docker (an image)."""

    type: str
    delete: bool = True
    fileHandlingStrategy: str | None = None
    wait: bool = True
    resume: bool = True
    killGracePeriod: Duration | None = None

    @model_validator(mode="before")
    @classmethod
    def _known_runner(cls, data: Any) -> Any:
        # Before the fields: an unknown runner's own properties (a Kubernetes `namespace`)
        # would each be reported as a typo, burying the one problem.
        kind = data.get("type") if isinstance(data, dict) else None
        if isinstance(kind, str) and kind not in PROCESS_RUNNER_TYPES + DOCKER_RUNNER_TYPES:
            vendor = vendor_service(kind)
            needs = f" (the {vendor[0]} plugin needs {vendor[1]})" if vendor else ""
            raise ValueError(
                f"unsupported task runner {kind!r}{needs}; supported: "
                + ", ".join(PROCESS_RUNNER_TYPES + DOCKER_RUNNER_TYPES)
            )
        return data


class ScriptFile(Model):
    """How a ``Script`` task runs its ``script``: written to a file, then this command.

    Attributes:
        extension: the file's extension (``.js``).
        command: the command line, ``{path}`` standing for the file's absolute path.
        in_workspace: write the file into the workspace (as Kestra does: node resolves
            modules from the file's directory, Go runs only files of its module) rather than
            beside the exec's own records; it is removed when the exec ends.
    """

    extension: str
    command: str
    in_workspace: bool = False


class ExecScript(TaskBase):
    """Kestra's ``AbstractExecScript``: commands (or a script) in a container, one exec here."""

    commands: list[str] | None = None
    beforeCommands: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    interpreter: list[str] | str = Field(default_factory=lambda: ["/bin/sh", "-c"])
    warningOnStdErr: bool | None = None  # Kestra 0.23+: stderr alone is no warning
    failFast: bool = True
    containerImage: str | None = None
    docker: DockerOptions | None = None
    dockerOptions: DockerOptions | None = None
    taskRunner: TaskRunner | None = None
    runner: Literal["PROCESS", "DOCKER"] | None = None
    namespaceFiles: NamespaceFiles | None = None
    inputFiles: dict[str, str] | str | None = None
    outputFiles: list[str] | None = None
    outputDirectory: bool = False
    targetOS: Literal["LINUX", "WINDOWS", "AUTO"] | None = None
    beforeCommandsWithOptions: bool | None = None

    @field_validator("commands", "beforeCommands", mode="before")
    @classmethod
    def _unsplit_colon_commands(cls, value: Any) -> Any:
        # `- echo "a: b"` is a one-entry mapping in YAML; the author meant the line itself.
        if isinstance(value, list):
            return [
                f"{k}: {scalar_text(v)}"
                if isinstance(item, dict)
                and len(item) == 1
                and all(isinstance(x, str | int | float | bool) for x in (k, v))
                else item
                for item in value
                for k, v in (
                    [next(iter(item.items()))]
                    if isinstance(item, dict) and item
                    else [(None, None)]
                )
            ]
        return value

    @field_validator("env", mode="before")
    @classmethod
    def _env_strings(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: v if isinstance(v, str) else scalar_text(v) for k, v in value.items()}
        return value

    @property
    def command_line(self) -> list[str]:
        """The interpreter and its arguments."""
        if isinstance(self.interpreter, str):
            return [self.interpreter, "-c"]
        return list(self.interpreter)

    @property
    def output_globs(self) -> list[str]:
        """The globs whose files become ``outputFiles``."""
        return list(self.outputFiles or [])

    @property
    def command_list(self) -> list[str]:
        """The commands, as written."""
        return list(self.commands or [])

    @property
    def script_text(self) -> str | None:
        """The ``script`` of a Script task (``None`` for a Commands task)."""
        return getattr(self, "script", None)

    @property
    def script_file(self) -> ScriptFile | None:
        """How this task runs its ``script``, when it writes it to a file first."""
        return None

    @property
    def default_image(self) -> str | None:
        """Kestra's default image for this task; ``None``: the shell default."""
        return None

    @property
    def is_python(self) -> bool:
        return False

    def extra_env(self, workspace: str) -> dict[str, str]:
        """Variables Kestra sets for this kind of task (``PYTHONUNBUFFERED`` for dbt, ...)."""
        return {}

    @property
    def credential_env(self) -> dict[str, str]:
        """Variables from the task's own properties (templates, rendered when it runs), set
        before its ``env`` (which wins): the AWS CLI's keys, Modal's token."""
        return {}

    def make_dir_line(self, path: str) -> str:
        """A line of the task's interpreter that makes the directory ``path`` (and parents)."""
        return f"mkdir -p {shlex.quote(path)}"

    def remake_dir_line(self, path: str) -> str:
        """A line that makes ``path`` an empty directory (a retry starts from nothing)."""
        return f"rm -rf {shlex.quote(path)} && mkdir -p {shlex.quote(path)}"

    @property
    def fail_fast_lines(self) -> list[str]:
        """The first lines that stop the commands at the first failure (``failFast``)."""
        return ["set -e"] if self.fail_fast else []

    @property
    def docker_options(self) -> DockerOptions | None:
        """The container options, whichever of Kestra's forms gave them."""
        if self.taskRunner is not None and self.taskRunner.type in DOCKER_RUNNER_TYPES:
            return self.taskRunner
        return self.docker or self.dockerOptions

    @property
    def image(self) -> str | None:
        """The image this task asks for, or ``None`` for the WorkingDirectory's default."""
        if self.taskRunner is not None and self.taskRunner.type in PROCESS_RUNNER_TYPES:
            return None
        if self.runner == "PROCESS":
            return None
        opts = self.docker_options
        return self.containerImage or (opts.image if opts else None)

    @property
    def fail_fast(self) -> bool:
        return self.failFast


def needs_one_body(task: ExecScript, is_script: bool) -> None:
    """A Script takes ``script`` and no ``commands``; a Commands task the reverse.

    Raises:
        ValueError: the task has the wrong one, or neither.
    """
    script = task.script_text
    if is_script:
        if script is None:
            raise ValueError(f"{task.type.rsplit('.', 1)[-1]} needs 'script'")
        if task.commands is not None:
            raise ValueError("a Script task takes 'script', not 'commands'")
    elif task.commands is None:
        raise ValueError("a Commands task needs 'commands'")
    elif script is not None:
        raise ValueError("a Commands task takes 'commands', not 'script'")
