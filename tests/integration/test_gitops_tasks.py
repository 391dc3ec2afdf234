"""GitOps tasks against bare repositories served over http with basic auth on 127.0.0.1 (one
git server for the module), under ``executor run`` (a ``--flows`` directory) and a server."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from executor.run import ion
from tests.integration.helpers import cli, write_flow
from tests.integration.host_flows import logs, task_run
from tests.integration.server_helpers import LiveServer, push_flow, wait_state
from tests.unit.workspace.gitserver import GitServer, git, make_repo, serve

pytestmark = pytest.mark.integration

USER = "alice"
PASSWORD = "git-s3cret-token-9"
ENV = {"SECRET_GIT_PASSWORD": base64.b64encode(PASSWORD.encode()).decode()}
AUTH = f"""
    username: {USER}
    password: "{{{{ secret('GIT_PASSWORD') }}}}"
"""


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, GitServer]]:
    """A directory of bare repositories and the server that serves them."""
    root = tmp_path_factory.mktemp("srv")
    with serve(root, (USER, PASSWORD)) as server:
        yield root, server


def _bare(repos: tuple[Path, GitServer], name: str, files: dict[str, str] | None = None) -> Path:
    """A new bare repository ``name`` whose one commit holds ``files`` (a README when none)."""
    root, _ = repos
    source = root.parent / f"{name}-src"
    source.mkdir()
    for rel, text in (files or {"README": "readme\n"}).items():
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        (source / rel).write_text(text)
    make_repo(source, root / f"{name}.git")
    return root / f"{name}.git"


def _flow_file(directory: Path, name: str, flow_id: str, namespace: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(
        f"id: {flow_id}\nnamespace: {namespace}\ntasks:\n"
        "  - id: l\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
    )


def _show(bare: Path, ref: str, path: str) -> str:
    return git(bare, "show", f"{ref}:{path}")


def _run(home: Path, tmp_path: Path, flow: str, flows: Path) -> dict[str, object]:
    flows.mkdir(parents=True, exist_ok=True)
    path = write_flow(flows, flow, "gitops.yml")
    proc = cli(home, "run", "--json", str(path), "--flows", str(flows), env=ENV, timeout=180)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert PASSWORD not in proc.stdout + proc.stderr
    execution: dict[str, object] = json.loads(proc.stdout)
    return execution


def _rows(home: Path, tmp_path: Path, uri: str) -> list[dict[str, object]]:
    dest = tmp_path / "rows.ion"
    proc = cli(home, "storage", "get", uri, str(dest))
    assert proc.returncode == 0, proc.stderr
    with dest.open("rb") as fh:
        return list(ion.read_rows(fh))


def test_push_flows_then_sync_flows_under_executor_run(
    home: Path, tmp_path: Path, repos: tuple[Path, GitServer]
) -> None:
    """PushFlows commits the namespace's flows (namespace rewritten) as its author; SyncFlows
    brings them into another namespace of the flows directory and deletes what Git lacks,
    never the running flow; the password shows nowhere."""
    bare = _bare(repos, "flows")
    flows = tmp_path / "flows"
    _flow_file(flows / "dev", "hello.yml", "hello", "team.dev")
    _flow_file(flows / "prod", "stale.yml", "stale", "team.prod")
    url = repos[1].url("flows.git")
    flow = f"""
id: gitops
namespace: team.prod
tasks:
  - id: push
    type: io.kestra.plugin.git.PushFlows
    url: {url}
    branch: release
    sourceNamespace: team.dev
    targetNamespace: team.prod
    commitMessage: "release {{{{ execution.id }}}}"
    authorName: Release Bot
    authorEmail: bot@example.invalid{AUTH}
  - id: sync
    type: io.kestra.plugin.git.SyncFlows
    url: {url}
    branch: release
    targetNamespace: team.prod
    delete: true{AUTH}
"""
    execution = _run(home, tmp_path, flow, flows)
    assert execution["state"]["current"] == "SUCCESS", logs(home, execution)  # type: ignore[index]
    pushed = task_run(execution, "push")["outputs"]
    head = git(bare, "rev-parse", "release").strip()
    assert pushed["commitId"] == head
    assert pushed["commitURL"] == f"{url.removesuffix('.git')}/commit/{head}"
    assert "namespace: team.prod" in _show(bare, "release", "_flows/hello.yml")
    assert git(bare, "log", "-1", "--format=%an <%ae> %s", "release").startswith(
        f"Release Bot <bot@example.invalid> release {execution['id']}"
    )
    assert _rows(home, tmp_path, pushed["flows"]) == [
        {"file": "_flows/hello.yml", "additions": "+6", "deletions": "-0", "changes": "0"}
    ]
    assert (flows / "team.prod" / "hello.yml").is_file()
    assert not (flows / "prod" / "stale.yml").exists()
    assert (flows / "gitops.yml").is_file()  # the running flow is never deleted
    synced = _rows(home, tmp_path, task_run(execution, "sync")["outputs"]["flows"])
    assert [(r["syncState"], r["flowId"]) for r in synced] == [
        ("DELETED", "stale"),
        ("ADDED", "hello"),
    ]
    assert PASSWORD not in logs(home, execution)


def test_namespace_files_dry_run_push_and_sync(
    home: Path, tmp_path: Path, repos: tuple[Path, GitServer]
) -> None:
    """A dry run commits nothing but lists the change; a push commits the namespace's files;
    a sync with delete makes another namespace's files those of Git."""
    bare = _bare(repos, "files")
    source = tmp_path / "ns"
    (source / "scripts").mkdir(parents=True)
    (source / "scripts" / "etl.py").write_text("print('etl')\n")
    assert cli(home, "namespace", "push", "team.dev", str(source)).returncode == 0
    old = tmp_path / "old"
    old.mkdir()
    (old / "gone.txt").write_text("old\n")
    assert cli(home, "namespace", "push", "team.copy", str(old)).returncode == 0
    before = git(bare, "rev-parse", "main").strip()
    url = repos[1].url("files.git")
    flow = f"""
id: gitops
namespace: team.dev
tasks:
  - id: preview
    type: io.kestra.plugin.git.PushNamespaceFiles
    url: {url}
    dryRun: true{AUTH}
  - id: check
    type: io.kestra.plugin.core.execution.Assert
    conditions:
      - "{{{{ outputs.preview.commitId == null }}}}"
  - id: push
    type: io.kestra.plugin.git.PushNamespaceFiles
    url: {url}
    files: "scripts/**"{AUTH}
  - id: sync
    type: io.kestra.plugin.git.SyncNamespaceFiles
    url: {url}
    namespace: team.copy
    delete: true{AUTH}
"""
    execution = _run(home, tmp_path, flow, tmp_path / "flows")
    assert execution["state"]["current"] == "SUCCESS", logs(home, execution)  # type: ignore[index]
    preview = task_run(execution, "preview")["outputs"]
    assert _rows(home, tmp_path, preview["files"]) == [
        {"file": "_files/scripts/etl.py", "additions": "+1", "deletions": "-0", "changes": "0"}
    ]
    assert git(bare, "rev-list", "--count", "main").strip() == "2"  # the dry run pushed nothing
    assert git(bare, "rev-parse", "main~1").strip() == before
    assert _show(bare, "main", "_files/scripts/etl.py") == "print('etl')\n"
    listed = cli(home, "namespace", "ls", "team.copy").stdout
    assert "scripts/etl.py" in listed and "gone.txt" not in listed


def test_push_in_a_working_directory_commits_the_clone_and_runs_nothing_it_planted(
    home: Path, tmp_path: Path, repos: tuple[Path, GitServer]
) -> None:
    """Push without url commits what the children wrote into the cloned repository, on a new
    branch; a .git/config or hook planted by a child never runs on the host; PushExecutionFiles
    commits an output file."""
    bare = _bare(repos, "work", {"app.py": "print(1)\n"})
    marker = tmp_path / "pwned"
    url = repos[1].url("work.git")
    plant = (
        f"printf '[core]\\n\\tfsmonitor = touch {marker}\\n"
        f'[remote "origin"]\\n\\turl = {url}\\n\' > .git/config'
    )
    flow = f"""
id: gitops
namespace: team.dev
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    outputFiles:
      - report.txt
    tasks:
      - id: clone
        type: io.kestra.plugin.git.Clone
        url: {url}{AUTH.replace(chr(10) + "    ", chr(10) + "        ")}
      - id: change
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: executor/busybox:latest
        commands:
          - echo "print(2)" > app.py
          - echo "done" > report.txt
          - {plant}
          - mkdir -p .git/hooks && printf '#!/bin/sh\\ntouch {marker}\\n' > .git/hooks/pre-commit
      - id: push
        type: io.kestra.plugin.git.Push
        branch: feature
        commitMessage: change app
        flows:
          enabled: false
        addFilesPattern:
          - app.py{AUTH.replace(chr(10) + "    ", chr(10) + "        ")}
  - id: archive
    type: io.kestra.plugin.git.PushExecutionFiles
    url: {url}
    branch: reports
    files:
      - "*.txt"{AUTH}
"""
    execution = _run(home, tmp_path, flow, tmp_path / "flows")
    assert execution["state"]["current"] == "SUCCESS", logs(home, execution)  # type: ignore[index]
    assert _show(bare, "feature", "app.py") == "print(2)\n"
    assert (
        git(bare, "rev-parse", "feature").strip()
        == task_run(execution, "push")["outputs"]["commitId"]
    )
    assert "report.txt" not in git(bare, "ls-tree", "--name-only", "feature")
    assert _show(bare, "reports", "_outputs/report.txt") == "done\n"
    assert not marker.exists(), "a command planted in the workspace's .git ran on the host"


def test_server_syncs_flows_into_its_store_and_refuses_file_urls(
    home: Path, tmp_path: Path, repos: tuple[Path, GitServer]
) -> None:
    """In server mode SyncFlows saves the flows as revisions of the server's store (a second
    run changes nothing), and a file:// URL is refused unless host options are allowed."""
    _bare(
        repos,
        "served",
        {
            "_flows/a.yml": "id: a\nnamespace: somewhere\ntasks:\n"
            "  - id: l\n    type: io.kestra.plugin.core.log.Log\n    message: a\n"
        },
    )
    url = repos[1].url("served.git")
    flow = f"""
id: sync
namespace: team.ops
tasks:
  - id: sync
    type: io.kestra.plugin.git.SyncFlows
    url: {url}
    targetNamespace: team.prod{AUTH}
"""
    with LiveServer(home, workers=1, env=ENV) as server, server.client() as client:
        push_flow(client, flow)
        for expected in (1, 1):
            started = client.post("/api/v1/executions/team.ops/sync").json()
            done = wait_state(client, started["id"], {"SUCCESS", "FAILED"})
            assert done["state"]["current"] == "SUCCESS", done
            stored = client.get("/api/v1/flows/team.prod/a", params={"source": "true"}).json()
            assert stored["revision"] == expected
            assert "namespace: team.prod" in stored["source"]
        refused = client.post(
            "/api/v1/flows",
            content=flow.replace(url, f"file://{repos[0]}/served.git"),
            headers={"Content-Type": "application/x-yaml"},
        )
        assert refused.status_code == 422, refused.text
        assert "opens the host" in refused.text
