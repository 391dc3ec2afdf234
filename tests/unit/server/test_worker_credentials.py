"""The workers' own credential: configured apart from API users, required with a broker."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from executor.errors import ServerConfigError
from executor.server.auth import authorized, worker_authorized, worker_route
from executor.server.config import ServerConfig

BROKER = "redis://127.0.0.1:6379/0"


def test_worker_tokens_come_from_the_environment_and_server_yaml(tmp_path: Path) -> None:
    (tmp_path / "server.yaml").write_text("tokens: [api]\nworkerTokens: [w1, w2]\n")
    assert ServerConfig.load(tmp_path, {}).worker_tokens == frozenset({"w1", "w2"})
    env = {"EXECUTOR_SERVER_WORKER_TOKENS": " w3 , w4,"}
    assert ServerConfig.load(tmp_path, env).worker_tokens == frozenset({"w3", "w4"})
    (tmp_path / "server.yaml").write_text("workerTokens: w1\n")
    with pytest.raises(ServerConfigError, match="workerTokens is a list"):
        ServerConfig.load(tmp_path, {})


def test_a_token_is_either_an_api_token_or_a_worker_token(tmp_path: Path) -> None:
    env = {"EXECUTOR_SERVER_TOKENS": "same", "EXECUTOR_SERVER_WORKER_TOKENS": "same"}
    with pytest.raises(ServerConfigError, match="credential of their own"):
        ServerConfig.load(tmp_path, env)


def test_a_broker_needs_a_worker_token_on_loopback_and_off_it() -> None:
    for host in ("127.0.0.1", "0.0.0.0"):
        with pytest.raises(ServerConfigError, match="EXECUTOR_SERVER_WORKER_TOKENS") as caught:
            ServerConfig(host=host, tokens=frozenset({"api"}), broker=BROKER).check_bind()
        assert caught.value.exit_code == 6
    ServerConfig(broker=BROKER, worker_tokens=frozenset({"w"})).check_bind()
    ServerConfig().check_bind()  # no broker: no worker needed


def test_worker_and_api_credentials_do_not_cross() -> None:
    config = ServerConfig(
        users={"amy": "pw"}, tokens=frozenset({"api"}), worker_tokens=frozenset({"wt"})
    )
    basic = "Basic " + base64.b64encode(b"amy:pw").decode()
    assert worker_authorized(config, "Bearer wt")
    for header in ("Bearer api", basic, "Bearer other", "Basic d3Q=", None, "wt"):
        assert not worker_authorized(config, header), header
    assert not authorized(config, "Bearer wt")
    assert not worker_authorized(ServerConfig(), "Bearer ")


def test_which_routes_are_the_workers() -> None:
    for path in ("/api/v1/worker/heartbeat", "/api/v1/main/worker/executions/x/records"):
        assert worker_route(path)
    for path in ("/api/v1/worker/workers", "/api/v1/main/worker/workers/", "/api/v1/flows"):
        assert not worker_route(path)
