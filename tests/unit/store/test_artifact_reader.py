"""Kestra's rule of which stored files an execution may read, as one function: its own, its
parent's (the execution whose Subflow task started it), its namespace's; nothing else."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from executor.errors import TemplateError, UnsafePathError
from executor.flow.template import Renderer
from executor.run.template_functions import run_functions
from executor.services import local_services
from executor.settings import Settings
from executor.store.files.artifacts import LocalArtifactStore, Reader

READER = Reader("company.team", "etl", "e1", parent=("other.space", "caller", "p1"))


@pytest.mark.parametrize(
    "path",
    [
        "company/team/etl/executions/e1/tasks/t/r/out.csv",  # its own
        "company/team/etl/executions/e1/inputs/data/in.csv",  # its own FILE input
        "other/space/caller/executions/p1/tasks/t/r/x.txt",  # its parent's
        "company/team/etl/executions/e0/tasks/t/r/out.csv",  # an earlier execution of its flow
        "company/team/report/executions/e7/tasks/t/r/a.txt",  # another flow of its namespace
        "company/team/_files/sql/q.sql",  # a namespace file
    ],
)
def test_what_an_execution_may_read(path: str) -> None:
    assert READER.may_read(PurePosixPath(path))


@pytest.mark.parametrize(
    "path",
    [
        "other/space/caller/executions/p2/tasks/t/r/x.txt",  # the parent flow's other runs
        "other/space/_files/secret.txt",  # the parent's namespace files
        "company/etl/executions/e1/tasks/t/r/out.csv",  # the parent namespace
        "company/team/sub/etl/executions/e3/tasks/t/r/o",  # a child namespace
        "company/teams/etl/executions/e1/tasks/t/r/o",  # a namespace that only starts alike
        "company/team/_files",  # no file
        "company/team/etl/executions/e1",  # a directory, not a file
        "company/team/etl/executions",
    ],
)
def test_what_an_execution_may_not_read(path: str) -> None:
    assert not READER.may_read(PurePosixPath(path))


def test_without_a_parent_only_its_own_and_its_namespaces() -> None:
    alone = Reader("company.team", "etl", "e1")
    assert not alone.may_read(PurePosixPath("other/space/caller/executions/p1/tasks/t/r/x"))


def test_the_message_names_the_uri_the_execution_and_the_namespace(tmp_path: Path) -> None:
    uri = "kestra:///other/space/flow/executions/e9/tasks/t/r/x.txt"
    with pytest.raises(UnsafePathError) as caught:
        LocalArtifactStore(tmp_path, READER).path_of(uri)
    assert caught.value.message.startswith(
        f"{uri} is not a file of execution e1 nor of namespace company.team"
    )
    with pytest.raises(UnsafePathError, match="must be relative"):
        READER.check("kestra:///company/team/../../etc/passwd")


def test_read_follows_the_rule_for_stored_files_and_namespace_files(tmp_path: Path) -> None:
    stores = local_services(Settings(home=tmp_path / "home"))
    source = tmp_path / "src"
    source.mkdir()
    (source / "k.txt").write_text("theirs")
    stores.namespaces.push("other.space", source)
    (source / "k.txt").write_text("ours")
    stores.namespaces.push("company.team", source)
    theirs = stores.artifacts.write(
        PurePosixPath("other/space/f/executions/e9/tasks/t/r"), "x.txt", [b"x"]
    )
    ours = stores.artifacts.write(
        PurePosixPath("company/team/f/executions/e5/tasks/t/r"), "y.txt", [b"y"]
    )
    alone = Reader("company.team", "etl", "e1")
    renderer = Renderer(functions=run_functions(stores, list, reader=alone))
    variables: dict[str, Any] = {"flow": {"namespace": "company.team", "id": "etl"}}

    def read(uri: str) -> str:
        return renderer.render(f"{{{{ read('{uri}') }}}}", variables, where="w")

    assert read(ours) == "y"
    assert read("kestra:///company/team/_files/k.txt") == "ours"
    for foreign in (theirs, "kestra:///other/space/_files/k.txt"):
        with pytest.raises(TemplateError, match="not a file of execution e1 nor of namespace"):
            read(foreign)
