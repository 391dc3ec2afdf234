"""A namespace push is published atomically: a seed reads one whole version, never a torn file."""

from __future__ import annotations

import io
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from executor.errors import UsageError
from executor.store.files.namespaces import LocalNamespaceStore, zip_entries
from executor.tar_writer import Entry, tar_stream
from executor.workspace.globs import GlobSet

VERSIONS = {
    "a": {"data.txt": b"A" * 200_000, "conf.json": b'{"v": "a"}'},
    "b": {"data.txt": b"B" * 50_000, "conf.json": b'{"v": "b", "longer": true}'},
}


def _seed_like(store: LocalNamespaceStore) -> dict[str, bytes]:
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
    store = LocalNamespaceStore(tmp_path / "namespaces")
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
    store = LocalNamespaceStore(root)
    assert sorted(f.path for f in store.files("team.ns")) == ["dir/x.txt", "keep.txt"]
    assert store.remove("team.ns", "dir") == 1
    assert [f.path for f in store.files("team.ns")] == ["keep.txt"]
    assert (root / "team.ns").is_symlink()
    assert store.namespaces() == ["team.ns"]
    assert store.remove("team.ns") == 1
    assert store.namespaces() == []


def _links(root: Path) -> dict[str, tuple[int, int]]:
    """Each file's inode and link count, by path."""
    return {
        str(p.relative_to(root)): (p.stat().st_ino, p.stat().st_nlink)
        for p in root.rglob("*")
        if p.is_file()
    }


def _zip(files: dict[str, bytes]) -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    buffer.seek(0)
    return buffer


def test_a_write_to_an_unseen_version_changes_only_its_file(tmp_path: Path) -> None:
    """Until a reader sees the current version, a write changes it in place: no other file is
    linked again. Once seen, the next write makes a new version and the seen one stays as
    it was, for the reader that has it."""
    store = LocalNamespaceStore(tmp_path / "namespaces")
    store.put_zip("team.ns", "", _zip({f"d{i % 5}/f{i}.txt": b"old" for i in range(200)}), 1 << 20)
    link = tmp_path / "namespaces" / "team.ns"
    version = link.resolve()
    before = _links(version)
    store.put("team.ns", "d1/f1.txt", io.BytesIO(b"new"))
    after = _links(link.resolve())
    assert link.resolve() == version  # the same version, changed in place
    changed = {p for p in before if before[p] != after[p]}
    assert changed == {"d1/f1.txt"}
    assert store.read("team.ns", "d1/f1.txt") == b"new"

    seen = store.version("team.ns")  # a seed resolves it: it must not change any more
    seen_files = _links(seen)
    store.put("team.ns", "d2/f2.txt", io.BytesIO(b"newer"))
    assert link.resolve() != seen
    assert {p: ino for p, (ino, _) in _links(seen).items()} == {
        p: ino for p, (ino, _) in seen_files.items()
    }
    assert (seen / "d2" / "f2.txt").read_bytes() == b"old"
    assert store.read("team.ns", "d2/f2.txt") == b"newer"


def test_zip_clashes_failures_and_entry_cap_change_nothing(tmp_path: Path) -> None:
    """``x`` with ``x/y`` in one zip, a file under an existing file, a zip of too many
    entries, a member that fails to read: each refused with nothing written."""
    store = LocalNamespaceStore(tmp_path / "namespaces")
    store.put("team.ns", "x", io.BytesIO(b"file"))
    with pytest.raises(UsageError, match="both the file 'a' and 'a/b'"):
        store.put_zip("team.ns", "", _zip({"a": b"1", "a/b": b"2"}), 1 << 20)
    with pytest.raises(UsageError, match="'x' is a file: 'x/y' cannot be put under it"):
        store.put("team.ns", "x/y", io.BytesIO(b"2"))
    with pytest.raises(UsageError, match="more than 3 entries"):
        store.put_zip("team.ns", "", _zip({f"f{i}": b"." for i in range(4)}), 1 << 20, 3)
    broken = bytearray(_zip({"ok.txt": b"fine", "bad.txt": b"B" * 1000}).getvalue())
    at = broken.index(b"B" * 1000)
    broken[at : at + 4] = b"XXXX"  # its CRC no longer matches: reading it fails
    with pytest.raises(zipfile.BadZipFile):
        store.put_zip("team.ns", "", io.BytesIO(bytes(broken)), 1 << 20)
    assert [f.path for f in store.files("team.ns")] == ["x"]
    versions = tmp_path / "namespaces" / ".versions" / "team.ns"
    assert not [p.name for p in versions.iterdir() if p.name.startswith((".staging", ".trash"))]


def test_zip_entries_are_counted_from_the_central_directory() -> None:
    """Counted up to one past the limit, without listing the rest; zero for no zip."""
    archive = _zip({f"f{i}": b"" for i in range(70_000)})  # past 65535: a zip64 end record
    assert zip_entries(archive, 100) == 101
    assert zip_entries(archive, 100_000) == 70_000
    assert archive.tell() == 0
    assert zip_entries(io.BytesIO(b"not a zip"), 10) == 0
