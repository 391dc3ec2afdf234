"""Task options that take a task out of its container's isolation and into the host.

A task's container has its own network namespace on the engine's default bridge, no device and
no host path but the read-only CA bundle; host tasks (HTTP, mail, git) talk to the network from
the executor's own process. These options reach past that, into the host:

* ``networkMode`` other than ``bridge``, ``default`` or ``none``: ``host`` shares the host's
  network stack (every service listening on its loopback); ``container:NAME`` joins another
  container's; any other name joins that engine network and the containers on it.
* ``deviceRequests``: host devices (GPUs) given to the container.
* ``io.kestra.plugin.docker.Build`` and ``docker.Push``: they act on the engine's images, which
  every flow shares: a build may tag over an image that other flows run (a base image of this
  executor included), and a push may send any image the engine holds to any registry.
* ``io.kestra.plugin.git.Clone`` (and the GitOps tasks: ``Push``, ``PushFlows``, ``SyncFlows``,
  ...) of a ``file://`` URL: git runs on the host, so it reads (and a push writes) the host's own
  repositories (the URL is checked again once rendered, and submodules never use ``file://``
  unless allowed).

``executor run`` on one's own machine keeps them: whoever runs it can reach the host anyway.
``executor server`` (and its workers) refuse them unless its configuration allows them, when a
flow is saved or validated, when an execution is created, and again when it runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from executor.errors import FlowError, FlowValidationError
from executor.flow.loaded import LoadedFlow
from executor.flow.model import CloneTask
from executor.flow.tasks_docker import DockerBuildTask, DockerPushTask
from executor.flow.tasks_exec import ExecScript
from executor.flow.tasks_git import GitConnection
from executor.flow.walk import walk

ISOLATED_NETWORKS = frozenset({"bridge", "default", "none"})
HOW_TO_ALLOW = (
    "this server refuses options that open the host unless its configuration allows them "
    "(allowHostOptions: true in server.yaml, or EXECUTOR_SERVER_ALLOW_HOST_OPTIONS=true)"
)


@dataclass(frozen=True)
class HostOpening:
    """One option of one task that reaches the host, and what it opens."""

    task_id: str
    option: str
    opens: str

    def reason(self) -> str:
        return f"{self.option} opens the host ({self.opens}); {HOW_TO_ALLOW}"


def network_opening(mode: str | None) -> str | None:
    """What a ``networkMode`` opens, or ``None`` when the container stays isolated."""
    if not mode or mode in ISOLATED_NETWORKS:
        return None
    if mode == "host":
        return "the container shares the host's network, every service on its loopback included"
    if mode.startswith("container:"):
        return "the container joins the network stack of another container on the engine"
    return f"the container joins the engine's network {mode!r} and the containers on it"


def is_local_git_url(url: str) -> bool:
    """Whether a Clone URL reads the host's own files (``file://``)."""
    return url.strip().lower().startswith("file:")


def host_openings(loaded: LoadedFlow) -> list[HostOpening]:
    """Every option of the flow's tasks that reaches the host (a templated Clone URL is only
    known once rendered: ``check_git_url`` then)."""
    found: list[HostOpening] = []
    for visit in walk(loaded.flow):
        task = visit.task
        if isinstance(task, ExecScript):  # every script-shaped task, docker.Run included
            opts = task.docker_options
            if opts is None:
                continue
            opens = network_opening(opts.networkMode)
            if opens is not None:
                found.append(HostOpening(task.id, f"networkMode: {opts.networkMode}", opens))
            if opts.deviceRequests:
                found.append(
                    HostOpening(task.id, "deviceRequests", "the container gets the host's devices")
                )
        elif isinstance(task, DockerBuildTask | DockerPushTask):
            found.append(HostOpening(task.id, f"type: {task.type}", _ENGINE_IMAGES))
        elif isinstance(task, CloneTask | GitConnection) and is_local_git_url(task.url or ""):
            found.append(HostOpening(task.id, f"url: {task.url}", _LOCAL_CLONE))
    return found


_ENGINE_IMAGES = (
    "images are built and pushed on the engine every flow shares: a build may tag over an image"
    " other flows run, and a push may send any image the engine holds to any registry"
)
_LOCAL_CLONE = "git runs on the host: a file:// URL reads the host's own repositories"


def refuse_host_openings(loaded: LoadedFlow, allowed: bool) -> None:
    """Refuse a flow whose tasks reach the host, unless ``allowed``.

    Raises:
        FlowValidationError: one problem per option, each naming its task.
    """
    if allowed:
        return
    found = host_openings(loaded)
    if found:
        raise FlowValidationError([f"{loaded.task_where(o.task_id)}: {o.reason()}" for o in found])


def check_git_url(url: str, allowed: bool, where: str | None = None) -> None:
    """Refuse a rendered Clone URL that reads the host, unless ``allowed``.

    Raises:
        FlowError: a ``file://`` URL where host options are refused.
    """
    if not allowed and is_local_git_url(url):
        raise FlowError(f"url: {url} opens the host ({_LOCAL_CLONE}); {HOW_TO_ALLOW}", where=where)
