"""Images of unusual shapes: no shell at all, a default user that is not root."""

from __future__ import annotations

import io
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.helpers import run_flow, states, write_flow

pytestmark = pytest.mark.integration

FLOW = """
id: shapes
namespace: tests.shapes
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: a
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: {image}
        commands:
          - {command}
"""


def _docker(*args: str, stdin: bytes | None = None) -> str:
    done = subprocess.run(["docker", *args], input=stdin, capture_output=True, check=True)
    return done.stdout.decode().strip()


@pytest.fixture
def image_name() -> Iterator[str]:
    """A unique local image name for the test; the image is removed afterwards."""
    name = f"executor-test/shape-{uuid.uuid4().hex[:8]}:1"
    yield name
    subprocess.run(["docker", "rmi", "-f", name], capture_output=True, check=False)


def test_image_without_shell_fails_saying_so(
    home: Path, tmp_path: Path, image_name: str, executions_leave_nothing: None
) -> None:
    """An image holding one file and no /bin/sh: the task fails naming the image and the need."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"hi\n"))
    _docker("import", "-", image_name, stdin=buf.getvalue())
    flow = write_flow(tmp_path, FLOW.format(image=image_name, command="echo hi"))

    execution, _ = run_flow(home, flow)

    assert states(execution) == {"wd": "FAILED", "a": "FAILED"}
    reason = next(t.reason for t in execution.task_runs if t.task_id == "a")
    assert reason is not None
    assert reason.startswith(f"image {image_name} has no /bin/sh: the executor needs a POSIX shell")


@pytest.mark.parametrize(
    ("user_lines", "uid"),
    [
        ("USER 1000:1000", "1000"),
        ("RUN echo 'app:x:1234:1234::/home/app:/bin/sh' >> /etc/passwd\nUSER app", "1234"),
    ],
    ids=["numeric", "named"],
)
def test_image_with_non_root_user_can_write_the_workspace(
    home: Path,
    tmp_path: Path,
    image_name: str,
    user_lines: str,
    uid: str,
    executions_leave_nothing: None,
) -> None:
    """An image whose USER is not root writes files and directories in the workspace as it."""
    context = tmp_path / "image"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM executor/busybox\n{user_lines}\n")
    _docker("build", "-q", "-t", image_name, str(context))
    command = (
        f'echo hi > out.txt && mkdir -p d && echo x > d/y && test "$(id -u)" = {uid}'
        f' && test "$(stat -c %u d/y)" = {uid}'
    )
    flow = write_flow(tmp_path, FLOW.format(image=image_name, command=f"'{command}'"))

    execution, recorder = run_flow(home, flow)

    assert states(execution) == {"wd": "SUCCESS", "a": "SUCCESS"}, recorder.messages()
