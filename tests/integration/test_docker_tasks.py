"""``docker.Build`` and ``docker.Push`` against the real engine and a private registry on
127.0.0.1 (Debian's docker-registry with htpasswd, as in test_registry: one for the module)."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import httpx
import pytest

from tests.integration.helpers import cli, write_flow
from tests.integration.host_flows import logs, task_run
from tests.integration.test_registry import PASSWORD, USER, WRONG, Registry, _api, _remove_local
from tests.integration.test_registry import registry as registry  # the module's registry

pytestmark = pytest.mark.integration


def _env(password: str) -> dict[str, str]:
    return {"SECRET_REGISTRY_PASSWORD": base64.b64encode(password.encode()).decode()}


def _tags(registry: Registry, repository: str) -> list[str]:
    answer = httpx.get(
        f"http://{registry.address}/v2/{repository}/tags/list", auth=(USER, PASSWORD), timeout=10
    )
    if answer.status_code == 404:
        return []
    answer.raise_for_status()
    return list(answer.json().get("tags") or [])


def test_build_from_a_local_image_then_push_to_the_registry(
    home: Path, tmp_path: Path, registry: Registry
) -> None:
    """Build writes inputFiles and build args into the image (tagged twice), the next task runs
    it by its imageId; docker.Push sends it to the registry; a wrong password fails, masked."""
    name = f"team/built-{uuid.uuid4().hex[:8]}"
    ref = f"{registry.address}/{name}"
    flow = f"""
id: build
namespace: team.images
tasks:
  - id: build
    type: io.kestra.plugin.docker.Build
    pull: false
    dockerfile: |
      FROM executor/busybox:latest
      ARG GREETING
      COPY conf/app.txt /app.txt
      RUN echo "$GREETING" > /greeting.txt
    inputFiles:
      conf/app.txt: "from the build context"
    buildArgs:
      GREETING: bonjour
    labels:
      owner: team
    tags:
      - {ref}:1
      - {ref}:latest
  - id: use
    type: io.kestra.plugin.scripts.shell.Commands
    containerImage: "{{{{ outputs.build.imageId }}}}"
    taskRunner:
      type: io.kestra.plugin.scripts.runner.docker.Docker
      pullPolicy: NEVER
    commands:
      - cat /app.txt /greeting.txt
  - id: push
    type: io.kestra.plugin.docker.Push
    tags:
      - {ref}:1
    credentials:
      registry: {registry.address}
      username: {USER}
      password: "{{{{ secret('REGISTRY_PASSWORD') }}}}"
"""
    path = write_flow(tmp_path, flow)
    api = _api()
    image_id = ""
    try:
        proc = cli(home, "run", "--json", str(path), env=_env(PASSWORD), timeout=300)
        execution = json.loads(proc.stdout)
        assert execution["state"]["current"] == "SUCCESS", logs(home, execution)
        image_id = task_run(execution, "build")["outputs"]["imageId"]
        assert api.inspect_image(f"{ref}:latest")["Id"] == image_id
        assert api.inspect_image(image_id)["Config"]["Labels"]["owner"] == "team"
        shown = logs(home, execution)
        assert "from the build context" in shown and "bonjour" in shown
        assert _tags(registry, name) == ["1"]

        failed = cli(home, "run", "--json", str(path), env=_env(WRONG), timeout=300)
        execution = json.loads(failed.stdout)
        assert execution["state"]["current"] == "FAILED"
        reason = task_run(execution, "push")["state"].get("reason") or logs(home, execution)
        assert "push" in reason.lower()
        assert WRONG not in failed.stdout + failed.stderr + logs(home, execution)
    finally:
        if image_id:  # with its tags and build layers: nothing of the test stays on the engine
            api.remove_image(image_id, force=True, noprune=False)
        else:
            _remove_local(api, f"{ref}:1", f"{ref}:latest")
