"""The host-side stores: artifacts, namespace files and cache entries."""

from __future__ import annotations

import io
import json
import tarfile
import time
from pathlib import Path, PurePosixPath

import pytest

from executor.errors import NotFoundError, UnsafePathError, UsageError
from executor.flow.model import ScriptTask, WorkingDirectoryTask
from executor.store.files.artifacts import LocalArtifactStore
from executor.store.files.cache import CacheKey, LocalCacheStore
from executor.store.files.namespaces import LocalNamespaceStore
from executor.workspace.globs import GlobSet
from executor.workspace.service import venv_cache_wanted

DATA = Path(__file__).parents[2] / "data"


def test_artifact_round_trip_and_uri(tmp_path: Path) -> None:
    """A written artifact reads back through its kestra:/// URI."""
    store = LocalArtifactStore(tmp_path / "artifacts")
    prefix = store.prefix("a.b", "flow", "ex1", "task", "run1")
    uri = store.write(prefix, "out/r.csv", io.BytesIO(b"1,2\n"))
    assert uri == "kestra:///a/b/flow/executions/ex1/tasks/task/run1/out/r.csv"
    with store.open(uri) as fh:
        assert fh.read() == b"1,2\n"


def test_artifact_uri_climbing_out_is_refused(tmp_path: Path) -> None:
    """kestra:///../../etc/passwd never reaches the host file."""
    store = LocalArtifactStore(tmp_path / "artifacts")
    with pytest.raises(UnsafePathError):
        store.open("kestra:///../../etc/passwd")


def test_artifact_link_planted_in_store_is_not_followed(tmp_path: Path) -> None:
    """A symlink inside the store (to a host file) is refused when read or written through."""
    secret = tmp_path / "host-secret"
    secret.write_text("host only")
    store = LocalArtifactStore(tmp_path / "artifacts")
    (tmp_path / "artifacts" / "ns").mkdir(parents=True)
    (tmp_path / "artifacts" / "ns" / "leak").symlink_to(secret)
    with pytest.raises(UnsafePathError):
        store.open("kestra:///ns/leak")
    (tmp_path / "artifacts" / "dir").symlink_to(tmp_path)
    with pytest.raises(UnsafePathError):
        store.write(PurePosixPath("dir"), "host-secret", [b"overwritten"])
    assert secret.read_text() == "host only"


def test_namespace_push_ls_rm(tmp_path: Path) -> None:
    """Pushed files are listed by path and can be removed one by one or all together."""
    store = LocalNamespaceStore(tmp_path / "ns")
    result = store.push("examples.ns", DATA / "namespaces" / "examples.ns")
    assert result.copied == 4
    paths = [f.path for f in store.files("examples.ns")]
    assert paths == [
        "conf/settings.json",
        "scripts/main.py",
        "scripts/scratch.tmp",
        "secrets/token.txt",
    ]
    chosen = store.select("examples.ns", GlobSet.of(["scripts/**", "conf/*"], ["**/*.tmp"]))
    assert [f.path for f in chosen] == ["conf/settings.json", "scripts/main.py"]
    assert store.remove("examples.ns", "secrets") == 1
    assert "secrets/token.txt" not in [f.path for f in store.files("examples.ns")]
    store.remove("examples.ns")
    with pytest.raises(NotFoundError, match=r"namespace push examples\.ns"):
        list(store.files("examples.ns"))


def test_namespace_push_skips_links(tmp_path: Path) -> None:
    """A symlink in the pushed directory (to /etc/passwd) is skipped, never stored or followed."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "ok.txt").write_text("ok")
    (src / "passwd").symlink_to("/etc/passwd")
    (src / "etc").symlink_to("/etc")
    store = LocalNamespaceStore(tmp_path / "ns")
    result = store.push("team", src)
    assert result.copied == 1 and len(result.skipped) == 2
    assert [f.path for f in store.files("team")] == ["ok.txt"]


def test_namespace_names_and_paths_are_checked(tmp_path: Path) -> None:
    """A namespace like '../x' or a removal path climbing out is refused."""
    store = LocalNamespaceStore(tmp_path / "ns")
    with pytest.raises(UsageError):
        store.push("../x", tmp_path)
    store.push("team", DATA / "repos" / "hello")
    with pytest.raises(UnsafePathError):
        store.remove("team", "../../etc")


def _members(files: dict[str, bytes]) -> list[tuple[str, tarfile.TarInfo, io.BytesIO]]:
    out = []
    for name, data in files.items():
        info = tarfile.TarInfo(name)
        info.size = len(data)
        out.append((name, info, io.BytesIO(data)))
    return out


def test_cache_saves_only_when_content_changes(tmp_path: Path) -> None:
    """Same content is 'unchanged' (no write); different content replaces the entry."""
    store = LocalCacheStore(tmp_path / "cache")
    key = CacheKey("a.b", "flow", "wd")
    first = store.save(key, _members({"venv/x": b"1", "venv/y": b"2"}))
    assert first.saved and first.reason == "new"
    saved_at = store.get(key).saved_at  # type: ignore[union-attr]
    again = store.save(key, _members({"venv/x": b"1", "venv/y": b"2"}))
    assert not again.saved and again.reason == "unchanged"
    assert store.get(key).saved_at == saved_at  # type: ignore[union-attr]
    changed = store.save(key, _members({"venv/x": b"1", "venv/y": b"3"}))
    assert changed.saved and changed.reason == "changed"
    with tarfile.open(store.get(key).tar) as tar:  # type: ignore[union-attr]
        assert tar.extractfile("venv/y").read() == b"3"  # type: ignore[union-attr]


def test_cache_ttl_and_clear(tmp_path: Path) -> None:
    """An entry older than its ttl is not fresh; clear removes by namespace, flow or task."""
    store = LocalCacheStore(tmp_path / "cache")
    key = CacheKey("a.b", "flow", "wd")
    store.save(key, _members({"f": b"x"}))
    store.save(CacheKey("a.b", "other", "wd"), _members({"f": b"x"}))
    manifest = tmp_path / "cache" / "a.b" / "flow" / "wd.json"
    doc = json.loads(manifest.read_text())
    doc["saved_at"] = time.time() - 7200
    manifest.write_text(json.dumps(doc))
    entry, why = store.fresh(key, 3600)
    assert entry is None and why.startswith("expired")
    assert store.fresh(key, None)[0] is not None
    assert [str(e.key) for e in store.clear("a.b", "flow")] == ["a.b/flow/wd"]
    assert [str(e.key) for e in store.entries()] == ["a.b/other/wd"]
    with pytest.raises(NotFoundError):
        store.clear("a.b", "flow")


def test_cache_with_nothing_matching_is_not_saved(tmp_path: Path) -> None:
    """No matching file: no entry is written."""
    store = LocalCacheStore(tmp_path / "cache")
    result = store.save(CacheKey("a", "f", "t"), [])
    assert not result.saved and store.entries() == []


def test_venv_entries_are_keyed_by_image(tmp_path: Path) -> None:
    """Venvs are kept per image beside the workspace entry: another image finds none; they are
    listed and cleared with their WorkingDirectory."""
    store = LocalCacheStore(tmp_path / "cache")
    image_a, image_b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    files = CacheKey("a.b", "flow", "wd")
    venvs_a = CacheKey("a.b", "flow", "wd", image_a)
    store.save(files, _members({"f": b"x"}))
    store.save(venvs_a, _members({"venvs/0123/bin/python": b"py"}))
    assert venvs_a.file_stem.startswith("wd.venvs/") and image_a not in venvs_a.file_stem
    assert CacheKey("a.b", "flow", "wd", image_b).file_stem != venvs_a.file_stem
    assert store.get(CacheKey("a.b", "flow", "wd", image_b)) is None
    assert store.get(files).paths == ("f",)  # type: ignore[union-attr]
    assert store.get(venvs_a).paths == ("venvs/0123/bin/python",)  # type: ignore[union-attr]
    assert [e.key for e in store.entries()] == [files, venvs_a]
    assert "venvs, image aaaaaaaaaaaa" in str(venvs_a)
    assert len(store.clear("a.b", "flow", "wd")) == 2
    assert store.entries() == [] and not (tmp_path / "cache" / "a.b" / "flow" / "wd.venvs").exists()


def _python(**extra: object) -> ScriptTask:
    doc = {"id": "p", "type": "io.kestra.plugin.scripts.python.Commands", "commands": ["true"]}
    return ScriptTask.model_validate({**doc, **extra})


def test_venv_cache_wanted_follows_the_cache_and_dependency_cache_enabled() -> None:
    """A cache or an explicit dependencyCacheEnabled: true keeps the venv; false opts out."""
    child = {"id": "c", "type": "io.kestra.plugin.core.log.Log", "message": "hi"}
    wd_doc = {"id": "wd", "type": "io.kestra.plugin.core.flow.WorkingDirectory", "tasks": [child]}
    plain = WorkingDirectoryTask.model_validate(wd_doc)
    cached = WorkingDirectoryTask.model_validate({**wd_doc, "cache": {"patterns": ["x/**"]}})
    deps = {"dependencies": ["six"]}
    assert venv_cache_wanted(_python(**deps), cached)
    assert not venv_cache_wanted(_python(**deps), plain)
    assert not venv_cache_wanted(_python(), cached)  # no dependencies, no venv to keep
    assert venv_cache_wanted(_python(**deps, dependencyCacheEnabled=True), plain)
    assert not venv_cache_wanted(_python(**deps, dependencyCacheEnabled=False), cached)
