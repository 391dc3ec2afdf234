"""Vendor plugins are refused by name, saying what service they need."""

from __future__ import annotations

from pathlib import Path

import pytest

from executor.errors import FlowValidationError
from executor.flow.loader import load_flow_text


def _refusal(task_type: str) -> str:
    text = f"id: f\nnamespace: n\ntasks:\n  - id: t\n    type: {task_type}\n"
    with pytest.raises(FlowValidationError) as caught:
        load_flow_text(text, Path("f.yaml"))
    return str(caught.value)


def test_a_cloud_plugin_names_the_service_it_needs() -> None:
    message = _refusal("io.kestra.plugin.openai.ChatCompletion")
    assert (
        "io.kestra.plugin.openai.ChatCompletion: the openai plugin needs OpenAI's service, "
        "which this executor does not run" in message
    )
    assert "--list-types" not in message
    assert "the jdbc.snowflake plugin needs Snowflake" in _refusal(
        "io.kestra.plugin.jdbc.snowflake.Query"
    )
    assert "Amazon Web Services" in _refusal("io.kestra.plugin.aws.athena.Query")


def test_self_hosted_servers_and_kestra_test_tasks_are_named() -> None:
    """A server one runs oneself that no task here talks to, and Kestra's test-suite tasks:
    one line saying so, not "unknown task type"."""
    message = _refusal("io.kestra.plugin.mongodb.Load")
    assert (
        "io.kestra.plugin.mongodb.Load: needs a MongoDB server; this executor does not run the"
        " mongodb plugin" in message
    )
    assert "supported task types" not in message
    assert "needs an Apache Druid server" in _refusal("io.kestra.plugin.jdbc.druid.Query")
    assert "needs a Kubernetes cluster" in _refusal("io.kestra.plugin.kubernetes.kubectl.Get")
    assert "needs a libvirt (KVM) host" in _refusal("io.kestra.plugin.kvm.CreateVm")
    assert "Kestra's own test suite" in _refusal("io.kestra.core.tasks.test.Read")


def test_an_enterprise_task_runner_says_it_needs_kestra_enterprise() -> None:
    text = (
        "id: f\nnamespace: n\ntasks:\n  - id: t\n"
        "    type: io.kestra.plugin.scripts.shell.Commands\n    commands: [id]\n"
        "    taskRunner: {type: io.kestra.plugin.ee.kubernetes.runner.Kubernetes}\n"
    )
    with pytest.raises(FlowValidationError) as caught:
        load_flow_text(text, Path("f.yaml"))
    assert (
        "unsupported task runner 'io.kestra.plugin.ee.kubernetes.runner.Kubernetes' (the ee"
        " plugin needs Kestra Enterprise)" in str(caught.value)
    )


def test_other_unknown_types_keep_the_generic_message() -> None:
    message = _refusal("io.kestra.plugin.nosuchplugin.Load")
    assert "unknown task type 'io.kestra.plugin.nosuchplugin.Load'" in message
    assert "--list-types" in message
