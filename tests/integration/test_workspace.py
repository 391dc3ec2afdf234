"""Namespace files, inputFiles, outputFiles and the cache against the real engine."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from executor.engine import labels
from executor.errors import FlowValidationError
from executor.model import Execution
from tests.conftest import DATA, copy_flow
from tests.integration.helpers import Recorder, cli, our_resources, run_flow, states, write_flow

pytestmark = pytest.mark.integration


def _push_examples(home: Path) -> None:
    result = cli(home, "namespace", "push", "examples.ns", str(DATA / "namespaces" / "examples.ns"))
    assert result.returncode == 0, result.stderr


def _warnings(rec: Recorder, task_id: str) -> list[str]:
    return [ln.message for ln in rec.lines if ln.task_id == task_id and ln.level.value == "WARN"]


def _left(execution: Execution) -> list[object]:
    return our_resources(**{labels.EXECUTION: execution.id})


def test_namespace_files_flow(home: Path, tmp_path: Path) -> None:
    """namespace_files.yaml: included files present, excluded ones absent, inline inputFiles win."""
    _push_examples(home)
    execution, rec = run_flow(home, copy_flow("namespace_files.yaml", tmp_path))
    assert execution.state.current.value == "SUCCESS", rec.messages()
    listed = rec.messages("inspect")
    assert "main.py" in listed and "settings.json" in listed and "notes.txt" in listed
    assert not any("scratch.tmp" in m or "secrets" in m or "token" in m for m in listed)
    assert execution.task_run("main").outputs["vars"]["mode"] == "inline-wins"
    assert not _left(execution)


def test_unknown_namespace_fails_clearly(home: Path, tmp_path: Path) -> None:
    """Namespace files of a namespace never pushed: the WorkingDirectory FAILS, naming it."""
    execution, _ = run_flow(home, copy_flow("namespace_files.yaml", tmp_path))
    assert execution.state.current.value == "FAILED"
    assert states(execution) == {"wdir": "FAILED"}
    reason = execution.task_run("wdir").reason or ""
    assert "namespace 'examples.ns' has no files" in reason and "namespace push" in reason
    assert not _left(execution)


NAMESPACE_ORDER = """
id: order
namespace: tests.ws
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    namespaceFiles:
      namespaces: [team.base, team.override]
    tasks:
      - id: merged
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: busybox
        commands:
          - cat shared.txt base-only.txt
      - id: per_folder
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: busybox
        namespaceFiles:
          namespaces: [team.base, team.override]
          folderPerNamespace: true
        commands:
          - cat team.base/shared.txt team.override/shared.txt
      - id: keep
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: busybox
        namespaceFiles:
          namespaces: [team.base]
          ifExists: WARN
        commands:
          - echo changed-by-task > base-only.txt
      - id: check_kept
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: busybox
        namespaceFiles:
          namespaces: [team.base]
          ifExists: IGNORE
        commands:
          - cat base-only.txt
      - id: clash
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: busybox
        namespaceFiles:
          namespaces: [team.base]
          ifExists: FAIL
        commands:
          - echo never runs
"""


def test_namespaces_in_order_folders_and_if_exists(home: Path, tmp_path: Path) -> None:
    """Later namespaces win, folderPerNamespace separates, WARN/IGNORE keep, FAIL fails."""
    for name, files in {
        "team.base": {"shared.txt": "from base", "base-only.txt": "base only"},
        "team.override": {"shared.txt": "from override"},
    }.items():
        src = tmp_path / name
        src.mkdir()
        for path, text in files.items():
            (src / path).write_text(text + "\n")
        assert cli(home, "namespace", "push", name, str(src)).returncode == 0
    execution, rec = run_flow(home, write_flow(tmp_path, NAMESPACE_ORDER))
    assert rec.messages("merged")[-2:] == ["from override", "base only"]
    assert rec.messages("per_folder")[-2:] == ["from base", "from override"]
    assert any("kept the existing" in m and "base-only.txt" in m for m in _warnings(rec, "keep"))
    assert "changed-by-task" in rec.messages("check_kept")
    assert execution.task_run("clash").state.current.value == "FAILED"
    assert "ifExists: FAIL" in (execution.task_run("clash").reason or "")
    assert not any("never runs" in m for m in rec.messages("clash"))


def test_etl_flow_report_in_store_and_storage_get(home: Path, tmp_path: Path) -> None:
    """etl_csv.yaml: rows == 10 and report.csv (11 lines) fetched back with storage get."""
    execution, rec = run_flow(home, copy_flow("etl_csv.yaml", tmp_path))
    assert execution.state.current.value == "SUCCESS", rec.messages()
    assert execution.task_run("transform").outputs["vars"]["rows"] == 10
    uri = execution.task_run("etl").outputs["outputFiles"]["report.csv"]
    assert uri.startswith("kestra:///examples/etl/etl_csv/executions/")
    got = cli(home, "storage", "get", uri, str(tmp_path / "report.csv"))
    assert got.returncode == 0, got.stderr
    lines = (tmp_path / "report.csv").read_text().splitlines()
    assert len(lines) == 11 and lines[0] == "id,amount,double" and lines[-1] == "10,30,60"
    assert not _left(execution)


def test_kestra_helper_flow(home: Path, tmp_path: Path) -> None:
    """kestra_helper.yaml: total 45, counter items = 10, LocalFiles summary.txt stored."""
    execution, rec = run_flow(home, copy_flow("kestra_helper.yaml", tmp_path))
    assert execution.state.current.value == "SUCCESS", rec.messages()
    analyze = execution.task_run("analyze")
    assert analyze.outputs["vars"]["total"] == 45
    assert any(
        m["name"] == "items" and m["type"] == "counter" and m["value"] == 10
        for m in analyze.metrics
    )
    uri = execution.task_run("collect").outputs["uris"]["summary.txt"]
    got = cli(home, "storage", "get", uri)
    assert got.returncode == 0 and got.stdout == "total=45\n"


def test_cache_venv_hit_on_second_execution_and_expiry(home: Path, tmp_path: Path) -> None:
    """cache_venv.yaml: first creates the venv, second logs 'cache hit'; an expired entry misses."""
    flow = copy_flow("cache_venv.yaml", tmp_path)
    first, rec1 = run_flow(home, flow)
    assert first.state.current.value == "SUCCESS", rec1.messages()
    assert "created venv" in rec1.messages("setup")
    assert any(
        m.startswith("cache saved for examples.cache/cache_venv/wdir")
        for m in rec1.messages("wdir")
    )
    second, rec2 = run_flow(home, flow)
    assert second.state.current.value == "SUCCESS", rec2.messages()
    assert "cache hit" in rec2.messages("setup")
    assert "created venv" not in rec2.messages("setup")
    assert any("unchanged" in m for m in rec2.messages("wdir"))
    listed = cli(home, "cache", "ls")
    assert "examples.cache/cache_venv/wdir" in listed.stdout
    manifest = home / "cache" / "examples.cache" / "cache_venv" / "wdir.json"
    doc = json.loads(manifest.read_text())
    doc["saved_at"] = time.time() - 3601
    manifest.write_text(json.dumps(doc))
    third, rec3 = run_flow(home, flow)
    assert third.state.current.value == "SUCCESS"
    assert any("expired" in m for m in rec3.messages("wdir"))
    assert "created venv" in rec3.messages("setup")
    assert cli(home, "cache", "clear", "examples.cache").returncode == 0
    assert "examples.cache" not in cli(home, "cache", "ls").stdout


FILES_FLOW = """
id: files
namespace: tests.ws
tasks:
  - id: produce
    type: io.kestra.plugin.core.flow.WorkingDirectory
    outputFiles:
      - "out/**"
      - "*.missing"
    tasks:
      - id: write
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: busybox
        inputFiles:
          in/param.txt: "param for {{ flow.id }}"
        outputFiles:
          - in/param.txt
        commands:
          - mkdir -p out/deep && cp in/param.txt out/deep/copy.txt && echo side > out/side.txt
          - exit 3
  - id: consume
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: local
        type: io.kestra.plugin.core.storage.LocalFiles
        inputs:
          from-store.txt: "{{ outputs.produce.outputFiles['out/deep/copy.txt'] }}"
      - id: read
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: busybox
        commands:
          - cat from-store.txt
"""


def test_output_files_after_failure_feed_later_input_files(home: Path, tmp_path: Path) -> None:
    """A failed child still has its files collected; a later task reads one back by URI."""
    flow = write_flow(tmp_path, FILES_FLOW.replace("  - id: consume", "finally:\n  - id: consume"))
    execution, rec = run_flow(home, flow)
    produce = execution.task_run("produce")
    assert produce.state.current.value == "FAILED"
    assert sorted(produce.outputs["outputFiles"]) == ["out/deep/copy.txt", "out/side.txt"]
    assert "in/param.txt" in execution.task_run("write").outputs["outputFiles"]
    assert any("nothing matches '*.missing'" in m for m in _warnings(rec, "produce"))
    assert rec.messages("read")[-1] == "param for files"
    assert execution.task_run("read").state.current.value == "SUCCESS"


LINK_ATTACK = """
id: links
namespace: tests.ws
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    outputFiles:
      - "*.csv"
      - "etc/*"
    tasks:
      - id: plant
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: busybox
        commands:
          - ln -s /etc/passwd report.csv
          - ln -s /etc etc
          - ln -s {artifacts} store.csv
          - ln /etc/passwd hard.csv 2>/dev/null || echo "no cross-device hard link"
          - echo "a,b" > real.csv
"""


def test_symlink_to_etc_passwd_is_never_harvested(home: Path, tmp_path: Path) -> None:
    """report.csv -> /etc/passwd, etc -> /etc, a link into the host's store: none is collected."""
    flow = write_flow(tmp_path, LINK_ATTACK.format(artifacts=home / "artifacts"))
    execution, rec = run_flow(home, flow)
    assert execution.state.current.value == "SUCCESS", rec.messages()
    collected = execution.task_run("wd").outputs["outputFiles"]
    assert set(collected) <= {"real.csv", "hard.csv"} and "real.csv" in collected
    warnings = " ".join(_warnings(rec, "wd"))
    assert "report.csv is a symbolic link" in warnings
    assert "store.csv is a symbolic link" in warnings
    for path in (home / "artifacts").rglob("*"):
        assert not path.is_symlink(), path
        if path.is_file() and path.name != "hard.csv":
            assert "root:x:0:0" not in path.read_text(errors="replace"), path


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("inputFiles:\n      ../escape: owned", "'../escape'"),
        ("outputFiles:\n      - /etc/*", "'/etc/*'"),
        ("namespaceFiles:\n      include: [../../**]", "'../../**'"),
    ],
)
def test_escaping_paths_are_refused_before_anything_runs(
    home: Path, tmp_path: Path, field: str, value: str
) -> None:
    """An inputFiles key '../escape', an output glob '/etc/*': refused, no child ever starts."""
    flow = write_flow(
        tmp_path,
        f"""
id: escape
namespace: tests.ws
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    {field}
    tasks:
      - id: child
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: busybox
        commands: ["echo started"]
""",
    )
    try:
        execution, _ = run_flow(home, flow)
    except FlowValidationError as exc:  # once the loader calls check_workspace_paths
        assert value in str(exc)
        return
    assert execution.state.current.value == "FAILED"
    assert value in (execution.task_run("wd").reason or "")
    assert "child" not in states(execution)
    assert not (tmp_path / "escape").exists() and not _left(execution)
