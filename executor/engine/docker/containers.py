"""Docker containers made to be a WorkingDirectory's: a keepalive under an init, the exec
wrapper and the executor's files installed before start, Kestra's Docker options as host config.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import docker.errors
import docker.types

from executor.engine.api import ContainerSpec
from executor.engine.container_paths import ROOT, RUNS, WRAPPER
from executor.errors import EngineError
from executor.tar_writer import Entry, tar_bytes

KEEPALIVE = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"


def wrapper_source() -> bytes:
    return resources.files("executor.engine.docker").joinpath("wrapper.sh").read_bytes()


def record_tar(files: Mapping[str, bytes]) -> bytes:
    """The executor's own directory, world-writable and sticky so any task user can record in
    it, with the exec wrapper and ``files`` (absolute paths) in it."""
    entries = [Entry(d.lstrip("/"), "dir", mode=0o1777) for d in (ROOT, RUNS)]
    made = {ROOT, RUNS}
    for path, data in {WRAPPER: wrapper_source(), **files}.items():
        parent = path.rsplit("/", 1)[0]
        if parent and parent not in made:
            entries.append(Entry(parent.lstrip("/"), "dir", mode=0o755))
            made.add(parent)
        entries.append(Entry.inline(path.lstrip("/"), data, mode=0o755))
    return tar_bytes(entries)


def host_config(api: Any, spec: ContainerSpec) -> Any:
    """The host config of a WorkingDirectory's container: an init as PID 1, the workspace
    volume, read-only binds, and the limits the task asked for."""
    return api.create_host_config(
        init=True,
        binds={
            spec.volume: {"bind": spec.workspace, "mode": "rw"},
            **{
                host: {"bind": inside, "mode": "ro"}
                for host, inside in spec.read_only_binds.items()
            },
        },
        nano_cpus=int(spec.cpus * 1e9) if spec.cpus else None,
        mem_limit=memory_bytes(spec.memory) if spec.memory else None,
        shm_size=spec.shm_size,
        network_mode=spec.network_mode,
        **limits(spec),
    )


def engine_beside_us(api: Any) -> bool:
    """Whether the engine answering ``api`` runs with this process's files: it names our host,
    and its data directory is here."""
    try:
        info = api.info()
    except docker.errors.DockerException:
        return False
    root = str(info.get("DockerRootDir") or "")
    return info.get("Name") == socket.gethostname() and bool(root) and Path(root).is_dir()


def limits(spec: ContainerSpec) -> dict[str, Any]:
    """The host config beyond the basics: swap, pids limit and devices (GPUs), when asked for."""
    found: dict[str, Any] = {}
    if spec.memory_swap:
        swap = spec.memory_swap.strip()
        found["memswap_limit"] = -1 if swap == "-1" else memory_bytes(swap)
    if spec.pids_limit:
        found["pids_limit"] = spec.pids_limit
    if spec.device_requests:
        found["device_requests"] = [
            docker.types.DeviceRequest(
                driver=r.driver,
                count=r.count,
                device_ids=list(r.device_ids),
                capabilities=[list(c) for c in r.capabilities],
                options=dict(r.options),
            )
            for r in spec.device_requests
        ]
    return found


def start(api: Any, container_id: str, spec: ContainerSpec) -> None:
    """Start the container; an engine that cannot give it the devices asked for says so."""
    try:
        api.start(container_id)
    except docker.errors.APIError as exc:
        if spec.device_requests and "device driver" in str(exc):
            # Not transient: no retry will give the engine a GPU runtime.
            raise EngineError(
                "the Docker engine cannot give the container the devices in deviceRequests: "
                f"it has no GPU runtime for them ({exc.explanation or exc}); install the "
                "vendor's container toolkit (e.g. nvidia-container-toolkit) on the engine's host"
            ) from exc
        raise


def memory_bytes(text: str) -> int:
    units = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
    t = text.strip().lower().rstrip("ib")
    if t and t[-1] in units:
        return int(float(t[:-1]) * units[t[-1]])
    return int(float(t))
