"""Globs, path checks and the validation the loader can call, before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from executor.errors import FlowValidationError, UnsafePathError
from executor.flow.loader import load_flow_text
from executor.paths import check_safe, safe_relative, unsafe_reason
from executor.workspace.globs import GlobSet, glob_regex

UNSAFE_FLOW = """
id: unsafe
namespace: tests.paths
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    inputFiles:
      ../escape: "x"
      fine.txt: "y"
    outputFiles:
      - /etc/*
    namespaceFiles:
      include: ["../../**"]
    cache:
      patterns: ["~/x"]
    tasks:
      - id: clone
        type: io.kestra.plugin.git.Clone
        url: file:///srv/repo.git
        directory: ../../outside
      - id: files
        type: io.kestra.plugin.core.storage.LocalFiles
        inputs:
          "{{ inputs.name }}/ok.txt": "templated keys are checked at run time"
        outputs:
          - "**/*.csv"
"""


@pytest.mark.parametrize(
    ("glob", "path", "matches"),
    [
        ("**/*.tmp", "scratch.tmp", True),
        ("**/*.tmp", "a/b/scratch.tmp", True),
        ("scripts/**", "scripts/deep/main.py", True),
        ("*.csv", "sub/report.csv", False),
        ("report.csv", "report.csv", True),
        ("*.{csv,txt}", "notes.txt", True),
        ("[!a]?.py", "bc.py", True),
        ("[!a]?.py", "ac.py", False),
        ("./out/*.json", "out/x.json", True),
    ],
)
def test_glob_matching(glob: str, path: str, matches: bool) -> None:
    """Globs match relative paths the way a Kestra user expects ('**/' also matches no dir)."""
    assert bool(glob_regex(glob).match(path)) is matches


@pytest.mark.parametrize("glob", ["/etc/*", "../*", "a/../../b", "~/secrets", "C:\\x"])
def test_unsafe_globs_are_refused(glob: str) -> None:
    """An absolute or climbing glob cannot be compiled, so it can never be matched."""
    with pytest.raises(UnsafePathError):
        glob_regex(glob)


def test_templates_are_left_for_run_time() -> None:
    """A templated path is judged on its literal parts only."""
    assert unsafe_reason("{{ inputs.dir }}/x.txt", templated=True) is None
    assert unsafe_reason("/{{ inputs.dir }}", templated=True) is not None


def test_globset_include_and_exclude() -> None:
    """A path is chosen when an include matches and no exclude does; no include means all."""
    chosen = GlobSet.of(["scripts/**", "conf/settings.json"], ["**/*.tmp"])
    assert chosen("scripts/main.py") and chosen("conf/settings.json")
    assert not chosen("scripts/scratch.tmp") and not chosen("secrets/token.txt")
    assert GlobSet.of([], ["*.tmp"])("anything.py")


def test_check_workspace_paths_names_each_unsafe_path_with_its_line(tmp_path: Path) -> None:
    """Every unsafe path of the flow is one located problem; safe and templated ones are not."""
    with pytest.raises(FlowValidationError) as info:
        load_flow_text(UNSAFE_FLOW, tmp_path / "unsafe.yaml")
    problems = info.value.problems
    joined = "\n".join(problems)
    assert len(problems) == 5, joined
    assert "unsafe.yaml:8:" in joined and "'../escape'" in joined
    assert "'/etc/*' is absolute" in joined
    assert "'../../**'" in joined and "'~/x'" in joined
    assert "directory (task 'clone')" in joined and "'../../outside'" in joined
    assert "fine.txt" not in joined and "**/*.csv" not in joined


def test_a_rendered_value_is_judged_whole() -> None:
    """Braces left in a rendered value (an input's own text) hide nothing from the run-time
    check: only a flow's text has its expressions put off to run time."""
    sneaky = "{{/../../etc}}/passwd"
    assert unsafe_reason(sneaky, templated=True) is None  # the flow's text: judged once rendered
    with pytest.raises(UnsafePathError, match="climbs out"):
        check_safe(sneaky, "inputFiles path")
    with pytest.raises(UnsafePathError, match="climbs out"):
        safe_relative(sneaky)
