"""The trust boundary's rules, fast: its configuration, which task options open the host, and
credentials scrubbed from log lines. (Real processes and a real browser:
tests/integration/test_server_guard.py.)"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
import structlog

from executor import log as executor_log
from executor.errors import FlowError, FlowValidationError, ServerConfigError
from executor.flow.host_access import check_git_url, host_openings, refuse_host_openings
from executor.flow.loader import load_flow_text
from executor.server.auth import is_webhook_route
from executor.server.config import ServerConfig
from executor.server.guard import served_names


def test_trust_settings_from_file_and_env(tmp_path: Path) -> None:
    """allowedHosts, allowedOrigins, allowHostOptions: normalised; bad values are one line."""
    (tmp_path / "server.yaml").write_text(
        "allowedHosts: [Executor.Example.COM, 'exec.local:8080']\n"
        "allowedOrigins: ['https://UI.example.com:443/', 'http://[::1]:3000']\n"
        "allowHostOptions: true\n"
    )
    config = ServerConfig.load(tmp_path, {})
    assert config.allowed_hosts == {"executor.example.com", "exec.local"}
    assert config.allowed_origins == {"https://ui.example.com", "http://[::1]:3000"}
    assert config.allow_host_options
    env = {
        "EXECUTOR_SERVER_ALLOWED_HOSTS": "a.example, b.example",
        "EXECUTOR_SERVER_ALLOW_HOST_OPTIONS": "no",
    }
    config = ServerConfig.load(tmp_path, env)
    assert config.allowed_hosts == {"a.example", "b.example"} and not config.allow_host_options
    assert not ServerConfig.load(tmp_path / "none", {}).allow_host_options  # the default
    for bad, message in (
        ({"EXECUTOR_SERVER_ALLOW_HOST_OPTIONS": "maybe"}, "expected true or false"),
        ({"EXECUTOR_SERVER_ALLOWED_ORIGINS": "evil.example"}, "is not an origin"),
        ({"EXECUTOR_SERVER_ALLOWED_ORIGINS": "https://a.example/path"}, "is not an origin"),
        ({"EXECUTOR_SERVER_ALLOWED_HOSTS": "http://a.example"}, "is not a host name"),
    ):
        with pytest.raises(ServerConfigError, match=message):
            ServerConfig.load(tmp_path, bad)
    (tmp_path / "server.yaml").write_text("allowHostOptions: 'yes please'\n")
    with pytest.raises(ServerConfigError, match="allowHostOptions is true or false"):
        ServerConfig.load(tmp_path, {})


def test_served_names_are_loopback_the_bind_address_and_the_configured_ones() -> None:
    assert served_names(ServerConfig()) == {"localhost", "127.0.0.1"}
    assert served_names(ServerConfig(host="0.0.0.0", tokens=frozenset({"t"}))) == {"localhost"}
    named = ServerConfig(host="box.lan", tokens=frozenset({"t"}), allowed_hosts=frozenset({"x"}))
    assert served_names(named) == {"localhost", "box.lan", "x"}


def test_the_open_route_is_the_webhook_route_only() -> None:
    for prefix in ("/api/v1", "/api/v1/main"):
        assert is_webhook_route("POST", f"{prefix}/executions/webhook/ns/flow/key")
        assert is_webhook_route("get", f"{prefix}/executions/webhook/ns/flow/key")
        assert not is_webhook_route("DELETE", f"{prefix}/executions/webhook/ns/flow/key")
        for path in ("webhook/flow", "webhook/follow", "webhook/kill", "webhook/a/b/c/d", "x"):
            assert not is_webhook_route("POST", f"{prefix}/executions/{path}")
    assert not is_webhook_route("POST", "/api/v2/executions/webhook/ns/flow/key")


def _flow(task: str) -> str:
    return "id: f\nnamespace: n\ntasks:\n" + task


def _script(options: str) -> str:
    return _flow(
        "  - id: t\n    type: io.kestra.plugin.scripts.shell.Commands\n"
        f"    commands: [id]\n{options}"
    )


@pytest.mark.parametrize(
    ("options", "opened"),
    [
        ("", []),
        ("    docker: {networkMode: none}\n", []),
        ("    docker: {networkMode: bridge}\n", []),
        ("    docker: {networkMode: host}\n", ["networkMode: host"]),
        ("    dockerOptions: {networkMode: 'container:db'}\n", ["networkMode: container:db"]),
        ("    docker: {networkMode: compose_default}\n", ["networkMode: compose_default"]),
        ("    docker: {deviceRequests: [{count: 1}]}\n", ["deviceRequests"]),
        # ignored options, never acted on: nothing to refuse
        ("    docker: {privileged: true, volumes: ['/:/host'], extraHosts: ['a:1.2.3.4']}\n", []),
    ],
)
def test_which_script_options_open_the_host(options: str, opened: list[str]) -> None:
    loaded = load_flow_text(_script(options), Path("flow"))
    assert [o.option for o in host_openings(loaded)] == opened


_HOST_RUNNER = (
    "    taskRunner: {type: io.kestra.plugin.scripts.runner.docker.Docker, networkMode: host}\n"
)


@pytest.mark.parametrize(
    "task",
    [
        "    type: io.kestra.plugin.scripts.node.Commands\n    commands: [node -v]\n"
        + _HOST_RUNNER,
        "    type: io.kestra.plugin.terraform.cli.TerraformCLI\n    commands: [terraform plan]\n"
        + _HOST_RUNNER,
        "    type: io.kestra.plugin.docker.Run\n    containerImage: busybox\n"
        "    networkMode: host\n",
    ],
    ids=["node", "terraform", "docker.Run"],
)
def test_every_script_shaped_task_is_checked_for_host_options(task: str) -> None:
    """Not only shell and Python: a language, CLI or docker.Run task on the host's network is
    refused where host options are."""
    loaded = load_flow_text(_flow("  - id: t\n" + task), Path("flow"))
    with pytest.raises(FlowValidationError) as caught:
        refuse_host_openings(loaded, allowed=False)
    assert "task 't': networkMode: host opens the host" in caught.value.problems[0]
    refuse_host_openings(loaded, allowed=True)


def test_plugin_defaults_and_clone_urls_are_seen_and_refused_with_the_task() -> None:
    text = _flow(
        "  - id: wd\n    type: io.kestra.plugin.core.flow.WorkingDirectory\n    tasks:\n"
        "      - id: local\n        type: io.kestra.plugin.git.Clone\n"
        "        url: FILE:///srv/repo\n"
        "      - id: later\n        type: io.kestra.plugin.git.Clone\n"
        '        url: "{{ inputs.repo }}"\n'
        "      - id: t\n        type: io.kestra.plugin.scripts.shell.Commands\n"
        "        commands: [id]\n"
        "pluginDefaults:\n"
        "  - type: io.kestra.plugin.scripts.shell\n"
        "    values: {taskRunner: {type: io.kestra.plugin.scripts.runner.docker.Docker,"
        " networkMode: host}}\n"
    )
    loaded = load_flow_text(text, Path("flow"))
    with pytest.raises(FlowValidationError) as caught:
        refuse_host_openings(loaded, allowed=False)
    assert caught.value.problems[0].startswith("flow:7:9 task 'local': url: FILE:///srv/repo")
    assert "task 't': networkMode: host opens the host" in caught.value.problems[1]
    assert len(caught.value.problems) == 2  # the templated URL is checked once rendered
    refuse_host_openings(loaded, allowed=True)
    with pytest.raises(FlowError, match="allowHostOptions: true"):
        check_git_url("file:///srv/repo", allowed=False)
    check_git_url("https://example.com/repo.git", allowed=False)
    check_git_url("file:///srv/repo", allowed=True)


def test_scrub_text_masks_credentials_in_reprs_header_lines_and_schemes() -> None:
    scope = (
        "{'headers': [(b'host', b'x'), (b'authorization', b'Bearer tok-1'), "
        "(b'cookie', b'sid=abc'), (b'proxy-authorization', b'Basic cHJveHk6cHc=')]}"
    )
    shown = executor_log.scrub_text(scope)
    assert "tok-1" not in shown and "sid=abc" not in shown and "cHJveHk6cHc=" not in shown
    assert "(b'host', b'x')" in shown
    assert (
        executor_log.scrub_text("Authorization: Basic YWxpY2U6czNjcmV0") == "Authorization: ******"
    )
    assert executor_log.scrub_text("sent Bearer abcdefgh.ij") == "sent Bearer ******"
    kept = "basic authentication failed for a bearer of bad news"
    assert executor_log.scrub_text(kept) == kept


def test_structlog_lines_and_stdlib_records_carry_no_credentials() -> None:
    out = io.StringIO()
    executor_log.configure("json", stream=out)
    try:
        scope = {"type": "http", "headers": [(b"authorization", b"Bearer tok-2")]}
        structlog.get_logger("t").error("failed", scope=scope, headers={"Cookie": "sid=zz"})
        try:
            raise RuntimeError("Authorization: Bearer tok-3")
        except RuntimeError:
            structlog.get_logger("t").exception("failed again")
    finally:
        structlog.reset_defaults()
    text = out.getvalue()
    assert "failed again" in text and "RuntimeError" in text
    for secret in ("tok-2", "sid=zz", "tok-3"):
        assert secret not in text
    record = logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, "%s", ("x",), None)
    record.msg, record.args = "auth was %s", ("Bearer tok-4",)
    try:
        raise ValueError("Basic dG9rLTU6eDE=")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    assert executor_log.ScrubFilter().filter(record)
    formatted = logging.Formatter().format(record)
    assert "tok-4" not in formatted and "dG9rLTU6eDE=" not in formatted
    assert "ValueError" in formatted
