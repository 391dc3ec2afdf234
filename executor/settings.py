"""One settings object, built by the CLI from the environment; nothing is read at import time."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from executor.errors import UsageError
from executor.task_network import TaskNetwork

DEFAULT_MAX_TASK_LOG_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_SUBFLOW_DEPTH = 10
DEFAULT_STORE_PATIENCE_SECONDS = 3600.0
DEFAULT_MAX_UNPACKED_BYTES = 10 * 1024**3
DEFAULT_BROKER_VISIBILITY_TIMEOUT = 3600
SECRET_PREFIX = "SECRET_"  # noqa: S105 (the prefix of variable names, not a password)


def _default_home(env: Mapping[str, str]) -> Path:
    state = env.get("XDG_STATE_HOME") or str(
        Path(env.get("HOME", "~")).expanduser() / ".local/state"
    )
    return Path(state) / "executor"


def _count(name: str, text: str) -> int:
    """A whole number >= 0 from the environment variable ``name``."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise UsageError(f"{name}={text!r}: expected a whole number >= 0")
    return value


def _seconds(name: str, text: str, minimum: float) -> float:
    """A number of seconds >= ``minimum`` from the environment variable ``name``."""
    try:
        value = float(text)
    except ValueError:
        value = minimum - 1
    if not value >= minimum:  # also NaN
        raise UsageError(f"{name}={text!r}: expected a number of seconds >= {minimum:g}")
    return value


def _database_url(text: str) -> str:
    """``EXECUTOR_DATABASE_URL`` when it names a database this executor speaks to."""
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme not in ("postgresql", "postgres", "postgresql+psycopg", "sqlite"):
        raise UsageError(
            "EXECUTOR_DATABASE_URL: expected postgresql://USER:PASSWORD@HOST:PORT/DATABASE "
            "(or unset for SQLite in EXECUTOR_HOME)"
        )
    return text


ENV_PREFIX = "ENV_"


def flow_envs(env: Mapping[str, str]) -> dict[str, str]:
    """Kestra's ``envs``: ``ENV_MY_VAR=x`` gives ``{{ envs.my_var }}`` (its default prefix)."""
    return {
        name[len(ENV_PREFIX) :].lower(): value
        for name, value in env.items()
        if name.startswith(ENV_PREFIX) and len(name) > len(ENV_PREFIX)
    }


@dataclass(frozen=True)
class Settings:
    """Where state lives and how the executor talks to the engine.

    Attributes:
        home: root of all state (``$EXECUTOR_HOME``, default ``$XDG_STATE_HOME/executor``).
        engine: which engine backend runs the containers (``$EXECUTOR_ENGINE``): ``docker``
            (the default) or ``fake`` (no containers, for tests); see ``engine.backends``.
        docker_host: engine address (``$DOCKER_HOST``); ``None`` means the default socket.
        workspace_path: where the workspace volume is mounted in every container.
        kill_grace_seconds: time between TERM and KILL when a task is stopped.
        engine_retry_attempts: tries for a transient engine error (never a task's own failure).
        engine_retry_wait_seconds: first wait between those tries; doubles each time.
        default_shell_image: image of a shell task that names none (Kestra: ``ubuntu``).
        default_python_image: image of a python task that names none.
        max_execs_per_container: task execs that may run at once in one container; the
            rest wait their turn (a ForEach over 1,000 values must not fork-bomb it).
        max_task_log_bytes: bytes of output one task attempt may log
            (``$EXECUTOR_MAX_TASK_LOG_BYTES``); past it lines are dropped and counted. 0: no cap.
        task_network: the host's CA bundle and proxy, passed into task containers (see
            :mod:`executor.task_network`).
        pids_limit: the most processes one task container may hold, so a fork bomb stops at
            the limit instead of taking the host down; ``0`` for the engine's default (none).
        database_url: where the records live when not in ``home`` (``$EXECUTOR_DATABASE_URL``,
            ``postgresql://USER:PASSWORD@HOST:PORT/DATABASE``); ``None`` for SQLite in ``home``.
        allow_host_options: whether tasks may use options that open the host
            (``flow.host_access``): yes for ``executor run``; a server and its workers set their
            ``allowHostOptions``.
        max_subflow_depth: how deep Subflow tasks may nest executions
            (``$EXECUTOR_MAX_SUBFLOW_DEPTH``): a flow that calls itself through a template
            escapes the check made before the run, so the chain stops here.
        store_patience_seconds: how long a run keeps trying to write its records while the
            store cannot be reached (``$EXECUTOR_STORE_PATIENCE``) before it gives them up.
        store_retry_wait_seconds: the longest wait between those tries
            (``$EXECUTOR_STORE_RETRY_WAIT``; they start at a quarter of a second and double).
        recovery_interval_seconds: how often a server looks for executions whose runner is
            gone (``$EXECUTOR_RECOVERY_INTERVAL``).
        envs: Kestra's ``{{ envs.name }}``: each ``ENV_NAME`` variable of the executor's
            environment as ``name`` (lower case, prefix removed).
        secret_env: the ``SECRET_<NAME>`` variables (base64 values, Kestra's convention),
            read by ``flow.secrets.Secrets``.
        max_unpacked_bytes: the most one archive or compressed file a task unpacks may grow to
            (``$EXECUTOR_MAX_UNPACKED``), against archive bombs.
        foreach_item_concurrency: how many children of one ForEachItem run at once when it
            waits for them (``$EXECUTOR_FOREACH_ITEM_CONCURRENCY``); the rest wait their turn.
        broker_visibility_timeout: seconds a message a worker took but did not acknowledge
            waits before the broker hands it out again (``$EXECUTOR_BROKER_VISIBILITY_TIMEOUT``).
    """

    home: Path
    engine: str = "docker"
    docker_host: str | None = None
    workspace_path: str = "/workspace"
    kill_grace_seconds: float = 3.0
    engine_retry_attempts: int = 4
    engine_retry_wait_seconds: float = 0.5
    default_shell_image: str = "ubuntu:latest"
    default_python_image: str = "python:3.13-slim"
    max_execs_per_container: int = field(default_factory=lambda: max(8, 2 * (os.cpu_count() or 1)))
    max_task_log_bytes: int = DEFAULT_MAX_TASK_LOG_BYTES
    pids_limit: int = 4096
    images_dir: Path = field(
        default_factory=lambda: Path(__file__).resolve().parent.parent / "images"
    )
    task_network: TaskNetwork = field(default_factory=TaskNetwork)
    database_url: str | None = field(default=None, repr=False)  # repr=False: it holds a password
    allow_host_options: bool = True
    max_subflow_depth: int = DEFAULT_MAX_SUBFLOW_DEPTH
    store_patience_seconds: float = DEFAULT_STORE_PATIENCE_SECONDS
    store_retry_wait_seconds: float = 10.0
    recovery_interval_seconds: float = 30.0
    envs: Mapping[str, str] = field(default_factory=dict, repr=False)
    secret_env: Mapping[str, str] = field(default_factory=dict, repr=False)
    max_unpacked_bytes: int = DEFAULT_MAX_UNPACKED_BYTES
    broker_visibility_timeout: int = DEFAULT_BROKER_VISIBILITY_TIMEOUT
    foreach_item_concurrency: int = field(default_factory=lambda: max(4, os.cpu_count() or 1))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from environment variables (``os.environ`` when not given)."""
        env = os.environ if env is None else env
        home = (
            Path(env["EXECUTOR_HOME"]).expanduser()
            if env.get("EXECUTOR_HOME")
            else _default_home(env)
        )
        kwargs: dict[str, object] = {"home": home.resolve(), "docker_host": env.get("DOCKER_HOST")}
        if env.get("EXECUTOR_ENGINE"):
            kwargs["engine"] = env["EXECUTOR_ENGINE"].strip()
        if env.get("EXECUTOR_KILL_GRACE"):
            kwargs["kill_grace_seconds"] = float(env["EXECUTOR_KILL_GRACE"])
        if env.get("EXECUTOR_SHELL_IMAGE"):
            kwargs["default_shell_image"] = env["EXECUTOR_SHELL_IMAGE"]
        if env.get("EXECUTOR_PYTHON_IMAGE"):
            kwargs["default_python_image"] = env["EXECUTOR_PYTHON_IMAGE"]
        if env.get("EXECUTOR_MAX_EXECS_PER_CONTAINER"):
            kwargs["max_execs_per_container"] = _count(
                "EXECUTOR_MAX_EXECS_PER_CONTAINER", env["EXECUTOR_MAX_EXECS_PER_CONTAINER"]
            )
        if env.get("EXECUTOR_MAX_TASK_LOG_BYTES"):
            kwargs["max_task_log_bytes"] = _count(
                "EXECUTOR_MAX_TASK_LOG_BYTES", env["EXECUTOR_MAX_TASK_LOG_BYTES"]
            )
        if env.get("EXECUTOR_PIDS_LIMIT"):
            kwargs["pids_limit"] = _count("EXECUTOR_PIDS_LIMIT", env["EXECUTOR_PIDS_LIMIT"])
        if env.get("EXECUTOR_IMAGES_DIR"):
            kwargs["images_dir"] = Path(env["EXECUTOR_IMAGES_DIR"])
        if env.get("EXECUTOR_DATABASE_URL"):
            kwargs["database_url"] = _database_url(env["EXECUTOR_DATABASE_URL"])
        if env.get("EXECUTOR_MAX_SUBFLOW_DEPTH"):
            kwargs["max_subflow_depth"] = _count(
                "EXECUTOR_MAX_SUBFLOW_DEPTH", env["EXECUTOR_MAX_SUBFLOW_DEPTH"]
            )
        for name, key, minimum in (
            ("EXECUTOR_STORE_PATIENCE", "store_patience_seconds", 0.0),
            ("EXECUTOR_STORE_RETRY_WAIT", "store_retry_wait_seconds", 0.01),
            ("EXECUTOR_RECOVERY_INTERVAL", "recovery_interval_seconds", 0.1),
        ):
            if env.get(name):
                kwargs[key] = _seconds(name, env[name], minimum)
        if env.get("EXECUTOR_MAX_UNPACKED"):
            kwargs["max_unpacked_bytes"] = _count(
                "EXECUTOR_MAX_UNPACKED", env["EXECUTOR_MAX_UNPACKED"]
            )
        if env.get("EXECUTOR_FOREACH_ITEM_CONCURRENCY"):
            kwargs["foreach_item_concurrency"] = max(
                1,
                _count(
                    "EXECUTOR_FOREACH_ITEM_CONCURRENCY", env["EXECUTOR_FOREACH_ITEM_CONCURRENCY"]
                ),
            )
        if env.get("EXECUTOR_BROKER_VISIBILITY_TIMEOUT"):
            kwargs["broker_visibility_timeout"] = max(
                1,
                _count(
                    "EXECUTOR_BROKER_VISIBILITY_TIMEOUT", env["EXECUTOR_BROKER_VISIBILITY_TIMEOUT"]
                ),
            )
        kwargs["task_network"] = TaskNetwork.from_host(env)
        kwargs["envs"] = flow_envs(env)
        kwargs["secret_env"] = {k: v for k, v in env.items() if k.startswith(SECRET_PREFIX)}
        return cls(**kwargs)  # type: ignore[arg-type]

    @property
    def db_path(self) -> Path | str:
        """The record store: the SQLite file in ``home``, or the ``database_url``."""
        return self.database_url or self.home / "executor.db"

    @property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    @property
    def namespaces_dir(self) -> Path:
        return self.home / "namespaces"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def overlays_dir(self) -> Path:
        """Scratch directories (upper layers) of overlay workspaces (see ``engine.overlay``)."""
        return self.home / "overlays"

    @property
    def images_lock(self) -> Path:
        return self.home / "images.lock.json"

    @property
    def aliases_file(self) -> Path:
        return self.home / "aliases.yaml"
