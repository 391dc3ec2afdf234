"""``io.kestra.plugin.docker.Build`` and ``docker.Push``: images built on, and pushed from, the
engine that runs the tasks (Kestra's plugin-docker names and defaults)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from executor.flow.base import Model, TaskBase

BUILD_TYPES = ("io.kestra.plugin.docker.Build",)
PUSH_IMAGE_TYPES = ("io.kestra.plugin.docker.Push",)
DOCKER_TYPES = BUILD_TYPES + PUSH_IMAGE_TYPES

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
