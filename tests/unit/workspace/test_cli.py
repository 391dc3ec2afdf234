"""The namespace, cache and storage commands, through the CLI's main()."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from executor.cli.main import main
from executor.store.files.artifacts import LocalArtifactStore
from executor.store.files.cache import CacheKey, LocalCacheStore

DATA = Path(__file__).parents[2] / "data"


def test_namespace_commands(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """push, ls and rm work on $EXECUTOR_HOME/namespaces; an unknown namespace exits 4."""
    assert main(["namespace", "push", "examples.ns", str(DATA / "namespaces" / "examples.ns")]) == 0
    assert (home / "namespaces" / "examples.ns" / "scripts" / "main.py").is_file()
    assert main(["namespace", "ls", "examples.ns"]) == 0
    out = capsys.readouterr().out
    assert "pushed 4 file(s)" in out and "scripts/main.py" in out
    assert main(["namespace", "rm", "examples.ns", "scripts/scratch.tmp"]) == 0
    assert not (home / "namespaces" / "examples.ns" / "scripts" / "scratch.tmp").exists()
    assert main(["namespace", "ls", "no.such"]) == 4
    assert "no files in the store" in capsys.readouterr().err
    assert main(["namespace", "push", "Bad/Name", str(DATA)]) == 2


def test_cache_commands(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """cache ls shows entries; cache clear NAMESPACE FLOW removes only that flow's."""
    store = LocalCacheStore(home / "cache")
    import tarfile

    for flow in ("one", "two"):
        info = tarfile.TarInfo("f")
        info.size = 1
        store.save(CacheKey("a.b", flow, "wd"), [("f", info, io.BytesIO(b"x"))])
    assert main(["cache", "ls"]) == 0
    out = capsys.readouterr().out
    assert "a.b/one/wd" in out and "a.b/two/wd" in out
    assert main(["cache", "clear", "a.b", "one"]) == 0
    assert "removed a.b/one/wd" in capsys.readouterr().out
    assert [str(e.key) for e in store.entries()] == ["a.b/two/wd"]
    assert main(["cache", "clear", "a.b", "one"]) == 4
    assert main(["cache", "clear"]) == 0 and store.entries() == []


def test_storage_get_to_file_dir_and_stdout(
    home: Path, tmp_path: Path, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    """storage get copies an artifact to a file, into a directory, or to stdout."""
    store = LocalArtifactStore(home / "artifacts")
    uri = store.write(store.prefix("a", "f", "e", "t", "r"), "report.csv", [b"id\n1\n"])
    assert main(["storage", "get", uri, str(tmp_path / "copy.csv")]) == 0
    assert (tmp_path / "copy.csv").read_bytes() == b"id\n1\n"
    assert main(["storage", "get", uri, str(tmp_path)]) == 0
    assert (tmp_path / "report.csv").read_bytes() == b"id\n1\n"
    capfdbinary.readouterr()
    assert main(["storage", "get", uri]) == 0
    assert capfdbinary.readouterr().out == b"id\n1\n"
    assert main(["storage", "get", "kestra:///a/missing.csv"]) == 4
    assert main(["storage", "get", "kestra:///../../etc/passwd", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()
