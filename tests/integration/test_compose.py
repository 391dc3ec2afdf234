"""compose.yaml end to end, as an operator runs it: build the images locally, ``docker-compose up``,
run a flow through the API on the worker's container, read the metrics, ``down -v``, nothing left.

Uses Debian's ``docker-compose`` (1.29; ``scripts/run-tests.sh`` installs it). The images are
built by ``executor images build executor postgres redis`` (what ``make deploy-images`` runs); an
image with the same inputs is adopted, so only a changed recipe or a changed executor rebuilds.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from executor.engine import labels
from tests.integration.helpers import our_resources, until
from tests.integration.server_helpers import BUSYBOX, free_port

pytestmark = pytest.mark.integration

REPOSITORY = Path(__file__).resolve().parents[2]
SOCKET = "/var/run/docker.sock"
FLOW = f"""
id: hello
namespace: compose.e2e
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    outputFiles: [out.txt]
    tasks:
      - id: greet
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: {BUSYBOX}
        commands:
          - echo "hello from the worker's engine"
          - echo kept > out.txt
"""


@dataclass
class Stack:
    """A compose project of this test: its name, environment and published URL."""

    project: str
    env: dict[str, str]
    url: str
    token: str

    def compose(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        argv = ["docker-compose", "--project-name", self.project]
        argv += ["--project-directory", str(REPOSITORY), "--file", str(REPOSITORY / "compose.yaml")]
        return subprocess.run(
            [*argv, *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def api(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120)

    def leftovers(self) -> dict[str, list[str]]:
        """Containers, volumes and networks the engine still has of this project."""
        label = f"label=com.docker.compose.project={self.project}"
        found = {}
        for kind, argv in (
            ("containers", ["docker", "ps", "--all", "--quiet", "--filter", label]),
            ("volumes", ["docker", "volume", "ls", "--quiet", "--filter", label]),
            ("networks", ["docker", "network", "ls", "--quiet", "--filter", label]),
        ):
            out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
            found[kind] = out.split()
        return found


def _docker_compose() -> None:
    if shutil.which("docker-compose") is None:
        message = "docker-compose is missing: apt-get install docker-compose (run-tests.sh does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def deploy_images(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The executor, postgres and redis images, built (or adopted) as `make deploy-images`."""
    _docker_compose()
    home = tmp_path_factory.mktemp("deploy-images")
    started = time.monotonic()
    built = subprocess.run(
        [sys.executable, "-m", "executor", "images", "build", "executor", "postgres", "redis"],
        env={**os.environ, "EXECUTOR_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert built.returncode == 0, built.stderr[-4000:]
    print(f"deploy images ready in {time.monotonic() - started:.1f}s:\n{built.stdout}")


@pytest.fixture
def stack(deploy_images: None) -> Iterator[Stack]:
    """The compose stack, up; taken down with its volumes after the test, whatever happened."""
    token = secrets.token_hex(16)
    port = free_port()
    env = {
        **os.environ,
        "EXECUTOR_TOKEN": token,
        "EXECUTOR_WORKER_TOKEN": secrets.token_hex(16),
        "EXECUTOR_DB_PASSWORD": secrets.token_hex(16),
        "DOCKER_GID": str(Path(SOCKET).stat().st_gid),
        "EXECUTOR_PORT": str(port),
    }
    up = Stack(f"executor-e2e-{secrets.token_hex(4)}", env, f"http://127.0.0.1:{port}", token)
    try:
        started = up.compose("up", "--detach")
        assert started.returncode == 0, started.stderr[-4000:]
        yield up
    finally:
        down = up.compose("down", "--volumes", "--remove-orphans", "--timeout", "30")
        assert down.returncode == 0, down.stderr[-4000:]


def _ready(stack: Stack) -> dict[str, Any] | None:
    try:
        answer = httpx.get(stack.url + "/health/readiness", timeout=10)
    except httpx.TransportError:
        return None
    return answer.json() if answer.status_code == 200 else None


def _samples(text: str) -> dict[tuple[str, frozenset[Any]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.mark.timeout(2400)
def test_compose_runs_a_flow_on_the_worker_and_leaves_nothing(stack: Stack) -> None:
    """up: the server is ready on loopback behind a token; a flow submitted through the API runs
    on the worker's container, on the host's engine through the socket, as a non-root user, and
    ends SUCCESS with its log and output file on the server; the metrics count it; down -v
    leaves no container, volume or network of the project, and no task container."""
    until(lambda: _ready(stack), 300, lambda: stack.compose("logs", "--tail", "30").stdout)
    with stack.api() as api:
        assert httpx.get(stack.url + "/api/v1/configs").status_code == 401
        details = api.get("/health/readiness").json()["details"]
        assert {k: v["status"] for k, v in details.items()} == {"store": "UP", "broker": "UP"}
        assert details["store"]["details"]["database"] == "postgresql"
        until(
            lambda: api.get("/api/v1/worker/workers").json(),
            120,
            lambda: stack.compose("logs", "--tail", "30", "worker").stdout,
        )
        created = api.post(
            "/api/v1/flows", content=FLOW, headers={"Content-Type": "application/x-yaml"}
        )
        assert created.status_code == 200, created.text
        done = api.post("/api/v1/executions/compose.e2e/hello", params={"wait": "true"}).json()
        assert done["state"]["current"] == "SUCCESS", done
        eid = done["id"]
        log = [line["message"] for line in api.get(f"/api/v1/logs/{eid}").json()]
        assert "hello from the worker's engine" in log
        assert any(line.startswith("attempt 1 on worker ") for line in log)
        wd = next(t for t in done["taskRunList"] if t["taskId"] == "wd")
        uri = wd["outputs"]["outputFiles"]["out.txt"]
        got = api.get(f"/api/v1/executions/{eid}/file", params={"path": uri})
        assert (got.status_code, got.content) == (200, b"kept\n")
        metrics = _samples(api.get("/metrics").text)
    ids = {"namespace_id": "compose.e2e", "flow_id": "hello"}
    ended = (
        "kestra_executor_execution_end_count_total",
        frozenset({**ids, "state": "SUCCESS"}.items()),
    )
    assert metrics[ended] == 1
    assert metrics[("executor_workers_alive", frozenset())] == 1
    worker_user = stack.compose("exec", "-T", "worker", "id", "-u").stdout.strip()
    assert worker_user == "10001"
    groups = stack.compose("exec", "-T", "worker", "id", "-G").stdout.split()
    assert stack.env["DOCKER_GID"] in groups
    server_log = stack.compose("logs", "--no-color", "server").stdout
    assert '"event": "executor server on http://0.0.0.0:8080' in server_log
    assert not our_resources(**{labels.EXECUTION: eid})
    down = stack.compose("down", "--volumes", "--remove-orphans", "--timeout", "30")
    assert down.returncode == 0, down.stderr
    assert stack.leftovers() == {"containers": [], "volumes": [], "networks": []}
