"""Server configuration, the open-bind rule, credentials, Kestra's JSON shapes."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from executor.errors import ServerConfigError
from executor.server.auth import authorized
from executor.server.config import ServerConfig, is_loopback
from executor.server.kestra_json import iso_duration


def test_open_bind_needs_credentials(tmp_path: Path) -> None:
    """0.0.0.0 without users or tokens is refused with the reason; loopback is not."""
    ServerConfig(host="127.0.0.1").check_bind()
    ServerConfig(host="::1").check_bind()
    with pytest.raises(ServerConfigError, match=r"refusing to listen on 0\.0\.0\.0") as caught:
        ServerConfig(host="0.0.0.0").check_bind()
    assert caught.value.exit_code == 6
    ServerConfig(host="0.0.0.0", tokens=frozenset({"t"})).check_bind()
    assert is_loopback("localhost") and not is_loopback("example.org")


def test_credentials_from_env_and_file(tmp_path: Path) -> None:
    """Users and tokens come from EXECUTOR_SERVER_* and server.yaml; bad values are one line."""
    (tmp_path / "server.yaml").write_text(
        "users: [{username: bob, password: pw}]\ntokens: [t1]\nmaxBodyBytes: 10\n"
    )
    config = ServerConfig.load(tmp_path, {"EXECUTOR_SERVER_USERS": "amy:x,cat:y"}, workers=3)
    assert dict(config.users) == {"amy": "x", "cat": "y"}
    assert config.tokens == frozenset({"t1"}) and config.max_body_bytes == 10
    assert config.workers == 3
    with pytest.raises(ServerConfigError, match="name:password"):
        ServerConfig.load(tmp_path, {"EXECUTOR_SERVER_USERS": "nopassword"})
    (tmp_path / "server.yaml").write_text("users: nobody\n")
    with pytest.raises(ServerConfigError, match="users is a list"):
        ServerConfig.load(tmp_path, {})


def test_load_limits_from_file_then_env(tmp_path: Path) -> None:
    """Each load limit has a server.yaml key and a variable (the variable wins); a value that
    is not a number above 0 (or not whole where it must be) names where it came from."""
    (tmp_path / "server.yaml").write_text("maxFollows: 7\nflowParseSeconds: 2.5\n")
    env = {"EXECUTOR_SERVER_MAX_FOLLOWS": "9", "EXECUTOR_SERVER_MAX_ZIP_MEMBERS": "50"}
    limits = ServerConfig.load(tmp_path, env).limits
    assert (limits.max_follows, limits.flow_parse_seconds, limits.max_zip_members) == (9, 2.5, 50)
    assert limits.header_timeout_seconds == 10.0  # the default
    with pytest.raises(ServerConfigError, match="EXECUTOR_SERVER_MAX_CONNECTIONS: expected a"):
        ServerConfig.load(tmp_path, {"EXECUTOR_SERVER_MAX_CONNECTIONS": "1.5"})
    (tmp_path / "server.yaml").write_text("headerTimeoutSeconds: -1\n")
    with pytest.raises(ServerConfigError, match=r"server\.yaml: headerTimeoutSeconds"):
        ServerConfig.load(tmp_path, {})


def test_authorized_checks_basic_and_bearer() -> None:
    """Only a configured user with its password, or a configured token, passes."""
    config = ServerConfig(users={"amy": "pw"}, tokens=frozenset({"tok"}))

    def basic(text: str) -> str:
        return "Basic " + base64.b64encode(text.encode()).decode()

    assert authorized(config, basic("amy:pw"))
    assert not authorized(config, basic("amy:nope"))
    assert not authorized(config, basic("zed:pw"))
    assert not authorized(config, "Basic !!!")
    assert authorized(config, "Bearer tok")
    assert not authorized(config, "Bearer other")
    assert not authorized(config, None)
    assert authorized(ServerConfig(), None)


def test_durations_print_like_java() -> None:
    """Durations are ISO-8601 as Kestra's JSON has them."""
    assert iso_duration(0.0029) == "PT0.0029S"
    assert iso_duration(61.5) == "PT1M1.5S"
    assert iso_duration(3600) == "PT1H"
    assert iso_duration(0) == "PT0S"


def test_retention_from_file_then_env_then_flag(tmp_path: Path) -> None:
    """retention/retentionInterval in server.yaml, EXECUTOR_SERVER_RETENTION* over them,
    --retention over both; none: history is kept. A bad value names where it was given."""
    from datetime import timedelta

    assert ServerConfig.load(tmp_path, {}).retention is None
    (tmp_path / "server.yaml").write_text("retention: P90D\nretentionInterval: 600\n")
    config = ServerConfig.load(tmp_path, {})
    assert (config.retention, config.retention_interval) == (timedelta(days=90), 600.0)
    env = {"EXECUTOR_SERVER_RETENTION": "p30d", "EXECUTOR_SERVER_RETENTION_INTERVAL": "2.5"}
    config = ServerConfig.load(tmp_path, env)
    assert (config.retention, config.retention_interval) == (timedelta(days=30), 2.5)
    assert ServerConfig.load(tmp_path, env, retention="PT12H").retention == timedelta(hours=12)
    with pytest.raises(ServerConfigError, match="EXECUTOR_SERVER_RETENTION: expected how long"):
        ServerConfig.load(tmp_path, {"EXECUTOR_SERVER_RETENTION": "90 days please"})
    with pytest.raises(ServerConfigError, match=r"--retention: expected how long.*'P0D'"):
        ServerConfig.load(tmp_path, {}, retention="P0D")
    with pytest.raises(ServerConfigError, match="EXECUTOR_SERVER_RETENTION_INTERVAL: expected"):
        ServerConfig.load(tmp_path, {"EXECUTOR_SERVER_RETENTION_INTERVAL": "hourly"})
    (tmp_path / "server.yaml").write_text("retention: forever\n")
    with pytest.raises(ServerConfigError, match=r"server\.yaml: retention: expected"):
        ServerConfig.load(tmp_path, {})
