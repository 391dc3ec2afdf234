"""The Docker backend: a :class:`~executor.engine.api.ContainerEngine` on the docker SDK's
low-level API.

Volumes, containers, archives and labelled resources are here; a task's exec is in ``exec``,
images in ``images``, how a container is made in ``containers``, connecting and the one place
Docker's errors become ours in ``client``. ``ContainerBackend`` adds WorkingDirectories.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, cast

import docker.errors

from executor.engine.api import (
    Backend,
    BackendClass,
    BuildRequest,
    Capabilities,
    ContainerEngine,
    ContainerSpec,
    Exec,
    ExecRequest,
    ImageCommand,
    ImageStore,
    RegistryAuth,
    Resource,
)
from executor.engine.containers import ContainerBackend
from executor.engine.docker import containers
from executor.engine.docker.archive import Body, open_unframed, sdk_archive
from executor.engine.docker.client import (
    DEFAULT_SOCKET,
    LOCAL_BASE_URL,
    RetryPolicy,
    connect,
    describe,
    translated,
)
from executor.engine.docker.exec import Execs
from executor.engine.docker.images import DockerImages
from executor.errors import EngineError
from executor.settings import Settings

ARCHIVE_CHUNK = 1024 * 1024
CONFLICT = 409


class DockerBackend(ContainerBackend):
    """Talks to a Docker engine through the docker SDK's low-level API.

    Args:
        client: a connected ``docker.DockerClient`` (see :meth:`from_settings`).
        retry: how transient engine errors are retried.
        address: the engine's address, as errors name it.
    """

    address: str

    def __init__(
        self, client: Any, retry: RetryPolicy | None = None, address: str | None = None
    ) -> None:
        self._client = client
        self._api = client.api
        self.address = address or DEFAULT_SOCKET
        self._retry = (retry or RetryPolicy()).for_engine(self.address)
        self._execs = Execs(self._api, self._retry, self.address)
        self._images = DockerImages(client, self._retry, self.address)
        self._capabilities: Capabilities | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> DockerBackend:
        """Connect to ``settings.docker_host`` (raises EngineUnavailable)."""
        retry = RetryPolicy(settings.engine_retry_attempts, settings.engine_retry_wait_seconds)
        return cls(connect(settings.docker_host), retry, settings.docker_host)

    @classmethod
    def describe(cls, settings: Settings, timeout: float) -> dict[str, str]:
        """Address, version and API version of the engine (a readiness answer's details)."""
        return describe(settings.docker_host, timeout)

    @property
    def capabilities(self) -> Capabilities:
        """A remote engine's volumes are not this host's directories (no host directories, no
        volume paths); a local engine mounts this host's directories only when it runs beside
        us and this process is root (asked once, when first needed)."""
        if self._capabilities is None:
            local = self._api.base_url == LOCAL_BASE_URL
            self._capabilities = Capabilities(
                host_directory=local and self._mounts_host_dirs(),
                host_volume_path=local,
                admin_exec=True,
                image_build=True,
            )
        return self._capabilities

    def _mounts_host_dirs(self) -> bool:
        """Whether the engine can mount this process's directories: it runs beside us, we
        are root.

        Root, because what containers write in a directory mounted from here belongs to
        root, and this process must be able to remove it. Beside us: on a local socket, the
        engine names our host and its data directory is one we see. A process in a container
        on the host's socket (a worker of compose.yaml) fails that test: its paths are not the
        host's. A process in the same container as its engine (a CI machine) passes it.
        """
        return os.geteuid() == 0 and containers.engine_beside_us(self._api)

    def ping(self) -> None:
        self._retry.call("ping the engine", self._api.ping)

    def engine_id(self) -> str:
        """The engine's own id (``docker info``'s ID): which host's engine runs our containers."""
        info = self._retry.call("read the engine's id", self._api.info)
        return str(info.get("ID") or "")

    # ----- images

    def image_id(self, ref: str) -> str | None:
        return self._images.image_id(ref)

    def pull(self, ref: str, auth: RegistryAuth | None = None) -> str:
        return self._images.pull(ref, auth)

    def repo_digest(self, ref: str, image_id: str) -> str | None:
        return self._images.repo_digest(ref, image_id)

    def image_command(self, image: str) -> ImageCommand:
        return self._images.image_command(image)

    def image_user(self, image: str) -> str:
        return self._images.image_user(image)

    def build_task_image(self, request: BuildRequest, on_line: Callable[[str], None]) -> str:
        """A task's ``docker.Build`` on this engine (see ``DockerImages.build_task_image``)."""
        return self._images.build_task_image(request, on_line)

    def push_image(
        self, ref: str, auth: RegistryAuth | None, on_line: Callable[[str], None]
    ) -> str | None:
        """Push ``ref`` with ``auth``; the registry's digest. Credentials never reach a message.

        Raises:
            ImageError: the registry or the engine refused it.
        """
        return self._images.push(ref, auth, on_line)

    def image_store(self) -> ImageStore:
        return self._images

    # ----- volumes and containers

    def create_volume(
        self, labels: Mapping[str, str], options: Mapping[str, str] | None = None
    ) -> str:
        name = f"executor-ws-{uuid.uuid4().hex[:12]}"
        opts = dict(options) if options else None
        self._retry.call(
            "create volume",
            lambda: self._api.create_volume(
                name, driver="local" if opts else None, driver_opts=opts, labels=dict(labels)
            ),
        )
        return name

    def remove_volume(self, name: str) -> None:
        def remove() -> None:
            with contextlib.suppress(docker.errors.NotFound):
                self._api.remove_volume(name, force=True)

        self._retry.call(f"remove volume {name}", remove)

    def volume_path(self, name: str) -> Path | None:
        """Where a plain local volume's files are on this host, when the engine runs here.

        ``None`` for a remote engine (anything but the local unix socket), a volume with a
        driver or options of its own, or a directory this process may not read. An overlay
        volume (see ``ContainerWorkdir.layer_over``) counts while the engine has it mounted.
        """
        if not self.capabilities.host_volume_path:
            return None
        try:
            with translated(f"inspect volume {name}", self.address):
                info = self._api.inspect_volume(name)
        except EngineError:
            return None
        options = info.get("Options") or {}
        if info.get("Driver") != "local":
            return None
        path = Path(info.get("Mountpoint") or "")
        if options and (options.get("type") != "overlay" or not os.path.ismount(path)):
            return None
        readable = path.is_absolute() and path.is_dir() and os.access(path, os.R_OK | os.X_OK)
        return path if readable else None

    def start_container(self, spec: ContainerSpec) -> str:
        host_config = containers.host_config(self._api, spec)

        def create() -> str:
            created = self._api.create_container(
                spec.image,
                command=["-c", containers.KEEPALIVE],
                entrypoint=["/bin/sh"],
                working_dir=spec.workspace,
                labels=dict(spec.labels),
                environment=dict(spec.env),
                host_config=host_config,
                name=f"executor-{uuid.uuid4().hex[:12]}",
            )
            return str(created["Id"])

        container_id = self._retry.call(f"create container of {spec.image}", create)
        try:
            self._retry.call(
                "install the exec wrapper",
                lambda: self._api.put_archive(container_id, "/", containers.record_tar(spec.files)),
            )
            self._retry.call(
                "start container", lambda: containers.start(self._api, container_id, spec)
            )
        except BaseException:
            self.remove_container(container_id)
            raise
        return container_id

    def remove_container(self, container_id: str) -> None:
        def remove() -> None:
            try:
                self._api.remove_container(container_id, force=True, v=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                if exc.status_code != CONFLICT:  # a removal already under way: it goes on
                    raise

        self._retry.call(f"remove container {container_id[:12]}", remove)

    def exec(self, container_id: str, request: ExecRequest) -> Exec:
        return self._execs.start(container_id, request)

    def run_root(self, container_id: str, argv: list[str]) -> tuple[int, str]:
        """A short root exec (ownership fixes, passwd entries, listings).

        Bytes that are not UTF-8 are kept as surrogates (file names must survive a listing).
        """
        return self._execs.run_as(container_id, argv, "0", "surrogateescape")

    def run_as(self, container_id: str, argv: list[str], user: str) -> tuple[int, str]:
        """A short exec as ``user`` (the container's default when empty): (code, output)."""
        return self._execs.run_as(container_id, argv, user)

    # ----- archives

    def put_archive(self, container_id: str, path: str, data: IO[bytes] | bytes) -> None:
        ok = self._retry.call(
            f"copy into {path}", lambda: self._api.put_archive(container_id, path, data)
        )
        if not ok:
            raise EngineError(f"the engine refused the archive for {path}")

    def get_archive(
        self, container_id: str, path: str, buffer: bytearray | None = None
    ) -> Iterator[bytes]:
        """The archive of ``path`` in chunks of up to 1 MiB (``len(buffer)`` when given).

        Without ``buffer`` each chunk is a fresh buffer (a caller may queue them); with it,
        every chunk is a view of ``buffer``, valid until the next one is asked for: nothing is
        allocated, zeroed or faulted in per chunk. The body comes unframed (see
        :mod:`executor.engine.archive`), each chunk one read straight into its buffer.
        """

        def open_body() -> Body:
            body = open_unframed(self._api, container_id, path)
            return body if body is not None else sdk_archive(self._api, container_id, path)

        body = self._retry.call(f"copy out of {path}", open_body)
        # Closing the body ends the engine's copy at once (a stream left unread on Ctrl-C or a
        # full disk kept it going and the container locked for minutes).
        with translated(f"copy out of {path}", self.address), contextlib.closing(body):
            view = memoryview(buffer) if buffer is not None else None
            while True:
                chunk = buffer if buffer is not None else bytearray(ARCHIVE_CHUNK)
                size = body.readinto(chunk)
                if not size:
                    return
                if view is not None:
                    yield cast(bytes, view[:size])  # read like bytes everywhere
                    continue
                if size < len(chunk):
                    del chunk[size:]
                yield cast(bytes, chunk)  # copying it would cost

    # ----- what carries our labels

    def list_resources(self, label_filter: Mapping[str, str | None]) -> list[Resource]:
        labels = [k if v is None else f"{k}={v}" for k, v in label_filter.items()]
        found: list[Resource] = []
        containers = self._retry.call(
            "list containers", lambda: self._api.containers(all=True, filters={"label": labels})
        )
        for c in containers:
            found.append(
                Resource("container", c["Id"], c["Names"][0].lstrip("/"), c["Labels"] or {})
            )
        volumes = self._retry.call(
            "list volumes", lambda: self._api.volumes(filters={"label": labels})
        )
        for v in volumes.get("Volumes") or []:
            found.append(Resource("volume", v["Name"], v["Name"], v.get("Labels") or {}))
        networks = self._retry.call(
            "list networks", lambda: self._api.networks(filters={"label": labels})
        )
        for n in networks:
            found.append(Resource("network", n["Id"], n["Name"], n.get("Labels") or {}))
        return found

    def remove_resource(self, resource: Resource) -> None:
        if resource.kind == "container":
            self.remove_container(resource.id)
        elif resource.kind == "volume":
            self.remove_volume(resource.name)
        else:
            self._retry.call(
                f"remove network {resource.name}", lambda: self._api.remove_network(resource.id)
            )


def _check(docker: DockerBackend) -> tuple[ContainerEngine, Backend, BackendClass]:
    return docker, docker, DockerBackend  # mypy: the Docker backend satisfies the protocols
