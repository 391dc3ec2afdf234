"""Connecting to the Docker engine, and the one place Docker's errors become ours."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import docker
import docker.errors
import requests.exceptions
import urllib3.exceptions
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from executor.errors import (
    EngineError,
    EngineLost,
    EngineUnavailable,
    ImageError,
    TransientEngineError,
)

T = TypeVar("T")

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
LOCAL_BASE_URL = "http+docker://localhost"  # the SDK's address of a local unix socket

HOW_TO_START = (
    "start an engine with `make engine` (or `sudo dockerd &`), or point DOCKER_HOST at one"
)


def connect(docker_host: str | None, timeout: float = 60) -> Any:
    """Return a ``docker.DockerClient`` that answered a ping.

    Raises:
        EngineUnavailable: nothing answers at the address, naming it and how to start one.
    """
    address = docker_host or DEFAULT_SOCKET
    try:
        client = docker.DockerClient(base_url=address, version="auto", timeout=int(timeout))
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        raise EngineUnavailable(
            f"no Docker engine answers at {address} ({_short(exc)}); {HOW_TO_START}"
        ) from exc
    return client


def describe(docker_host: str | None, timeout: float) -> dict[str, str]:
    """Ask the engine who it is, waiting at most ``timeout`` seconds for each answer.

    Returns:
        The engine's address, version and API version (a readiness answer's details).

    Raises:
        EngineUnavailable: nothing answers at the address (refused, gone, or too slow).
    """
    address = docker_host or DEFAULT_SOCKET
    client = connect(docker_host, timeout=max(timeout, 1))
    try:
        with translated("asking the engine its version", address):
            found = client.version()
    except EngineError as exc:
        raise EngineUnavailable(f"the engine at {address} does not answer ({exc})") from exc
    finally:
        client.close()
    return {
        "address": address,
        "version": str(found.get("Version", "")),
        "apiVersion": str(found.get("ApiVersion", "")),
    }


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def is_lost(exc: BaseException) -> bool:
    """Whether the engine stopped answering: refused, reset, aborted, or its socket is gone."""
    if isinstance(exc, requests.exceptions.Timeout):
        return False
    return isinstance(
        exc,
        requests.exceptions.ConnectionError
        | urllib3.exceptions.ProtocolError
        | ConnectionError
        | FileNotFoundError,
    )


def lost_because(exc: BaseException) -> str:
    """The transport's reason for a lost engine, in a few plain words."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:  # the root cause names it best
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return "connection refused"
        if isinstance(current, FileNotFoundError):
            return "its socket is gone"
        if isinstance(current, ConnectionResetError):
            return "connection reset"
        nested = [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
        current = current.__cause__ or current.__context__ or (nested[-1] if nested else None)
    return "connection lost"


def is_transient(exc: BaseException) -> bool:
    """Whether an engine error is worth retrying (connection trouble, 5xx, timeouts)."""
    if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
        return True
    if isinstance(exc, docker.errors.APIError) and not isinstance(exc, docker.errors.NotFound):
        return (exc.status_code or 0) >= 500
    return False


@contextmanager
def translated(action: str, address: str = DEFAULT_SOCKET) -> Iterator[None]:
    """Turn Docker and transport errors raised inside into ours, naming ``action``.

    An engine that stops answering (refused, reset, socket gone) becomes
    :class:`EngineLost` naming ``address``; no docker-py or urllib3 text goes further.
    """
    try:
        yield
    except (EngineError, ImageError):
        raise
    except docker.errors.ImageNotFound as exc:
        raise ImageError(f"{action}: image not found ({_short(exc)})") from exc
    except (
        docker.errors.DockerException,
        requests.exceptions.RequestException,
        urllib3.exceptions.HTTPError,
        OSError,
    ) as exc:
        if is_lost(exc):
            raise EngineLost(address, lost_because(exc)) from exc
        if is_transient(exc):
            raise TransientEngineError(f"{action}: {_short(exc)}") from exc
        raise EngineError(f"{action}: {_short(exc)}") from exc


class RetryPolicy:
    """Retries transient engine errors only; built from settings so tests can pass zero waits."""

    def __init__(
        self,
        attempts: int = 4,
        first_wait: float = 0.5,
        max_wait: float = 8.0,
        address: str = DEFAULT_SOCKET,
    ) -> None:
        self.attempts = max(1, attempts)
        self.first_wait = first_wait
        self.max_wait = max_wait
        self.address = address

    def for_engine(self, address: str) -> RetryPolicy:
        """The same policy, naming the engine at ``address`` in the errors it raises."""
        return RetryPolicy(self.attempts, self.first_wait, self.max_wait, address)

    def call(self, action: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` with Docker errors translated, retrying the transient ones."""

        def attempt() -> T:
            with translated(action, self.address):
                return fn()

        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.first_wait, max=self.max_wait),
            retry=retry_if_exception_type((TransientEngineError, EngineLost)),
            reraise=True,
        )
        return retrying(attempt)
