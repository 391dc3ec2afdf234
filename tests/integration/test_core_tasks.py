"""Core host tasks through `executor run`: labels, exit, assert, storage, log fetch, namespace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.helpers import cli
from tests.integration.host_flows import run_json, state_of, task_run

pytestmark = pytest.mark.integration


def _stored(home: Path, uri: str) -> bytes:
    return (home / "artifacts" / uri.removeprefix("kestra:///")).read_bytes()


def test_storage_tasks_write_split_concat_size_and_purge(home: Path, tmp_path: Path) -> None:
    """Write, Split by rows, Concat with a separator, Size; Purge removes this run's files."""
    proc, execution = run_json(
        home,
        tmp_path,
        """
        id: files
        namespace: tests.core
        tasks:
          - id: write
            type: io.kestra.plugin.core.storage.Write
            content: "a\\nb\\nc\\nd\\ne\\n"
            extension: .txt
          - id: split
            type: io.kestra.plugin.core.storage.Split
            from: "{{ outputs.write.uri }}"
            rows: 2
          - id: concat
            type: io.kestra.plugin.core.storage.Concat
            files: "{{ outputs.split.uris | toJson }}"
            separator: "--\\n"
          - id: size
            type: io.kestra.plugin.core.storage.Size
            uri: "{{ outputs.concat.uri }}"
          - id: by_bytes
            type: io.kestra.plugin.core.storage.Split
            from: "{{ outputs.write.uri }}"
            bytes: 4B
        """,
    )
    assert proc.returncode == 0, proc.stderr
    uris = task_run(execution, "split")["outputs"]["uris"]
    assert [_stored(home, u) for u in uris] == [b"a\nb\n", b"c\nd\n", b"e\n"]
    concat = task_run(execution, "concat")["outputs"]["uri"]
    assert _stored(home, concat) == b"a\nb\n--\nc\nd\n--\ne\n--\n"
    assert task_run(execution, "size")["outputs"]["size"] == 19
    assert len(task_run(execution, "by_bytes")["outputs"]["uris"]) == 3

    proc, purged = run_json(
        home,
        tmp_path,
        """
        id: purge
        namespace: tests.core
        tasks:
          - id: write
            type: io.kestra.plugin.core.storage.Write
            content: hello
          - id: purge
            type: io.kestra.plugin.core.storage.PurgeCurrentExecutionFiles
        """,
    )
    assert proc.returncode == 0, proc.stderr
    written = task_run(purged, "write")["outputs"]["uri"]
    assert task_run(purged, "purge")["outputs"]["uris"] == [written]
    assert not (home / "artifacts" / written.removeprefix("kestra:///")).exists()


def test_labels_assert_and_exit(home: Path, tmp_path: Path) -> None:
    """Labels land on the execution; a failed Assert names its condition; Exit stops the run."""
    proc, execution = run_json(
        home,
        tmp_path,
        """
        id: control
        namespace: tests.core
        tasks:
          - id: label
            type: io.kestra.plugin.core.execution.Labels
            labels:
              - key: team
                value: data
          - id: check
            type: io.kestra.plugin.core.execution.Assert
            conditions:
              - "{{ 1 + 1 == 2 }}"
              - "{{ labels.team == 'finance' }}"
            allowFailure: true
          - id: stop
            type: io.kestra.plugin.core.execution.Exit
            state: WARNING
          - id: never
            type: io.kestra.plugin.core.log.Log
            message: should not run
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert {"key": "team", "value": "data"} in execution["labels"]
    assert state_of(execution, "check") == "WARNING"
    assert "1 assertion(s) failed" in task_run(execution, "check")["reason"]
    assert execution["state"]["current"] == "WARNING"
    assert "never" not in [t["taskId"] for t in execution["taskRunList"]]
    shown = cli(home, "logs", execution["id"]).stdout
    assert "Assertion `{{ labels.team == 'finance' }}` failed!" in shown


def test_exit_failed_skips_the_rest(home: Path, tmp_path: Path) -> None:
    """Exit with FAILED: the execution ends FAILED at once (exit 1), later tasks never start."""
    proc, execution = run_json(
        home,
        tmp_path,
        """
        id: bail
        namespace: tests.core
        tasks:
          - id: stop
            type: io.kestra.plugin.core.execution.Exit
            state: FAILED
          - id: never
            type: io.kestra.plugin.core.log.Log
            message: should not run
        """,
    )
    assert proc.returncode == 1
    assert execution["state"]["current"] == "FAILED"
    assert [t["taskId"] for t in execution["taskRunList"]] == ["stop"]


def test_log_fetch_and_namespace_files_round_trip(home: Path, tmp_path: Path) -> None:
    """Fetch writes this run's lines; UploadFiles/DownloadFiles/DeleteFiles move namespace files."""
    proc, execution = run_json(
        home,
        tmp_path,
        """
        id: nsfiles
        namespace: tests.core
        tasks:
          - id: say
            type: io.kestra.plugin.core.log.Log
            message: marker-line-42
            level: WARN
          - id: fetch
            type: io.kestra.plugin.core.log.Fetch
            level: WARN
          - id: write
            type: io.kestra.plugin.core.storage.Write
            content: "print('hi')"
            extension: .py
          - id: upload
            type: io.kestra.plugin.core.namespace.UploadFiles
            namespace: tests.core
            files:
              - "{{ outputs.write.uri }}"
            destination: /scripts
          - id: download
            type: io.kestra.plugin.core.namespace.DownloadFiles
            namespace: tests.core
            files: ["/scripts/**"]
        """,
    )
    assert proc.returncode == 0, proc.stderr
    fetched = task_run(execution, "fetch")["outputs"]
    rows = [json.loads(line) for line in _stored(home, fetched["uri"]).splitlines()]
    assert fetched["size"] == len(rows) >= 1
    assert {r["level"] for r in rows} <= {"WARN", "ERROR"}
    assert any(r["message"] == "marker-line-42" and r["taskId"] == "say" for r in rows)
    listed = cli(home, "namespace", "ls", "tests.core").stdout
    assert "scripts/write.py" in listed
    files = task_run(execution, "download")["outputs"]["files"]
    assert list(files) == ["/scripts/write.py"]
    assert _stored(home, files["/scripts/write.py"]) == b"print('hi')"

    proc, deleted = run_json(
        home,
        tmp_path,
        """
        id: nsdelete
        namespace: tests.core
        tasks:
          - id: delete
            type: io.kestra.plugin.core.namespace.DeleteFiles
            namespace: tests.core
            files: "/scripts/*.py"
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert state_of(deleted, "delete") == "SUCCESS"
    assert "scripts/write.py" not in cli(home, "namespace", "ls", "tests.core").stdout


def test_bad_inputs_fail_with_one_reason_each(home: Path, tmp_path: Path) -> None:
    """A missing file, an upload of a non-URI, a Split without a rule: FAILED, reason by task."""
    proc, execution = run_json(
        home,
        tmp_path,
        """
        id: bad
        namespace: tests.core
        tasks:
          - id: all
            type: io.kestra.plugin.core.flow.Parallel
            onChildFailure: CONTINUE
            tasks:
              - id: size
                type: io.kestra.plugin.core.storage.Size
                uri: kestra:///tests/core/bad/executions/e0/nothing.txt
              - id: upload
                type: io.kestra.plugin.core.namespace.UploadFiles
                namespace: tests.core
                files: ["*.csv"]
              - id: split
                type: io.kestra.plugin.core.storage.Split
                from: kestra:///tests/core/bad/executions/e0/nothing.txt
              - id: exit
                type: io.kestra.plugin.core.execution.Exit
                state: SOMETIMES
        """,
    )
    assert proc.returncode == 1
    assert (
        "no artifact at kestra:///tests/core/bad/executions/e0/nothing.txt"
        in task_run(execution, "size")["reason"]
    )
    assert "is not a kestra:/// URI" in task_run(execution, "upload")["reason"]
    assert "give exactly one of" in task_run(execution, "split")["reason"]
    assert "'state' must be one of" in task_run(execution, "exit")["reason"]
    assert "task 'upload'" in task_run(execution, "upload")["reason"]
