"""One rule for every task and template function that reads a ``kestra:///`` URI, through
``executor run``: an execution reads its own files, its parent's and its namespace's; another
namespace's file is refused with one message naming it, by ``read()``, the storage tasks,
``inputFiles``, HTTP ``formData`` and mail attachments alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.helpers import cli, write_flow
from tests.integration.host_flows import run_json, state_of, task_run

pytestmark = pytest.mark.integration

REFUSED = "is not a file of execution"

PRODUCE = """
id: produce
namespace: scope.owner
tasks:
  - id: write
    type: io.kestra.plugin.core.storage.Write
    content: "row 1\\nrow 2\\n"
    extension: .txt
"""

TAKE = """
id: take
namespace: {namespace}
inputs:
  - id: uri
    type: STRING
tasks:
  - id: all
    type: io.kestra.plugin.core.flow.Parallel
    onChildFailure: CONTINUE
    tasks:
      - id: read
        type: io.kestra.plugin.core.debug.Return
        format: "{{{{ read(inputs.uri) }}}}"
      - id: size
        type: io.kestra.plugin.core.storage.Size
        uri: "{{{{ inputs.uri }}}}"
      - id: concat
        type: io.kestra.plugin.core.storage.Concat
        files: ["{{{{ inputs.uri }}}}"]
      - id: split
        type: io.kestra.plugin.core.storage.Split
        from: "{{{{ inputs.uri }}}}"
        rows: 1
      - id: post
        type: io.kestra.plugin.core.http.Request
        uri: http://127.0.0.1:9/upload
        method: POST
        contentType: multipart/form-data
        formData:
          file: "{{{{ inputs.uri }}}}"
      - id: mail
        type: io.kestra.plugin.email.MailSend
        host: 127.0.0.1
        port: 9
        transportStrategy: SMTP
        from: a@example.com
        to: b@example.com
        subject: s
        plainTextContent: t
        attachments:
          - name: f.txt
            uri: "{{{{ inputs.uri }}}}"
      - id: wd
        type: io.kestra.plugin.core.flow.WorkingDirectory
        inputFiles:
          in.txt: "{{{{ inputs.uri }}}}"
        tasks:
          - id: cat
            type: io.kestra.plugin.scripts.shell.Commands
            containerImage: executor/busybox:latest
            commands: ["cat in.txt"]
"""

DELETE = """
id: remove
namespace: {namespace}
inputs:
  - id: uri
    type: STRING
tasks:
  - id: delete
    type: io.kestra.plugin.core.storage.Delete
    uri: "{{{{ inputs.uri }}}}"
"""

READERS = ("read", "size", "concat", "split", "post", "mail", "wd")


def test_another_namespaces_file_is_refused_by_every_reader_and_its_own_is_not(
    home: Path, tmp_path: Path, executions_leave_nothing: None
) -> None:
    proc, produced = run_json(home, tmp_path, PRODUCE)
    assert proc.returncode == 0, proc.stderr
    uri = task_run(produced, "write")["outputs"]["uri"]

    proc, stranger = run_json(
        home, tmp_path, TAKE.format(namespace="scope.stranger"), "-i", f"uri={uri}"
    )
    assert proc.returncode == 1, proc.stderr
    for task_id in READERS:
        run = task_run(stranger, task_id)
        assert run["state"]["current"] == "FAILED", (task_id, run)
        assert (
            f"{uri} {REFUSED} {stranger['id']} nor of namespace scope.stranger" in run["reason"]
        ), (task_id, run["reason"])
    assert (home / "artifacts" / uri.removeprefix("kestra:///")).is_file()  # not deleted

    # a child namespace is another namespace too
    proc, child = run_json(
        home, tmp_path, TAKE.format(namespace="scope.owner.sub"), "-i", f"uri={uri}"
    )
    assert state_of(child, "size") == "FAILED" and REFUSED in task_run(child, "size")["reason"]

    # a flow of the file's namespace reads it (and, last, deletes it)
    proc, neighbour = run_json(
        home, tmp_path, TAKE.format(namespace="scope.owner"), "-i", f"uri={uri}"
    )
    for task_id in ("read", "size", "concat", "split", "cat"):
        assert state_of(neighbour, task_id) == "SUCCESS", task_run(neighbour, task_id)
    assert task_run(neighbour, "read")["outputs"]["value"] == "row 1\nrow 2\n"
    assert task_run(neighbour, "size")["outputs"]["size"] == 12
    for task_id in ("post", "mail"):  # they read the file, then found nobody listening
        assert REFUSED not in (task_run(neighbour, task_id)["reason"] or "")
    proc, deleted = run_json(
        home, tmp_path, DELETE.format(namespace="scope.owner"), "-i", f"uri={uri}"
    )
    assert task_run(deleted, "delete")["outputs"]["deleted"] is True, proc.stderr
    assert not (home / "artifacts" / uri.removeprefix("kestra:///")).exists()


def test_a_file_input_of_another_namespace_is_refused_before_the_run(
    home: Path, tmp_path: Path
) -> None:
    proc, produced = run_json(home, tmp_path, PRODUCE)
    uri = task_run(produced, "write")["outputs"]["uri"]
    flow = """
    id: given
    namespace: scope.stranger
    inputs:
      - id: data
        type: FILE
    tasks:
      - id: size
        type: io.kestra.plugin.core.storage.Size
        uri: "{{ inputs.data }}"
    """
    proc = cli(home, "run", str(write_flow(tmp_path, flow, "given.yaml")), "-i", f"data={uri}")
    assert proc.returncode == 2, proc.stderr
    assert f"input 'data': {uri} {REFUSED}" in proc.stderr
    assert "Traceback" not in proc.stderr


SUBFLOW_CHILD = """
id: child
namespace: scope.callee
inputs:
  - id: note
    type: FILE
tasks:
  - id: said
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(inputs.note) }}"
outputs:
  - id: said
    type: STRING
    value: "{{ outputs.said.value }}"
"""

SUBFLOW_PARENT = """
id: parent
namespace: scope.caller
tasks:
  - id: write
    type: io.kestra.plugin.core.storage.Write
    content: from the parent
  - id: call
    type: io.kestra.plugin.core.flow.Subflow
    namespace: scope.callee
    flowId: child
    inputs:
      note: "{{ outputs.write.uri }}"
"""


def test_a_subflow_reads_what_its_parent_passes_it(home: Path, tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "child.yaml").write_text(SUBFLOW_CHILD)
    proc, parent = run_json(home, tmp_path / "flows", SUBFLOW_PARENT)
    assert proc.returncode == 0, proc.stderr
    assert task_run(parent, "call")["outputs"]["outputs"]["said"] == "from the parent"
