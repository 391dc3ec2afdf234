"""A script task's Docker runner options, rendered and passed on (fake engine, no Docker)."""

from __future__ import annotations

import base64
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from executor.engine.api import ContainerSpec, RegistryAuth
from executor.engine.fake import FakeBackend
from executor.flow.loader import load_flow_text
from executor.flow.secrets import Secrets
from executor.images import ResolvedImage
from executor.model import Execution, LogLine
from executor.run.context import RunContext
from executor.run.runner import run_execution
from executor.settings import Settings

FLOW = """
id: f
namespace: t
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: a
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: 127.0.0.1:5055/team/bb@sha256:DIGEST
        taskRunner:
          type: io.kestra.plugin.scripts.runner.docker.Docker
          pullPolicy: ALWAYS
          credentials:
            registry: 127.0.0.1:5055
            username: team
            password: "{{ secret('PW') }}"
          memory: {memory: 1g, memorySwap: 2g}
          deviceRequests:
            - {driver: nvidia, count: 1, capabilities: [[gpu, utility]], options: {a: b}}
        commands: ["echo hi"]
"""
DIGEST = "5e" * 32


@dataclass
class RecordingEngine(FakeBackend):
    """A fake engine that keeps every container spec it started (even once removed)."""

    started: list[ContainerSpec] = field(default_factory=list)

    def start_container(self, spec: ContainerSpec) -> str:
        self.started.append(spec)
        return super().start_container(spec)


class Lines:
    def __init__(self) -> None:
        self.lines: list[LogLine] = []

    def execution_changed(self, execution: Execution) -> None:
        pass

    def task_changed(self, execution: Execution, task_run: object) -> None:
        pass

    def log(self, line: LogLine) -> None:
        self.lines.append(line)


def test_credentials_render_secrets_at_pull_time_and_limits_reach_the_container_spec() -> None:
    """The secret is rendered into the pull's auth; swap, pids, devices and digest are kept."""
    asked: list[tuple[str, str, RegistryAuth | None]] = []

    def resolve(ref: str, policy: str, auth: RegistryAuth | None = None) -> ResolvedImage:
        asked.append((ref, policy, auth))
        return ResolvedImage(ref, ref, "sha256:id", "pulled", f"sha256:{DIGEST}")

    engine = RecordingEngine()
    loaded = load_flow_text(textwrap.dedent(FLOW.replace("DIGEST", DIGEST)), Path("flow.yaml"))
    execution = Execution(loaded.flow.namespace, loaded.flow.id)
    secrets = Secrets.from_env({"SECRET_PW": base64.b64encode(b"pw-424242").decode()}, None)
    ctx = RunContext(
        loaded=loaded,
        execution=execution,
        inputs={},
        settings=Settings(home=Path("/nonexistent"), pids_limit=99),
        backend=engine,
        resolve_image=resolve,
        secrets=secrets,
        listeners=[Lines()],
        sleep=lambda s: None,
    )
    run_execution(ctx)
    ref = f"127.0.0.1:5055/team/bb@sha256:{DIGEST}"
    # asked once for the workspace's first container and once for the task (the lookup caches)
    assert set(asked) == {(ref, "ALWAYS", RegistryAuth("127.0.0.1:5055", "team", "pw-424242"))}
    assert execution.image_digests == {ref: f"sha256:{DIGEST}"}
    assert execution.to_json()["imageDigests"] == {ref: f"sha256:{DIGEST}"}
    (spec,) = engine.started
    assert (spec.memory, spec.memory_swap, spec.pids_limit) == ("1g", "2g", 99)
    (device,) = spec.device_requests
    assert (device.driver, device.count, device.capabilities, device.options) == (
        "nvidia",
        1,
        (("gpu", "utility"),),
        (("a", "b"),),
    )
    assert secrets.mask("pw-424242") == "******"
