"""How the server is configured: bind address, slots, users and tokens, body limits.

Read once at start from the command line, ``EXECUTOR_SERVER_*`` variables and an optional YAML
file (``EXECUTOR_SERVER_CONFIG``, default ``$EXECUTOR_HOME/server.yaml``)::

    users:                 # basic auth, as Kestra's clients send KESTRA_USER/KESTRA_PASSWORD
      - username: alice
        password: s3cret
    tokens: [a-long-random-token]   # bearer tokens (KESTRA_API_TOKEN)
    workerTokens: [another-token]   # what `executor worker --token` sends; never an API credential
    maxBodyBytes: 67108864

The rules that matter (:meth:`ServerConfig.check_bind`): binding anything but a loopback address
without a user or a token is refused, so a server is never open to a network by accident; and
``--broker`` without a worker token is refused, on loopback too, since workers are admitted only
with their own credential, never an API user's.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from executor.errors import ServerConfigError

DEFAULT_PORT = 8080
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_FLOW_BYTES = 1024 * 1024


def default_workers() -> int:
    """Execution slots by default: one per CPU, at least two (a paused run holds one)."""
    return max(2, os.cpu_count() or 1)


@dataclass(frozen=True)
class ServerConfig:
    """Everything the server needs beyond the executor's own settings.

    Attributes:
        host: address to bind (default loopback).
        port: TCP port.
        workers: execution slots (executions that run at once).
        users: basic-auth user name -> password.
        tokens: accepted bearer tokens.
        max_body_bytes: the largest request body accepted (413 past it).
        max_flow_bytes: the largest flow source accepted.
        broker: a Celery broker URL (``redis://...``): executions go to ``executor worker``
            processes through it instead of running in this process's slots.
        worker_tokens: the bearer tokens ``executor worker`` sends on ``/api/v1/worker/...``
            (the only credential those routes accept; not accepted anywhere else).
    """

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    workers: int = field(default_factory=default_workers)
    users: Mapping[str, str] = field(default_factory=dict)
    tokens: frozenset[str] = frozenset()
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_flow_bytes: int = DEFAULT_MAX_FLOW_BYTES
    broker: str | None = None
    worker_tokens: frozenset[str] = frozenset()

    @property
    def auth_required(self) -> bool:
        return bool(self.users or self.tokens)

    def check_bind(self) -> None:
        """Refuse an open bind without authentication, and workers without their credential.

        Raises:
            ServerConfigError: ``host`` is not loopback and no user or token is configured; or
                ``broker`` is set and no worker token is.
        """
        if self.broker and not self.worker_tokens:
            raise ServerConfigError(
                "--broker: workers need their own credential. Set a worker token "
                "(EXECUTOR_SERVER_WORKER_TOKENS=..., or workerTokens in server.yaml) and give "
                "each worker the same one (executor worker --token, or EXECUTOR_WORKER_TOKEN)"
            )
        if is_loopback(self.host) or self.auth_required:
            return
        raise ServerConfigError(
            f"refusing to listen on {self.host}: anyone who reaches it could run containers. "
            "Configure a user (EXECUTOR_SERVER_USERS=name:password) or a token "
            "(EXECUTOR_SERVER_TOKENS=...), or the users/tokens of server.yaml; "
            "or bind 127.0.0.1"
        )

    @classmethod
    def load(
        cls,
        home: Path,
        env: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> ServerConfig:
        """The configuration from the file, then the environment, then ``overrides`` (CLI).

        Raises:
            ServerConfigError: the file or a variable cannot be understood.
        """
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        path = Path(env.get("EXECUTOR_SERVER_CONFIG") or home / "server.yaml")
        if path.exists() or env.get("EXECUTOR_SERVER_CONFIG"):
            values.update(_from_file(path))
        values.update(_from_env(env))
        values.update({k: v for k, v in overrides.items() if v is not None})
        config = cls(**values)
        if config.worker_tokens & config.tokens:
            raise ServerConfigError(
                "a worker token is also an API token: give workers a credential of their own"
            )
        if config.broker is not None and not config.broker.startswith(("redis://", "rediss://")):
            raise ServerConfigError(
                f"--broker {config.broker!r}: expected a Redis URL (redis://host:port/db)"
            )
        if config.workers < 1 or not 0 <= config.port < 65536 or config.max_body_bytes < 1:
            raise ServerConfigError(
                f"workers must be >= 1 (got {config.workers}), port 0-65535 (got {config.port})"
                f" and maxBodyBytes >= 1 (got {config.max_body_bytes})"
            )
        return config


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (``localhost`` counts)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _from_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ServerConfigError(f"{path}: cannot read the server configuration: {exc}") from None
    if not isinstance(data, dict):
        raise ServerConfigError(f"{path}: expected a mapping (users, tokens, maxBodyBytes)")
    values: dict[str, Any] = {}
    users = data.get("users") or []
    if not isinstance(users, list) or not all(
        isinstance(u, dict) and u.get("username") and u.get("password") for u in users
    ):
        raise ServerConfigError(f"{path}: users is a list of {{username, password}}")
    if users:
        values["users"] = {str(u["username"]): str(u["password"]) for u in users}
    tokens = data.get("tokens") or []
    if not isinstance(tokens, list):
        raise ServerConfigError(f"{path}: tokens is a list of strings")
    if tokens:
        values["tokens"] = frozenset(str(t) for t in tokens)
    worker_tokens = data.get("workerTokens") or []
    if not isinstance(worker_tokens, list):
        raise ServerConfigError(f"{path}: workerTokens is a list of strings")
    if worker_tokens:
        values["worker_tokens"] = frozenset(str(t) for t in worker_tokens)
    for key, name in (("maxBodyBytes", "max_body_bytes"), ("workers", "workers")):
        if key in data:
            values[name] = _whole(f"{path}: {key}", data[key])
    return values


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if env.get("EXECUTOR_SERVER_USERS"):
        users: dict[str, str] = {}
        for pair in env["EXECUTOR_SERVER_USERS"].split(","):
            name, sep, password = pair.strip().partition(":")
            if not sep or not name or not password:
                raise ServerConfigError("EXECUTOR_SERVER_USERS is name:password[,name:password...]")
            users[name] = password
        values["users"] = users
    if env.get("EXECUTOR_SERVER_TOKENS"):
        values["tokens"] = frozenset(
            t.strip() for t in env["EXECUTOR_SERVER_TOKENS"].split(",") if t.strip()
        )
    if env.get("EXECUTOR_SERVER_WORKER_TOKENS"):
        values["worker_tokens"] = frozenset(
            t.strip() for t in env["EXECUTOR_SERVER_WORKER_TOKENS"].split(",") if t.strip()
        )
    for var, name in (
        ("EXECUTOR_SERVER_MAX_BODY_BYTES", "max_body_bytes"),
        ("EXECUTOR_SERVER_WORKERS", "workers"),
        ("EXECUTOR_SERVER_PORT", "port"),
    ):
        if env.get(var):
            values[name] = _whole(var, env[var])
    if env.get("EXECUTOR_BROKER_URL"):
        values["broker"] = env["EXECUTOR_BROKER_URL"]
    if env.get("EXECUTOR_SERVER_HOST"):
        values["host"] = env["EXECUTOR_SERVER_HOST"]
    return values


def _whole(name: str, value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ServerConfigError(f"{name}: expected a whole number, got {value!r}") from None
