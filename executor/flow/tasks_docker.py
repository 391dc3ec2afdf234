"""``io.kestra.plugin.docker.Build`` and ``docker.Push``: images built on, and pushed from, the
engine that runs the tasks (Kestra's plugin-docker names and defaults); ``docker.Run``: a
container's own command, on the workspace."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from executor.flow.base import Model, TaskBase
from executor.flow.tasks_exec import Credentials, DeviceRequestSpec, DockerOptions, ExecScript

BUILD_TYPES = ("io.kestra.plugin.docker.Build",)
PUSH_IMAGE_TYPES = ("io.kestra.plugin.docker.Push",)
RUN_TYPES = ("io.kestra.plugin.docker.Run",)
DOCKER_TYPES = BUILD_TYPES + PUSH_IMAGE_TYPES + RUN_TYPES

Flag = bool | str
Texts = list[str] | str


class RegistryCredentials(Model):
    """``credentials`` of a private registry; values may be ``{{ secret(...) }}``."""

    registry: str | None = None
    username: str | None = None
    password: str | None = None
    auth: str | None = None
    registryToken: str | None = None
    identityToken: str | None = None


class DockerTaskBase(TaskBase):
    """What Kestra's ``AbstractDocker`` tasks share."""

    host: str | None = None  # another engine: refused when set (this executor has one)
    config: dict[str, Any] | str | None = None  # a Docker config file: accepted, not read
    credentials: RegistryCredentials | None = None


class BuildNamespaceFiles(Model):
    enabled: Flag = True
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)


class DockerBuildTask(DockerTaskBase):
    type: Literal[BUILD_TYPES]  # type: ignore[valid-type]
    dockerfile: str
    tags: Texts
    platforms: Texts | None = None
    buildArgs: dict[str, str] | None = None
    labels: dict[str, str] | None = None
    push: Flag = False
    pull: Flag = True
    inputFiles: dict[str, str] | str | None = None
    namespaceFiles: BuildNamespaceFiles | None = None


class DockerPushTask(DockerTaskBase):
    type: Literal[PUSH_IMAGE_TYPES]  # type: ignore[valid-type]
    tags: Texts


# What the script tasks take and Kestra's docker.Run does not: refused by name, not as typos of
# fields this model inherits from ExecScript.
_NOT_RUN_PROPERTIES = (
    "beforeCommands",
    "interpreter",
    "failFast",
    "docker",
    "dockerOptions",
    "taskRunner",
    "runner",
    "outputDirectory",
    "targetOS",
    "beforeCommandsWithOptions",
)


class DockerRunTask(ExecScript):
    """``docker.Run``: a container of ``containerImage`` running ``commands`` as its arguments.

    Kestra starts the container with the image's entrypoint (or ``entryPoint``) and ``commands``
    as its CMD (the image's own CMD when there are none). Here it is one exec of that argv in the
    WorkingDirectory's container for the image, on the shared workspace: a WorkingDirectory of
    one task when it stands alone. :mod:`executor.run.handlers.docker_run` builds the argv.
    """

    type: Literal[RUN_TYPES]  # type: ignore[valid-type]
    containerImage: str
    host: str | None = None  # another engine: refused when set (this executor has one)
    config: dict[str, Any] | str | None = None  # a Docker config file: accepted, not read
    credentials: Credentials | None = None
    user: str | None = None
    entryPoint: list[str] | None = None
    extraHosts: list[str] | None = None
    networkMode: str | None = None
    portBindings: list[str] | None = None
    volumes: list[str] | None = None
    pullPolicy: Literal["IF_NOT_PRESENT", "ALWAYS", "NEVER"] = "IF_NOT_PRESENT"
    deviceRequests: list[DeviceRequestSpec] | None = None
    cpu: dict[str, float] | None = None
    memory: dict[str, str] | None = None
    shmSize: str | None = None
    privileged: bool | None = None
    wait: bool = True

    @model_validator(mode="before")
    @classmethod
    def _only_run_properties(cls, data: Any) -> Any:
        if isinstance(data, dict):
            given = [name for name in _NOT_RUN_PROPERTIES if name in data]
            if given:
                raise ValueError(
                    f"{', '.join(given)}: not a property of docker.Run (its 'commands' are the"
                    " container's arguments; a shell task takes these)"
                )
        return data

    @model_validator(mode="after")
    def _runnable_here(self) -> DockerRunTask:
        if not self.wait:
            raise ValueError(
                "wait: false leaves the container running after the task; here every container"
                " a task starts is removed when the task ends"
            )
        if self.portBindings:
            raise ValueError(
                "portBindings: a task's container publishes no port on the host here; reach"
                " a service from the tasks of the same WorkingDirectory instead"
            )
        return self

    @property
    def docker_options(self) -> DockerOptions:
        """The container options, from docker.Run's own properties."""
        return DockerOptions(
            pullPolicy=self.pullPolicy,
            user=self.user,
            entryPoint=self.entryPoint,
            networkMode=self.networkMode,
            shmSize=self.shmSize,
            cpu=self.cpu,
            memory=self.memory,
            config=self.config,
            credentials=self.credentials,
            volumes=self.volumes,
            privileged=self.privileged,
            extraHosts=self.extraHosts,
            deviceRequests=self.deviceRequests,
        )

    @property
    def image(self) -> str:
        return self.containerImage

    @property
    def fail_fast_lines(self) -> list[str]:
        return []  # one command: it runs under `exec`, its exit code is the task's
