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


def test_other_unknown_types_keep_the_generic_message() -> None:
    message = _refusal("io.kestra.plugin.mongodb.Load")
    assert "unknown task type 'io.kestra.plugin.mongodb.Load'" in message
    assert "--list-types" in message
