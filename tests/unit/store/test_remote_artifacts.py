"""A store that mirrors another (a worker's, whose copy is of the server's) fetches the files it
lacks on first read, once, and still refuses what it would refuse locally."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from executor.errors import NotFoundError, UnsafePathError
from executor.flow.model import Input
from executor.run.inputs import resolve_inputs
from executor.store.files.artifacts import LocalArtifactStore, Reader

URI = "kestra:///ns/flow/executions/e1/tasks/t/r/out.txt"


class Mirror(LocalArtifactStore):
    """A copy of a store that holds ``URI`` only (as the server would)."""

    def __init__(self, root: Path, asked: list[str]) -> None:
        super().__init__(root)
        self.asked = asked

    def fetch_missing(self, uri: str, dest: Path) -> bool:
        reader = self.reader
        self.asked.append(uri if reader is None else f"{uri} for {reader.execution_id}")
        if uri != URI:
            return False
        dest.write_bytes(b"from the server\n")
        return True


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[LocalArtifactStore, list[str]]]:
    asked: list[str] = []
    yield Mirror(tmp_path / "artifacts", asked), asked


def test_a_missing_file_is_fetched_once(store: tuple[LocalArtifactStore, list[str]]) -> None:
    artifacts, asked = store
    for _ in range(2):
        with artifacts.open(URI) as fh:
            assert fh.read() == b"from the server\n"
    assert asked == [URI]
    assert not [p for p in artifacts.root.rglob("*.part")]


def test_a_reader_fetches_as_itself_and_never_what_it_may_not_read(
    store: tuple[LocalArtifactStore, list[str]],
) -> None:
    artifacts, asked = store
    stranger = artifacts.for_reader(Reader("other", "flow", "e9"))
    with pytest.raises(UnsafePathError, match="not a file of execution e9 nor of namespace other"):
        stranger.open(URI)
    assert asked == []  # refused before the remote is asked
    with artifacts.for_reader(Reader("ns", "another", "e2")).open(URI) as fh:
        assert fh.read() == b"from the server\n"
    assert asked == [f"{URI} for e2"]


def test_what_the_remote_lacks_or_what_climbs_out_is_refused(
    store: tuple[LocalArtifactStore, list[str]],
) -> None:
    artifacts, asked = store
    with pytest.raises(NotFoundError, match="no artifact"):
        artifacts.open(URI.replace("out.txt", "other.txt"))
    with pytest.raises(UnsafePathError):
        artifacts.open("kestra:///ns/../../etc/passwd")
    assert asked == [URI.replace("out.txt", "other.txt")]
    assert not [p for p in artifacts.root.rglob("*") if p.is_file()]


def test_a_file_input_may_be_a_stored_files_uri() -> None:
    specs = [Input(id="data", type="FILE")]
    assert resolve_inputs(specs, {"data": URI}) == {"data": URI}
