"""Tar streams: built in pieces, and read onto the host without ever writing outside the target."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from executor.errors import UnsafePathError
from executor.workspace.tarstream import (
    ChunkReader,
    Entry,
    extract_files,
    member_path,
    tar_stream,
    tree_entries,
)


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    buf.seek(0)
    return buf


def _info(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


def test_member_climbing_out_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    """A member named '../../x' (tar-slip) stops extraction; nothing lands outside the target."""
    dest = tmp_path / "a" / "b" / "dest"
    archive = _tar([(_info("ok.txt"), b"fine"), (_info("../../x"), b"owned")])
    with pytest.raises(UnsafePathError, match="climbs out"):
        extract_files(archive, dest)
    assert not (tmp_path / "a" / "x").exists()
    assert not any(p.name == "x" for p in tmp_path.rglob("*"))


def test_absolute_member_is_refused(tmp_path: Path) -> None:
    """A member named '/etc/evil' is refused instead of being written to /etc or under dest."""
    with pytest.raises(UnsafePathError, match="absolute"):
        extract_files(_tar([(_info("/etc/evil"), b"x")]), tmp_path / "dest")
    assert not (tmp_path / "dest" / "etc").exists()


def test_symlink_member_is_refused_and_never_created(tmp_path: Path) -> None:
    """A symlink to /etc/passwd in an archive is reported, and no link appears on the host."""
    dest = tmp_path / "dest"
    done = extract_files(_tar([(_info("report.csv", tarfile.SYMTYPE, "/etc/passwd"), None)]), dest)
    assert "report.csv" in done.refused
    assert not (dest / "report.csv").exists() and not (dest / "report.csv").is_symlink()


def test_file_through_a_symlinked_member_directory_is_refused(tmp_path: Path) -> None:
    """A link 'd -> /outside' then a file 'd/f': the link is refused, so 'd/f' stays inside."""
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    archive = _tar([(_info("d", tarfile.SYMTYPE, str(outside)), None), (_info("d/f"), b"data")])
    done = extract_files(archive, dest)
    assert list(outside.iterdir()) == []
    assert (dest / "d" / "f").read_bytes() == b"data"
    assert not (dest / "d").is_symlink()
    assert "d" in done.refused


def test_planted_link_in_target_is_not_written_through(tmp_path: Path) -> None:
    """A pre-existing link dest/d -> outside makes 'd/f' an error, not a write outside."""
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "d").symlink_to(outside)
    with pytest.raises(UnsafePathError):
        extract_files(_tar([(_info("d/f"), b"data")]), dest)
    assert list(outside.iterdir()) == []


def test_hard_link_to_an_earlier_member_is_a_copy_and_one_to_outside_is_refused(
    tmp_path: Path,
) -> None:
    """A hard link to a file of the same archive is copied; one to /etc/passwd is refused."""
    dest = tmp_path / "dest"
    archive = _tar(
        [
            (_info("a.txt"), b"alpha"),
            (_info("b.txt", tarfile.LNKTYPE, "a.txt"), None),
            (_info("c.txt", tarfile.LNKTYPE, "etc/passwd"), None),
        ]
    )
    done = extract_files(archive, dest)
    assert (dest / "b.txt").read_bytes() == b"alpha"
    assert (dest / "b.txt").stat().st_ino != (dest / "a.txt").stat().st_ino
    assert "c.txt" in done.refused and not (dest / "c.txt").exists()
    with pytest.raises(UnsafePathError):
        extract_files(_tar([(_info("d.txt", tarfile.LNKTYPE, "../../etc/passwd"), None)]), dest)


def test_member_path_normalises_dot_prefixes() -> None:
    """'./a/./b' is 'a/b' and the archive's own root '.' is skipped."""
    assert str(member_path("./a/./b")) == "a/b"
    assert member_path("./") is None and member_path(".") is None


def test_tar_stream_round_trips_files_dirs_and_links(tmp_path: Path) -> None:
    """A host tree streamed with tree_entries reads back with the same files and link targets."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f.bin").write_bytes(os.urandom(5000))
    (src / "empty").write_bytes(b"")
    (src / "link").symlink_to("/etc/passwd")
    data = b"".join(tar_stream(tree_entries(src, "into/here")))
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|") as tar:
        found: dict[str, tuple[bytes, str, bytes | None]] = {}
        for m in tar:
            content = tar.extractfile(m) if m.isfile() else None
            found[m.name] = (m.type, m.linkname, content.read() if content is not None else None)
    assert found["into/here/sub/f.bin"][2] == (src / "sub" / "f.bin").read_bytes()
    assert found["into/here/empty"][2] == b""
    assert found["into/here/link"][:2] == (tarfile.SYMTYPE, "/etc/passwd")
    assert found["into"][0] == tarfile.DIRTYPE


def test_tar_stream_chunks_are_bounded_for_a_big_file(tmp_path: Path) -> None:
    """A 5 MiB file comes out in chunks of at most 1 MiB, never as one piece."""
    big = tmp_path / "big"
    with big.open("wb") as fh:
        fh.truncate(5 * 1024 * 1024)
    sizes = [len(c) for c in tar_stream([Entry.host_file("big", big)])]
    assert max(sizes) <= 1024 * 1024
    assert sum(sizes) >= 5 * 1024 * 1024


def test_unsafe_entry_name_is_refused() -> None:
    """An inline entry named '../escape' cannot even be built."""
    with pytest.raises(UnsafePathError):
        Entry.inline("../escape", b"x")


def test_chunk_reader_reads_across_chunks() -> None:
    """Reading a ChunkReader gives back the concatenated chunks, in any read size."""
    reader = io.BufferedReader(ChunkReader([b"ab", b"", b"cde", b"f"]))
    assert reader.read(3) == b"abc" and reader.read() == b"def"


def test_prefetch_keeps_order_stays_exhausted_and_passes_errors_on() -> None:
    """Prefetch yields chunks in order, stops for good at the end, and re-raises source errors."""
    from executor.workspace.tarstream import Prefetch

    chunks = Prefetch(iter([b"a", b"b", b"c"]), depth=1)
    assert list(chunks) == [b"a", b"b", b"c"]
    assert next(chunks, None) is None  # asked again after the end: no hang
    reader = io.BufferedReader(ChunkReader(Prefetch(iter([b"xy", b"z"]))))
    assert reader.read(2) == b"xy" and reader.read(5) == b"z" and reader.read(5) == b""

    def broken() -> Iterator[bytes]:
        yield b"ok"
        raise OSError("connection reset")

    failing = Prefetch(broken())
    assert next(failing) == b"ok"
    with pytest.raises(OSError, match="connection reset"):
        next(failing)
