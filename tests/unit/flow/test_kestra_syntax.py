"""Real Kestra syntax that used to be refused: durations, templated timeouts, rooted globs,
and the wording of what is still refused."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from executor.cli.main import cli
from executor.errors import FlowValidationError
from executor.flow.durations import parse_duration
from executor.flow.loaded import LoadedFlow
from executor.flow.loader import load_flow_text
from executor.flow.model import PauseTask, ScriptTask, WorkingDirectoryTask
from executor.paths import from_namespace_root


def load(text: str) -> LoadedFlow:
    return load_flow_text(textwrap.dedent(text), Path("f.yaml"))


def problems(text: str) -> list[str]:
    with pytest.raises(FlowValidationError) as info:
        load(text)
    return info.value.problems


SCRIPT = """
    id: x
    namespace: n
    tasks:
      - id: wd
        type: io.kestra.plugin.core.flow.WorkingDirectory
        {extra}
        tasks:
          - id: a
            type: io.kestra.plugin.scripts.shell.Commands
            commands: [ls]
            {prop}
"""


def script_flow(prop: str = "", extra: str = "") -> str:
    return SCRIPT.format(prop=prop, extra=extra)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("PT5m", 300), ("pt30s", 30), ("PT1H30M", 5400), ("P1D", 86400), ("PT0.5S", 0.5)],
)
def test_iso_durations_in_any_case(text: str, seconds: float) -> None:
    """ISO-8601 durations parse whatever their case, as Java's Duration.parse does."""
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_a_bad_duration_names_the_text_and_the_form() -> None:
    """Text that is no duration is refused with the text and an example."""
    with pytest.raises(ValueError, match=r"'soon' is not an ISO-8601 duration \(such as PT30S"):
        parse_duration("soon")


def test_lower_case_durations_validate_everywhere() -> None:
    """A cache ttl, a retry interval and a timeout written in lower case are accepted."""
    loaded = load(
        script_flow(
            prop="timeout: PT1m\n"
            "            retry: {type: constant, interval: pt2s, maxAttempt: 2}",
            extra="cache: {patterns: [x/**], ttl: PT5m}",
        )
    )
    wd = loaded.flow.tasks[0]
    assert isinstance(wd, WorkingDirectoryTask)
    assert wd.cache is not None and wd.cache.ttl == timedelta(minutes=5)
    child = wd.tasks[0]
    assert isinstance(child, ScriptTask)
    assert child.timeout == timedelta(minutes=1)
    assert child.retry is not None and child.retry.interval == timedelta(seconds=2)


def test_a_templated_timeout_validates_and_stays_a_template() -> None:
    """``timeout: "{{ inputs.timeout }}"`` is kept as text, rendered when the task starts."""
    loaded = load(script_flow(prop='timeout: "{{ inputs.timeout }}"'))
    wd = loaded.flow.tasks[0]
    assert isinstance(wd, WorkingDirectoryTask)
    assert wd.tasks[0].timeout == "{{ inputs.timeout }}"


def test_a_templated_pause_duration_validates() -> None:
    """A Pause's duration may be a template too."""
    loaded = load("""
        id: x
        namespace: n
        tasks:
          - id: p
            type: io.kestra.plugin.core.flow.Pause
            pauseDuration: "{{ inputs.wait }}"
    """)
    pause = loaded.flow.tasks[0]
    assert isinstance(pause, PauseTask) and pause.pauseDuration == "{{ inputs.wait }}"


def test_a_literal_bad_timeout_is_still_refused_at_validation() -> None:
    """A timeout written literally and wrong is refused before anything runs."""
    found = problems(script_flow(prop="timeout: soon"))
    assert len(found) == 1 and "timeout" in found[0]


@pytest.mark.parametrize(
    ("glob", "rooted"),
    [("/ignore/**", "ignore/**"), ("//a/*.sql", "a/*.sql"), ("a/**", "a/**"), ("/", "/")],
)
def test_namespace_globs_with_a_leading_slash_are_rooted(glob: str, rooted: str) -> None:
    """A leading ``/`` in a namespaceFiles glob means the namespace root."""
    assert from_namespace_root(glob) == rooted


def test_a_rooted_namespace_glob_validates() -> None:
    """Kestra's own `exclude: [/ignore/**]` is valid; an absolute outputFiles glob is not."""
    load(script_flow(prop="namespaceFiles: {enabled: true, exclude: [/ignore/**]}"))
    found = problems(script_flow(prop="outputFiles: [/etc/passwd]"))
    assert "is absolute" in found[0]


def test_a_property_of_another_task_is_not_suggested_as_itself() -> None:
    """`namespace` on a shell task is unknown, and no "did you mean 'namespace'?" follows."""
    found = problems(script_flow(prop="namespace: other"))
    assert found[0].endswith("unknown property 'namespace'")


def test_an_unknown_task_runner_is_one_problem() -> None:
    """An unsupported runner is reported once, not once per property of its own."""
    found = problems(
        script_flow(
            prop="taskRunner: {type: io.kestra.plugin.ee.kubernetes.runner.Kubernetes, "
            "namespace: default, resources: {}}"
        )
    )
    assert len(found) == 1
    assert "unsupported task runner 'io.kestra.plugin.ee.kubernetes.runner.Kubernetes'" in found[0]


def test_unknown_task_types_point_to_the_list_once(tmp_path: Path) -> None:
    """`validate` of two flows with unknown types says once, at the end, where the list is."""
    flows = []
    for name in ("a", "b"):
        path = tmp_path / f"{name}.yaml"
        path.write_text(
            f"id: {name}\nnamespace: n\ntasks:\n"
            "  - {id: t1, type: io.kestra.plugin.nope.One}\n"
            "  - {id: t2, type: io.kestra.plugin.nope.Two}\n"
        )
        flows.append(str(path))
    result = CliRunner().invoke(cli, ["validate", *flows])
    assert result.exit_code == 2
    assert result.output.count("unknown task type") == 4
    assert result.output.count("--list-types") == 1
    assert result.output.rstrip().splitlines()[-1].startswith("`executor validate --list-types`")
    assert "io.kestra.plugin.core.log.Log" not in result.output  # the list itself is not printed
