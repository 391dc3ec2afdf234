"""What a backend is told of a WorkingDirectory when it opens one (``WorkdirSpec``): the images
its children are known to need, for a backend that makes every container at once."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from executor.engine.api import ContainerOptions, Workdir, WorkdirSpec
from executor.engine.fake import FakeBackend
from executor.flow.loader import load_flow_text
from executor.flow.secrets import Secrets
from executor.images import ResolvedImage
from executor.model import Execution
from executor.run.context import RunContext
from executor.run.runner import run_execution
from executor.settings import Settings

FLOW = """\
id: pod
namespace: tests.spec
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: first
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: img/a
        commands: ["echo a"]
      - id: second
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: img/b
        commands: ["echo b"]
      - id: again
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: img/a
        commands: ["echo a again"]
      - id: never
        type: io.kestra.plugin.core.flow.If
        condition: "{{ false }}"
        then:
          - id: skipped
            type: io.kestra.plugin.scripts.shell.Commands
            containerImage: img/c
            commands: ["echo c"]
      - id: later
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: "{{ outputs.first.vars.image }}"
        allowFailure: true
        commands: ["echo d"]
"""


@dataclass
class AllAtOnce(FakeBackend):
    """A backend that makes every container as the WorkingDirectory opens (as a pod would)."""

    asked: list[tuple[ContainerOptions, ...]] = field(default_factory=list)

    def open_workdir(self, spec: WorkdirSpec) -> Workdir:
        self.asked.append(spec.known_images())
        return super().open_workdir(spec)


def test_a_workdir_spec_names_the_images_known_when_it_opens() -> None:
    """Each distinct image of the children, in first-use order, branches not taken included;
    one that depends on a task's output is left out. Asking records nothing: the execution's
    record names only the images its tasks ran in."""
    loaded = load_flow_text(textwrap.dedent(FLOW), Path("flow.yaml"))
    execution = Execution(loaded.flow.namespace, loaded.flow.id)
    engine = AllAtOnce()
    ctx = RunContext(
        loaded=loaded,
        execution=execution,
        inputs={},
        settings=Settings(home=Path("/nonexistent"), pids_limit=0),
        backend=engine,
        resolve_image=lambda ref, policy, auth=None: ResolvedImage(ref, ref, f"id-of-{ref}"),
        secrets=Secrets({}),
        sleep=lambda s: None,
    )
    run_execution(ctx)
    (known,) = engine.asked
    assert [o.image_id for o in known] == ["id-of-img/a", "id-of-img/b", "id-of-img/c"]
    assert "img/c" not in execution.images and execution.images["img/a"] == "id-of-img/a"
