"""A namespace push is published atomically: a seed reads one whole version, never a torn file."""

from __future__ import annotations

import io
import tarfile
import threading
from pathlib import Path

from executor.workspace.globs import GlobSet
from executor.workspace.namespaces import NamespaceStore
from executor.workspace.tarstream import Entry, tar_stream

VERSIONS = {
    "a": {"data.txt": b"A" * 200_000, "conf.json": b'{"v": "a"}'},
    "b": {"data.txt": b"B" * 50_000, "conf.json": b'{"v": "b", "longer": true}'},
}


def _seed_like(store: NamespaceStore) -> dict[str, bytes]:
    """What a seed would put in a workspace: select, then one tar stream of host files."""
    entries = [Entry.host_file(f.path, f.host) for f in store.select("team.ns", GlobSet.of([]))]
    archive = b"".join(tar_stream(entries))
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


def test_push_while_seeding_reads_whole_versions(tmp_path: Path) -> None:
    """Pushes alternate two versions while seeds read: every seed equals one version exactly."""
    sources = {}
    for name, files in VERSIONS.items():
        src = tmp_path / f"src-{name}"
        src.mkdir()
        for rel, data in files.items():
            (src / rel).write_bytes(data)
        sources[name] = src
    store = NamespaceStore(tmp_path / "namespaces")
    store.push("team.ns", sources["a"])
    stop = threading.Event()
    failures: list[str] = []

    def push_forever() -> None:
        while not stop.is_set():
            for name in ("b", "a"):
                store.push("team.ns", sources[name])

    pusher = threading.Thread(target=push_forever)
    pusher.start()
    seeds = 0
    try:
        while seeds < 300:
            seen = _seed_like(store)
            seeds += 1
            if seen not in VERSIONS.values():
                failures.append(str({k: (len(v), v[:12]) for k, v in seen.items()}))
    finally:
        stop.set()
        pusher.join()
    assert not failures, failures[:3]
    assert _seed_like(store) == VERSIONS["a"]


def test_remove_and_old_plain_directory(tmp_path: Path) -> None:
    """A store from before versions keeps working; rm of a path publishes a version without it."""
    root = tmp_path / "namespaces"
    (root / "team.ns" / "dir").mkdir(parents=True)
    (root / "team.ns" / "dir" / "x.txt").write_text("x")
    (root / "team.ns" / "keep.txt").write_text("k")
    store = NamespaceStore(root)
    assert sorted(f.path for f in store.files("team.ns")) == ["dir/x.txt", "keep.txt"]
    assert store.remove("team.ns", "dir") == 1
    assert [f.path for f in store.files("team.ns")] == ["keep.txt"]
    assert (root / "team.ns").is_symlink()
    assert store.namespaces() == ["team.ns"]
    assert store.remove("team.ns") == 1
    assert store.namespaces() == []
