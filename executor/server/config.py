"""How the server is configured: bind address, slots, users and tokens, body limits.

Read once at start from the command line, ``EXECUTOR_SERVER_*`` variables and an optional YAML
file (``EXECUTOR_SERVER_CONFIG``, default ``$EXECUTOR_HOME/server.yaml``)::

    users:                 # basic auth, as Kestra's clients send KESTRA_USER/KESTRA_PASSWORD
      - username: alice
        password: s3cret
    tokens: [a-long-random-token]   # bearer tokens (KESTRA_API_TOKEN)
    workerTokens: [another-token]   # what `executor worker --token` sends; never an API credential
    maxBodyBytes: 67108864
    allowedHosts: [executor.example.com]       # Host names served besides loopback's
    allowedOrigins: [https://ui.example.com]   # browser origins that may change things
    allowHostOptions: false        # networkMode: host, deviceRequests, Clone of file://
    maxFollows: 100        # and the other keys of LoadLimits: what one request may cost
    retention: P90D        # executions ended longer ago are purged, with their logs and files
    retentionInterval: 3600          # seconds between two retention passes

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
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from executor.errors import ServerConfigError

DEFAULT_PORT = 8080
CHECK_SECONDS = 2.0
DEFAULT_LAPSE_SECONDS = 30.0
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_FLOW_BYTES = 1024 * 1024
DEFAULT_RETENTION_INTERVAL = 3600.0


# ----- load limits: what one request or connection may cost the others (README, Configuration)


@dataclass(frozen=True)
class LoadLimits:
    """Bounds that keep one request from stalling the others; each has a server.yaml key
    and an ``EXECUTOR_SERVER_*`` variable (:data:`LOAD_LIMIT_KEYS`).

    Attributes:
        max_flow_documents: flows one request may carry (validate, namespace bulk); 413.
        flow_parse_seconds: time the flows of one request may take to parse, all together
            (a parse process past it is killed); 422.
        flow_parsers: processes that parse flows, beside the server's event loop.
        max_webhook_body_bytes: the largest webhook body read (its key is checked first); 413.
        max_json_depth: nesting a webhook's JSON body may have; 422.
        header_timeout_seconds: time a client has to send a request's headers, on a new
            connection or between requests; the connection is closed past it.
        max_connections: connections open at once; more are closed as they arrive.
        max_follows: event streams (execution and log follows) open at once; 503 past it.
        max_zip_members: files one namespace zip may hold; 413.
    """

    max_flow_documents: int = 200
    flow_parse_seconds: float = 20.0
    flow_parsers: int = 1
    max_webhook_body_bytes: int = 4 * 1024 * 1024
    max_json_depth: int = 100
    header_timeout_seconds: float = 10.0
    max_connections: int = 1000
    max_follows: int = 100
    max_zip_members: int = 10_000


LOAD_LIMIT_KEYS: dict[str, tuple[str, str]] = {  # server.yaml key -> (variable, field)
    "maxFlowDocuments": ("EXECUTOR_SERVER_MAX_FLOW_DOCUMENTS", "max_flow_documents"),
    "flowParseSeconds": ("EXECUTOR_SERVER_FLOW_PARSE_SECONDS", "flow_parse_seconds"),
    "flowParsers": ("EXECUTOR_SERVER_FLOW_PARSERS", "flow_parsers"),
    "maxWebhookBodyBytes": ("EXECUTOR_SERVER_MAX_WEBHOOK_BODY_BYTES", "max_webhook_body_bytes"),
    "maxJsonDepth": ("EXECUTOR_SERVER_MAX_JSON_DEPTH", "max_json_depth"),
    "headerTimeoutSeconds": ("EXECUTOR_SERVER_HEADER_TIMEOUT_SECONDS", "header_timeout_seconds"),
    "maxConnections": ("EXECUTOR_SERVER_MAX_CONNECTIONS", "max_connections"),
    "maxFollows": ("EXECUTOR_SERVER_MAX_FOLLOWS", "max_follows"),
    "maxZipMembers": ("EXECUTOR_SERVER_MAX_ZIP_MEMBERS", "max_zip_members"),
}


def _load_limits(path: Path, env: Mapping[str, str]) -> LoadLimits:
    """The limits of the file (already checked to be a mapping, when it exists), then of the
    environment; each a number above 0."""
    file_data = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.exists() else {}
    values: dict[str, float] = {}
    for key, (var, name) in LOAD_LIMIT_KEYS.items():
        for given, named in ((file_data.get(key), f"{path}: {key}"), (env.get(var), var)):
            if given is None or given == "":
                continue
            try:
                number = float(given)
            except (TypeError, ValueError):
                number = -1.0
            whole = isinstance(LoadLimits.__dataclass_fields__[name].default, int)
            if number <= 0 or (whole and not number.is_integer()):
                kind = "a whole number" if whole else "a number"
                raise ServerConfigError(f"{named}: expected {kind} above 0, got {given!r}")
            values[name] = int(number) if whole else number
    return LoadLimits(**values)  # type: ignore[arg-type]


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
        allowed_hosts: ``Host`` names served besides loopback's and the bind address
            (``server.guard``); ``*`` turns the check off (a proxy in front checks it).
        allowed_origins: browser origins (``https://name[:port]``) besides the server's own
            that may send state-changing requests.
        allow_host_options: whether flows may use task options that open the host
            (``flow.host_access``); off by default, so the server refuses them.
        worker_tokens: the bearer tokens ``executor worker`` sends on ``/api/v1/worker/...``
            (the only credential those routes accept; not accepted anywhere else).
        readiness_timeout: how long one readiness check may take
            (``EXECUTOR_READINESS_TIMEOUT``).
        worker_lapse: seconds a worker may stay silent before its runs count as lost
            (``EXECUTOR_WORKER_LAPSE``, at least 1).
        retention: executions that ended longer ago than this are purged with their logs and
            files (``server.retention``); ``None``: history is kept.
        retention_interval: seconds between two retention passes (the first is at start).
    """

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    workers: int = field(default_factory=default_workers)
    users: Mapping[str, str] = field(default_factory=dict)
    tokens: frozenset[str] = frozenset()
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_flow_bytes: int = DEFAULT_MAX_FLOW_BYTES
    broker: str | None = None
    # The trust boundary (server.guard, flow.host_access): names, origins, host options.
    allowed_hosts: frozenset[str] = frozenset()
    allowed_origins: frozenset[str] = frozenset()
    allow_host_options: bool = False
    limits: LoadLimits = field(default_factory=LoadLimits)
    worker_tokens: frozenset[str] = frozenset()
    readiness_timeout: float = CHECK_SECONDS
    worker_lapse: float = DEFAULT_LAPSE_SECONDS
    retention: timedelta | None = None
    retention_interval: float = DEFAULT_RETENTION_INTERVAL

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
        values["limits"] = _load_limits(path, env)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if isinstance(values.get("retention"), str):  # --retention
            values["retention"] = retention_of("--retention", values["retention"])
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
    values.update(_trust_from_file(path, data))
    if data.get("retention") is not None:
        values["retention"] = retention_of(f"{path}: retention", data["retention"])
    if data.get("retentionInterval") is not None:
        values["retention_interval"] = _interval(
            f"{path}: retentionInterval", data["retentionInterval"]
        )
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
    values["readiness_timeout"] = check_seconds(env)
    values["worker_lapse"] = lapse_seconds(env)
    values.update(_trust_from_env(env))
    if env.get("EXECUTOR_SERVER_RETENTION", "").strip():
        given = env["EXECUTOR_SERVER_RETENTION"]
        values["retention"] = retention_of("EXECUTOR_SERVER_RETENTION", given)
    if env.get("EXECUTOR_SERVER_RETENTION_INTERVAL", "").strip():
        given = env["EXECUTOR_SERVER_RETENTION_INTERVAL"]
        values["retention_interval"] = _interval("EXECUTOR_SERVER_RETENTION_INTERVAL", given)
    return values


def retention_of(name: str, value: Any) -> timedelta:
    """A retention: an ISO-8601 duration above zero (``P90D``).

    Raises:
        ServerConfigError: anything else; the message names where it was given.
    """
    from executor.flow.durations import parse_duration

    try:
        kept = parse_duration(str(value))
    except ValueError:
        kept = timedelta(0)
    if kept.total_seconds() <= 0:
        raise ServerConfigError(
            f"{name}: expected how long to keep ended executions, an ISO-8601 duration above"
            f" zero such as P90D or PT12H, got {value!r}"
        )
    return kept


def _interval(name: str, value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = 0.0
    if seconds <= 0:
        raise ServerConfigError(f"{name}: expected seconds above 0, got {value!r}")
    return seconds


def check_seconds(env: Mapping[str, str]) -> float:
    """How long one readiness check may take (``EXECUTOR_READINESS_TIMEOUT``, default 2 s).

    Raises:
        ServerConfigError: the value is not a positive number.
    """
    text = env.get("EXECUTOR_READINESS_TIMEOUT", "").strip()
    if not text:
        return CHECK_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds <= 300:
        raise ServerConfigError(
            f"EXECUTOR_READINESS_TIMEOUT={text!r}: expected seconds, more than 0 and at most 300"
        )
    return seconds


def lapse_seconds(env: Mapping[str, str]) -> float:
    """How long a worker may stay silent before its runs count as lost (at least a second)."""
    try:
        seconds = float(env.get("EXECUTOR_WORKER_LAPSE", DEFAULT_LAPSE_SECONDS))
    except ValueError:
        seconds = DEFAULT_LAPSE_SECONDS
    return max(seconds, 1.0)


def _whole(name: str, value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ServerConfigError(f"{name}: expected a whole number, got {value!r}") from None


# ----- the trust boundary: allowedHosts, allowedOrigins, allowHostOptions

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _trust_from_file(path: Path, data: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, name, parse in (
        ("allowedHosts", "allowed_hosts", host_name),
        ("allowedOrigins", "allowed_origins", origin_of),
    ):
        given = data.get(key)
        if given is None:
            continue
        if not isinstance(given, list) or not all(isinstance(v, str) for v in given):
            raise ServerConfigError(f"{path}: {key} is a list of strings")
        values[name] = frozenset(_each(f"{path}: {key}", given, parse))
    if "allowHostOptions" in data:
        if not isinstance(data["allowHostOptions"], bool):
            raise ServerConfigError(f"{path}: allowHostOptions is true or false")
        values["allow_host_options"] = data["allowHostOptions"]
    return values


def _trust_from_env(env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for var, name, parse in (
        ("EXECUTOR_SERVER_ALLOWED_HOSTS", "allowed_hosts", host_name),
        ("EXECUTOR_SERVER_ALLOWED_ORIGINS", "allowed_origins", origin_of),
    ):
        if env.get(var):
            given = [v.strip() for v in env[var].split(",") if v.strip()]
            values[name] = frozenset(_each(var, given, parse))
    flag = env.get("EXECUTOR_SERVER_ALLOW_HOST_OPTIONS", "").strip().lower()
    if flag in _TRUE | _FALSE:
        values["allow_host_options"] = flag in _TRUE
    elif flag:
        raise ServerConfigError(
            f"EXECUTOR_SERVER_ALLOW_HOST_OPTIONS={flag!r}: expected true or false"
        )
    return values


def _each(name: str, given: list[str], parse: Any) -> list[str]:
    try:
        return [parse(value) for value in given]
    except ValueError as exc:
        raise ServerConfigError(f"{name}: {exc}") from None


def split_host(text: str) -> tuple[str, str]:
    """``host[:port]`` as compared: the name in lower case without a trailing dot (IPv6 in
    brackets), and the port (``""`` when none).

    Raises:
        ValueError: empty, or not a host name.
    """
    value = text.strip().lower()
    if value.startswith("["):  # [::1] or [::1]:8080
        name, sep, port = value.partition("]")
        name, port = name + "]", port.removeprefix(":")
        if not sep or (port and not value[len(name)] == ":"):
            raise ValueError(f"{text!r} is not a host name")
    elif value.count(":") > 1:  # a bare IPv6 address
        name, port = f"[{value}]", ""
    else:
        name, _, port = value.partition(":")
        name = name.rstrip(".")
    if not name or any(c in name for c in "/@ \t?#\\") or (port and not port.isdigit()):
        raise ValueError(f"{text!r} is not a host name")
    return name, port


def host_name(text: str) -> str:
    """An ``allowedHosts`` entry: a host name as :func:`split_host` gives it (port dropped), or
    ``*``.

    Raises:
        ValueError: not a host name.
    """
    return "*" if text.strip() == "*" else split_host(text)[0]


def origin_of(text: str) -> str:
    """A browser origin as compared: ``scheme://host[:port]``, lower case, default port dropped.

    Raises:
        ValueError: not ``http(s)://host[:port]``.
    """
    scheme, sep, authority = text.strip().lower().partition("://")
    authority = authority.removesuffix("/")
    if not sep or scheme not in ("http", "https") or not authority or "/" in authority:
        raise ValueError(f"{text!r} is not an origin (http(s)://host[:port])")
    name, port = split_host(authority)
    if port in ("", {"http": "80", "https": "443"}[scheme]):
        return f"{scheme}://{name}"
    return f"{scheme}://{name}:{port}"
