"""``inputFiles`` of host tasks (docker.Build, git.Push, JDBC): one reader for all, under the
execution's read rule: a ``kestra:///`` file of another namespace is refused, as in templates."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from executor.engine.api import BuildRequest, Capabilities
from executor.engine.fake import FakeBackend
from executor.flow.loader import load_flow_text
from executor.flow.secrets import Secrets
from executor.images import ResolvedImage
from executor.model import Execution, State
from executor.run.context import RunContext
from executor.run.runner import run_execution
from executor.services import local_services
from executor.settings import Settings

SAME_NAMESPACE = "kestra:///company/team/report/executions/e7/tasks/t/r/a.txt"
OTHER_NAMESPACE = "kestra:///other/space/flow/executions/e9/tasks/t/r/secret.txt"


@dataclass
class Builder(FakeBackend):
    """A fake engine that builds: it keeps the files of each build context."""

    capabilities: Capabilities = field(default_factory=lambda: Capabilities(image_build=True))
    contexts: list[dict[str, str]] = field(default_factory=list)

    def build_task_image(self, request: BuildRequest, on_line: object) -> str:
        files = {
            p.relative_to(request.context).as_posix(): p.read_text()
            for p in request.context.rglob("*")
            if p.is_file()
        }
        self.contexts.append(files)
        return "sha256:" + "0" * 64


def _build(home: Path, uri: str) -> tuple[Execution, Builder]:
    text = f"""\
        id: build
        namespace: company.team
        tasks:
          - id: image
            type: io.kestra.plugin.docker.Build
            tags: ["local/test:1"]
            dockerfile: "FROM scratch"
            inputFiles:
              data.txt: "{uri}"
              inline.txt: "written here"
        """
    loaded = load_flow_text(textwrap.dedent(text), Path("flow.yaml"))
    execution = Execution(loaded.flow.namespace, loaded.flow.id)
    engine = Builder()
    settings = Settings(home=home)
    ctx = RunContext(
        loaded=loaded,
        execution=execution,
        inputs={},
        settings=settings,
        backend=engine,
        services=local_services(settings),
        resolve_image=lambda ref, policy, auth=None: ResolvedImage(ref, ref, f"id-of-{ref}"),
        secrets=Secrets({}),
        sleep=lambda s: None,
    )
    run_execution(ctx)
    return execution, engine


def _store(home: Path, uri: str, text: str) -> None:
    path = home / "artifacts" / uri.removeprefix("kestra:///")
    path.parent.mkdir(parents=True)
    path.write_text(text)


def test_a_file_of_its_namespace_goes_into_the_build_context(tmp_path: Path) -> None:
    """A stored file the execution may read is copied in, beside the inline one."""
    _store(tmp_path, SAME_NAMESPACE, "report data")
    execution, engine = _build(tmp_path, SAME_NAMESPACE)
    assert execution.state.current == State.SUCCESS, execution.task_runs[0].reason
    (context,) = engine.contexts
    assert context["data.txt"] == "report data" and context["inline.txt"] == "written here"


def test_a_file_of_another_namespace_is_refused(tmp_path: Path) -> None:
    """Another namespace's file is not the execution's to read: the task fails naming the rule,
    and nothing is built."""
    _store(tmp_path, OTHER_NAMESPACE, "not yours")
    execution, engine = _build(tmp_path, OTHER_NAMESPACE)
    assert execution.state.current == State.FAILED
    reason = execution.task_runs[0].reason or ""
    assert "is not a file of execution" in reason and "company.team" in reason, reason
    assert engine.contexts == []
