"""git Clone as a child task: repos served over http on 127.0.0.1 and as file://, auth or not."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from executor.engine import labels
from executor.model import Execution
from tests.conftest import DATA, copy_flow
from tests.integration.helpers import Recorder, cli, our_resources, run_flow, states, write_flow
from tests.unit.workspace.gitserver import GitServer, make_repo, serve

pytestmark = pytest.mark.integration

PASSWORD = "s3cret-Git-Pass-42"


@pytest.fixture
def repos(tmp_path: Path) -> Path:
    """A directory of bare repositories: hello.git is tests/data/repos/hello on branch main."""
    root = tmp_path / "srv"
    make_repo(DATA / "repos" / "hello", root / "hello.git")
    return root


@pytest.fixture
def server(repos: Path) -> Iterator[GitServer]:
    """The repositories over plain http on 127.0.0.1, no auth."""
    with serve(repos) as running:
        yield running


@pytest.fixture
def private_server(repos: Path) -> Iterator[GitServer]:
    """The repositories over http on 127.0.0.1 behind basic auth (alice / PASSWORD)."""
    with serve(repos, ("alice", PASSWORD)) as running:
        yield running


def _everything_said(execution: Execution, rec: Recorder) -> str:
    return "\n".join(rec.messages()) + json.dumps(execution.to_json(), default=str)


def _check_git_python(execution: Execution, rec: Recorder) -> None:
    assert execution.state.current.value == "SUCCESS", rec.messages()
    assert "hello from the repo" in rec.messages("run")
    assert execution.task_run("run").outputs["vars"]["greeting"] == "hello"
    assert execution.task_run("clone").outputs["directory"] == "/workspace/src"
    assert not our_resources(**{labels.EXECUTION: execution.id})


def test_git_python_over_http(home: Path, tmp_path: Path, server: GitServer) -> None:
    """git_python.yaml with a repo served on 127.0.0.1: SUCCESS, the repo's script ran."""
    execution, rec = run_flow(
        home, copy_flow("git_python.yaml", tmp_path), {"repo_url": server.url("hello.git")}
    )
    _check_git_python(execution, rec)
    assert any(r.startswith("GET /hello.git/info/refs") for r in server.requests)


def test_git_python_over_file_url(home: Path, tmp_path: Path, repos: Path) -> None:
    """git_python.yaml with a file:// URL: SUCCESS."""
    execution, rec = run_flow(
        home, copy_flow("git_python.yaml", tmp_path), {"repo_url": f"file://{repos / 'hello.git'}"}
    )
    _check_git_python(execution, rec)


def test_git_python_through_the_cli(home: Path, tmp_path: Path, server: GitServer) -> None:
    """`executor run git_python.yaml -i repo_url=...` exits 0 and shows the repo's line."""
    result = cli(
        home,
        "run",
        str(copy_flow("git_python.yaml", tmp_path)),
        "-i",
        f"repo_url={server.url('hello.git')}",
    )
    assert result.returncode == 0, result.stderr
    assert "hello from the repo" in result.stderr


AUTH_FLOW = """
id: private_clone
namespace: tests.git
inputs:
  - id: repo_url
    type: STRING
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: clone
        type: io.kestra.plugin.git.Clone
        url: "{{ inputs.repo_url }}"
        username: alice
        password: "PASSWORD_HERE"
      - id: show
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: busybox
        commands:
          - ls
          - 'echo "pw=ECHO_HERE"'
"""


def test_private_repo_with_secret_password(
    home: Path, tmp_path: Path, private_server: GitServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Basic auth with secret('GIT_PASSWORD'): clones, and the password is masked everywhere."""
    monkeypatch.setenv("SECRET_GIT_PASSWORD", base64.b64encode(PASSWORD.encode()).decode())
    flow = write_flow(
        tmp_path,
        AUTH_FLOW.replace("PASSWORD_HERE", "{{ secret('GIT_PASSWORD') }}").replace(
            "ECHO_HERE", "{{ secret(''GIT_PASSWORD'') }}"
        ),
    )
    execution, rec = run_flow(home, flow, {"repo_url": private_server.url("hello.git")})
    assert execution.state.current.value == "SUCCESS", rec.messages()
    assert "hello.py" in rec.messages("show")
    assert "pw=******" in rec.messages("show")
    assert PASSWORD not in _everything_said(execution, rec)
    assert any("401" not in r for r in private_server.requests)


def test_wrong_password_fails_clearly_and_masked(
    home: Path, tmp_path: Path, private_server: GitServer
) -> None:
    """A wrong password: clone FAILED with the reason, the rest never started, nothing leaked."""
    wrong = "Wrong-" + PASSWORD
    flow = write_flow(
        tmp_path, AUTH_FLOW.replace("PASSWORD_HERE", wrong).replace("ECHO_HERE", wrong)
    )
    result = cli(
        home, "run", "--json", str(flow), "-i", f"repo_url={private_server.url('hello.git')}"
    )
    assert result.returncode == 1
    doc = json.loads(result.stdout)
    clone = next(t for t in doc["taskRunList"] if t["taskId"] == "clone")
    assert clone["state"]["current"] == "FAILED"
    assert "Authentication failed" in clone["reason"]
    assert "show" not in {t["taskId"] for t in doc["taskRunList"]}
    assert wrong not in result.stdout + result.stderr
    assert "Authentication failed" in result.stderr


@pytest.mark.parametrize(
    ("inputs", "reason"),
    [
        ({"branch": "nope"}, "Remote branch nope not found"),
        ({"repo_url": "http://127.0.0.1:1/none.git"}, "Failed to connect"),
        ({"repo_url": "file:///nonexistent/repo.git"}, "does not appear to be a git repository"),
    ],
)
def test_failed_clone_is_a_clear_failed(
    home: Path, tmp_path: Path, server: GitServer, inputs: dict[str, str], reason: str
) -> None:
    """A missing branch or an unreachable URL: clone FAILED with git's reason in its log."""
    given = {"repo_url": server.url("hello.git"), **inputs}
    execution, rec = run_flow(home, copy_flow("git_python.yaml", tmp_path), given)
    assert execution.state.current.value == "FAILED"
    assert states(execution) == {"wdir": "FAILED", "clone": "FAILED"}
    assert reason in (execution.task_run("clone").reason or "")
    assert any(reason in m for m in rec.messages("clone"))
    assert not our_resources(**{labels.EXECUTION: execution.id})
