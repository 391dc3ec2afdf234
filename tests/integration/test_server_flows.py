"""Server mode with the flows it keeps: Subflow, Pause and resume, FILE inputs, the CLI client."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.integration.helpers import cli, until
from tests.integration.server_helpers import (
    BUSYBOX,
    LiveServer,
    push_flow,
    shell_flow,
    wait_log,
    wait_state,
)

pytestmark = pytest.mark.integration

CHILD = """
id: child
namespace: tests.server
inputs:
  - {id: who, type: STRING}
tasks:
  - id: hi
    type: io.kestra.plugin.core.debug.Return
    format: "hi {{ inputs.who }}"
outputs:
  - id: message
    type: STRING
    value: "{{ outputs.hi.value }}"
"""

PARENT = """
id: parent
namespace: tests.server
tasks:
  - id: call
    type: io.kestra.plugin.core.flow.Subflow
    namespace: tests.server
    flowId: child
    inputs: {who: "{{ flow.id }}"}
  - id: echo
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.call.outputs.message }}"
"""

PAUSED = """
id: approval
namespace: tests.server
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - {id: approved, type: BOOLEAN}
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "approved={{ outputs.wait.onResume.approved }}"
"""

UPLOAD = f"""
id: upload
namespace: tests.server
inputs:
  - {{id: data, type: FILE}}
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    inputFiles:
      data.txt: "{{{{ inputs.data }}}}"
    tasks:
      - id: count
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: {BUSYBOX}
        commands:
          - wc -l < data.txt
"""


def test_subflow_resolves_in_the_servers_flows(server: LiveServer) -> None:
    """A Subflow finds its child among the flows stored on the server (no flows directory)."""
    with server.client() as client:
        push_flow(client, CHILD)
        push_flow(client, PARENT)
        done = client.post("/api/v1/executions/tests.server/parent", params={"wait": "true"}).json()
        assert done["state"]["current"] == "SUCCESS", done
        runs = {r["taskId"]: r for r in done["taskRunList"]}
        assert runs["echo"]["outputs"]["value"] == "hi parent"
        child_id = runs["call"]["outputs"]["executionId"]
        child = client.get(f"/api/v1/executions/{child_id}").json()
        assert child["flowId"] == "child" and child["parentId"] == done["id"]


def test_pause_resumes_through_kestras_endpoint(server: LiveServer) -> None:
    """POST /executions/{id}/resume with multipart inputs lets a PAUSED execution go on."""
    with server.client() as client:
        push_flow(client, PAUSED)
        eid = client.post("/api/v1/executions/tests.server/approval").json()["id"]
        wait_state(client, eid, {"PAUSED"})
        resumed = client.post(
            f"/api/v1/main/executions/{eid}/resume", files={"approved": (None, "true")}
        )
        assert resumed.status_code == 204, resumed.text
        done = wait_state(client, eid, {"SUCCESS", "FAILED"})
        assert done["state"]["current"] == "SUCCESS"
        after = next(r for r in done["taskRunList"] if r["taskId"] == "after")
        assert after["outputs"]["value"] == "approved=true"
        late = client.post(f"/api/v1/executions/{eid}/resume", files={"approved": (None, "1")})
        assert late.status_code == 409


def test_file_input_as_a_multipart_part(server: LiveServer) -> None:
    """A FILE input sent as a file part reaches the task; as text it is refused (422)."""
    with server.client() as client:
        push_flow(client, UPLOAD)
        done = client.post(
            "/api/v1/executions/tests.server/upload",
            params={"wait": "true"},
            files={"data": ("rows.txt", b"a\nb\nc\n", "text/plain")},
        ).json()
        assert done["state"]["current"] == "SUCCESS", done
        logs = client.get(f"/api/v1/logs/{done['id']}", params={"taskId": "count"}).json()
        assert "3" in [e["message"].strip() for e in logs]
        as_text = client.post(
            "/api/v1/executions/tests.server/upload", files={"data": (None, "/etc/passwd")}
        )
        assert as_text.status_code == 422 and "'data'" in as_text.json()["message"]
    assert not list((server.home / "uploads").rglob("rows.txt"))  # removed once it ran


def test_cli_runs_on_a_server_and_pushes_flows(server: LiveServer, tmp_path: Path) -> None:
    """`executor run --server` exits as a local run would; `flows push` mirrors a directory."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "child.yaml").write_text(textwrap.dedent(CHILD))
    (flows / "parent.yaml").write_text(textwrap.dedent(PARENT))
    pushed = cli(server.home, "flows", "push", str(flows), "--server", server.url)
    assert pushed.returncode == 0, pushed.stderr
    assert "child (revision 1)" in pushed.stdout and "parent (revision 1)" in pushed.stdout
    ok = cli(server.home, "run", str(flows / "parent.yaml"), "--server", server.url, "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["state"]["current"] == "SUCCESS"
    failing = tmp_path / "failing.yaml"
    failing.write_text(
        shell_flow(
            "failing",
            "tests.server",
            "boom",
            ["echo about to fail", "exit 3"],
            working_directory=False,
        )
    )
    bad = cli(server.home, "run", str(failing), "--server", server.url)
    assert bad.returncode == 1
    assert "about to fail" in bad.stderr and "FAILED" in bad.stderr
    (flows / "child.yaml").unlink()
    cli(server.home, "flows", "push", str(flows), "--server", server.url)
    with server.client() as client:
        assert client.get("/api/v1/flows/tests.server/child").status_code == 404
        assert client.get("/api/v1/flows/tests.server/failing").status_code == 404
    refused = cli(server.home, "run", str(flows / "parent.yaml"), "--server", server.url)
    assert refused.returncode == 1  # the child is gone from the server: its Subflow fails there
    assert "Unable to find flow 'tests.server'.'child'" in refused.stderr


def test_cli_ctrl_c_kills_the_remote_run(
    server: LiveServer, tmp_path: Path, started: list[subprocess.Popen[str]]
) -> None:
    """Ctrl-C on `executor run --server` kills the execution on the server (exit 130)."""
    flow = tmp_path / "sleepy.yaml"
    flow.write_text(
        shell_flow(
            "sleepy", "tests.server", "nap", ["echo dozing", "sleep 300"], working_directory=False
        )
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "executor", "run", str(flow), "--server", server.url],
        stderr=subprocess.PIPE,
        text=True,
    )
    started.append(proc)
    with server.client() as client:
        found = until(
            lambda: client.get(
                "/api/v1/executions/search", params={"flowId": "sleepy", "state": "RUNNING"}
            ).json()["results"],
            120,
            "the sleepy execution RUNNING",
        )
        eid = found[0]["id"]
        wait_log(client, eid, "dozing")  # the task runs, the CLI follows it
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, err
        assert client.get(f"/api/v1/executions/{eid}").json()["state"]["current"] == "KILLED"
