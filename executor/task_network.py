"""What task containers need to reach package indexes from this host: its CA bundle and proxy.

Self-hosted runners often sit behind a TLS-intercepting proxy: the host trusts its CA (pip is
configured with ``cert = ...``), a container does not. So, where the host has them configured
(``PIP_CERT``/``REQUESTS_CA_BUNDLE``/``SSL_CERT_FILE``, pip's ``cert`` setting, the
``HTTP(S)_PROXY``/``NO_PROXY`` variables, pip's ``proxy`` setting), task containers get the
same: the bundle mounted read-only at :data:`CONTAINER_CA_BUNDLE` with the variables that point
pip, requests, curl, OpenSSL and node (npm) at it, and the proxy variables.

``EXECUTOR_TASK_CA_BUNDLE=PATH`` names another bundle, ``=none`` turns it off;
``EXECUTOR_TASK_PROXY=0`` keeps the proxy variables out.
"""

from __future__ import annotations

import configparser
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from executor.errors import UsageError

CONTAINER_CA_BUNDLE = "/etc/executor/ca-bundle.crt"
_CA_VARIABLES = ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE")
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY")
_OFF = {"", "0", "no", "none", "off", "false"}


@dataclass(frozen=True)
class TaskNetwork:
    """The host's CA bundle (a host path) and proxy variables, for task containers."""

    ca_bundle: str | None = None
    proxy_env: Mapping[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """The variables a task container gets."""
        env = dict(self.proxy_env)
        if self.ca_bundle:
            env.update(dict.fromkeys(_CA_VARIABLES, CONTAINER_CA_BUNDLE))
            env["NODE_EXTRA_CA_CERTS"] = CONTAINER_CA_BUNDLE  # node and npm
        return env

    @property
    def read_only_binds(self) -> dict[str, str]:
        """Host path -> container path, mounted read-only."""
        return {self.ca_bundle: CONTAINER_CA_BUNDLE} if self.ca_bundle else {}

    @classmethod
    def from_host(cls, env: Mapping[str, str], pip_config: list[Path] | None = None) -> TaskNetwork:
        """What the host has configured (see the module docstring).

        Raises:
            UsageError: ``EXECUTOR_TASK_CA_BUNDLE`` names a file that does not exist.
        """
        pip = _pip_settings(pip_config if pip_config is not None else _pip_config_files(env))
        return cls(_ca_bundle(env, pip), _proxy_env(env, pip))


def _ca_bundle(env: Mapping[str, str], pip: Mapping[str, str]) -> str | None:
    chosen = env.get("EXECUTOR_TASK_CA_BUNDLE")
    if chosen is not None:
        if chosen.strip().lower() in _OFF:
            return None
        if not Path(chosen).is_file():
            raise UsageError(f"EXECUTOR_TASK_CA_BUNDLE={chosen!r}: no such file")
        return str(Path(chosen).resolve())
    for candidate in (*(env.get(name) for name in _CA_VARIABLES), pip.get("cert")):
        if candidate and Path(candidate).is_file():
            return str(Path(candidate).resolve())
    return None


def _proxy_env(env: Mapping[str, str], pip: Mapping[str, str]) -> dict[str, str]:
    if env.get("EXECUTOR_TASK_PROXY", "1").strip().lower() in _OFF:
        return {}
    found: dict[str, str] = {}
    for name in _PROXY_VARIABLES:
        value = env.get(name) or env.get(name.lower())
        if value:
            found[name] = found[name.lower()] = value
    proxy = pip.get("proxy")
    if proxy and "HTTPS_PROXY" not in found:
        for name in ("HTTP_PROXY", "HTTPS_PROXY"):
            found[name] = found[name.lower()] = proxy
    return found


def _pip_config_files(env: Mapping[str, str]) -> list[Path]:
    """pip's configuration files, lowest priority first (what ``pip config list`` reads)."""
    home = Path(env.get("HOME", "~")).expanduser()
    config_home = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
    files = [Path("/etc/pip.conf"), Path("/etc/xdg/pip/pip.conf")]
    files += [home / ".pip/pip.conf", config_home / "pip/pip.conf"]
    if env.get("PIP_CONFIG_FILE"):
        files.append(Path(env["PIP_CONFIG_FILE"]))
    return files


def _pip_settings(files: list[Path]) -> dict[str, str]:
    """The ``[global]`` and ``[install]`` settings of pip's files (later files win)."""
    settings: dict[str, str] = {}
    for path in files:
        parser = configparser.ConfigParser()
        try:
            parser.read(path)
        except (configparser.Error, OSError):
            continue
        for section in ("global", "install"):
            if parser.has_section(section):
                settings.update(parser.items(section))
    return settings
