"""Pulls from a private registry on 127.0.0.1: credentials from secrets, digests, pull policies.

The registry is Debian's ``docker-registry`` (Distribution 2.x) with htpasswd auth, started
here on a free port and stopped by pid. ``make test`` installs it (scripts/ensure-registry.sh);
without it the tests fail in CI (``CI`` set) and skip on a laptop.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import cli, write_flow

pytestmark = pytest.mark.integration

USER = "team"
PASSWORD = f"s3cret-{uuid.uuid4().hex[:12]}"
WRONG = f"wr0ng-{uuid.uuid4().hex[:12]}"
SOURCE_IMAGE = "executor/busybox:latest"


@dataclass(frozen=True)
class Registry:
    """A running private registry and the image pushed to it."""

    address: str
    repository: str
    tag_ref: str
    digest: str


def _missing(what: str) -> None:
    message = f"{what}; run `bash scripts/ensure-registry.sh` (as root) or `make test`"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until_it_answers(address: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Poll /v2/ until it asks for credentials (401), bounded; fail naming what was seen."""
    for _ in range(300):
        if process.poll() is not None:
            pytest.fail(f"docker-registry exited {process.returncode}: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"http://{address}/v2/", timeout=2)
        except urllib.error.HTTPError as exc:
            if exc.code == 401:
                return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail(f"docker-registry at {address} never answered: {log.read_text()[-2000:]}")


def _api() -> Any:
    from executor.engine.docker.client import connect

    return connect(os.environ.get("DOCKER_HOST")).api


def _remove_local(api: Any, *refs: str) -> None:
    for ref in refs:
        try:
            api.remove_image(ref, force=False, noprune=True)
        except Exception as exc:  # a reference already gone is what we want
            if "No such image" not in str(exc) and "not found" not in str(exc).lower():
                raise


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry with htpasswd auth on a free port, holding team/bb:1; stopped by pid after."""
    binary, htpasswd = shutil.which("docker-registry"), shutil.which("htpasswd")
    if binary is None or htpasswd is None:
        _missing("docker-registry or htpasswd is not installed")
    assert binary is not None and htpasswd is not None
    root = tmp_path_factory.mktemp("registry")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    users = subprocess.run(
        [htpasswd, "-Bbn", USER, PASSWORD], capture_output=True, text=True, check=True
    ).stdout
    (root / "htpasswd").write_text(users)
    (root / "config.yml").write_text(
        json.dumps(  # JSON is YAML
            {
                "version": 0.1,
                "log": {"level": "warn"},
                "storage": {"filesystem": {"rootdirectory": str(root / "data")}},
                "http": {"addr": address},
                "auth": {"htpasswd": {"realm": "executor-tests", "path": str(root / "htpasswd")}},
            }
        )
    )
    log = root / "registry.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, "serve", str(root / "config.yml")], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_until_it_answers(address, process, log)
        api = _api()
        repository = f"{address}/team/bb"
        api.tag(SOURCE_IMAGE, repository, "1")
        digest = ""
        for event in api.push(
            repository,
            tag="1",
            stream=True,
            decode=True,
            auth_config={"username": USER, "password": PASSWORD},
        ):
            assert "error" not in event, event
            digest = event.get("aux", {}).get("Digest", digest)
        assert digest.startswith("sha256:"), "the push reported no digest"
        yield Registry(address, repository, f"{repository}:1", digest)
        _remove_local(api, f"{repository}:1", f"{repository}@{digest}")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def not_local(registry: Registry) -> Registry:
    """The pushed image is known to the engine by no name of the registry's (pulls needed)."""
    api = _api()
    _remove_local(api, registry.tag_ref, f"{registry.repository}@{registry.digest}")
    assert not _local_names(api, registry)
    return registry


def _local_names(api: Any, registry: Registry) -> list[str]:
    names: list[str] = []
    for image in api.images():
        names += [n for n in image.get("RepoTags") or [] if n.startswith(registry.repository)]
        names += [n for n in image.get("RepoDigests") or [] if n.startswith(registry.repository)]
    return names


FLOW = """
id: private
namespace: tests.registry
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: hello
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: "@IMAGE@"
        taskRunner:
          type: io.kestra.plugin.scripts.runner.docker.Docker
          pullPolicy: "@POLICY@"
          credentials:
            registry: "@REGISTRY@"
            username: team
            password: "{{ secret('REGISTRY_PASSWORD') }}"
        commands:
          - echo "hello from the private image"
"""


def _flow(tmp_path: Path, registry: Registry, image: str, policy: str = "IF_NOT_PRESENT") -> Path:
    text = (
        FLOW.replace("@IMAGE@", image)
        .replace("@POLICY@", policy)
        .replace("@REGISTRY@", registry.address)
    )
    return write_flow(tmp_path, text)


def _secret(value: str) -> dict[str, str]:
    return {"SECRET_REGISTRY_PASSWORD": base64.b64encode(value.encode()).decode()}


def _everything_recorded(home: Path, execution_id: str) -> str:
    """The execution's JSON, its log and the raw database bytes, as one text to search."""
    shown = cli(home, "show", execution_id, "--json").stdout
    logs = cli(home, "logs", execution_id, "--json").stdout
    raw = b"".join(p.read_bytes() for p in home.rglob("*") if p.is_file())
    return shown + logs + raw.decode("utf-8", "replace")


def _execution_id(home: Path) -> str:
    listed = json.loads(cli(home, "executions", "--json").stdout)
    assert len(listed) == 1, listed
    return str(listed[0]["id"])


def test_a_private_image_is_pulled_with_credentials_from_a_secret(
    home: Path, tmp_path: Path, not_local: Registry, executions_leave_nothing: None
) -> None:
    """credentials with a secret password pull the image; the password is shown nowhere."""
    result = cli(
        home, "run", str(_flow(tmp_path, not_local, not_local.tag_ref)), env=_secret(PASSWORD)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "hello from the private image" in result.stdout + result.stderr
    assert not_local.tag_ref in _local_names(_api(), not_local)
    execution_id = _execution_id(home)
    recorded = _everything_recorded(home, execution_id)
    assert PASSWORD not in result.stdout + result.stderr + recorded
    shown = json.loads(cli(home, "show", execution_id, "--json").stdout)
    assert shown["imageDigests"] == {not_local.tag_ref: not_local.digest}  # what the tag meant


def test_a_wrong_password_fails_the_task_naming_the_registry_and_never_showing_it(
    home: Path, tmp_path: Path, not_local: Registry, executions_leave_nothing: None
) -> None:
    """A wrong password: the task FAILED, the message names the registry, the password hidden."""
    result = cli(
        home, "run", str(_flow(tmp_path, not_local, not_local.tag_ref)), env=_secret(WRONG)
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    assert f"cannot pull image {not_local.tag_ref} from registry {not_local.address}" in output
    execution_id = _execution_id(home)
    shown = json.loads(cli(home, "show", execution_id, "--json").stdout)
    hello = next(t for t in shown["taskRunList"] if t["taskId"] == "hello")
    assert hello["state"]["current"] == "FAILED"
    assert not_local.address in hello["reason"]
    assert WRONG not in output + _everything_recorded(home, execution_id)
    assert not _local_names(_api(), not_local)


def test_a_reference_by_digest_is_pulled_verified_and_its_digest_recorded(
    home: Path, tmp_path: Path, not_local: Registry, executions_leave_nothing: None
) -> None:
    """repo@sha256:... is pulled with credentials; show and show --json give the digest."""
    pinned = f"{not_local.repository}@{not_local.digest}"
    result = cli(home, "run", str(_flow(tmp_path, not_local, pinned)), env=_secret(PASSWORD))
    assert result.returncode == 0, result.stdout + result.stderr
    execution_id = _execution_id(home)
    shown = json.loads(cli(home, "show", execution_id, "--json").stdout)
    assert shown["imageDigests"] == {pinned: not_local.digest}
    assert shown["images"][pinned].startswith("sha256:")
    text = cli(home, "show", execution_id).stdout
    assert f"image     {pinned} -> {shown['images'][pinned]} ({not_local.digest})" in text


def test_pull_policy_never_does_not_pull_even_with_credentials(
    home: Path, tmp_path: Path, not_local: Registry, executions_leave_nothing: None
) -> None:
    """pullPolicy NEVER with the image absent: the task fails saying it was not pulled."""
    flow = _flow(tmp_path, not_local, not_local.tag_ref, policy="NEVER")
    result = cli(home, "run", str(flow), env=_secret(PASSWORD))
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "not pulled (pull policy NEVER)" in output
    assert not _local_names(_api(), not_local)


def test_pull_policy_always_pulls_again_when_the_image_is_local(
    home: Path, tmp_path: Path, not_local: Registry, executions_leave_nothing: None
) -> None:
    """ALWAYS goes to the registry even with the tag present: the pull leaves its digest."""
    _api().tag(SOURCE_IMAGE, not_local.repository, "1")
    flow = _flow(tmp_path, not_local, not_local.tag_ref, policy="ALWAYS")
    ok = cli(home, "run", str(flow), env=_secret(PASSWORD))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert any(d.startswith(f"{not_local.repository}@") for d in _local_names(_api(), not_local))
