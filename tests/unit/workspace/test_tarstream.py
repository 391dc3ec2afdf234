"""Tar streams: built in pieces, and read onto the host without ever writing outside the target."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from executor.errors import UnsafePathError
from executor.tar_writer import Entry, tar_stream, tree_entries
from executor.workspace.tarstream import (
    ChunkReader,
    extract_files,
    member_path,
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


def _pieces(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
@pytest.mark.parametrize("piece", [1, 511, 512, 4096, 1 << 20])
def test_members_read_off_chunks_of_any_size_match_tarfile(fmt: int, piece: int) -> None:
    """Every member (long, non-ASCII names, links, dirs, empty and odd-sized files) comes out
    with the header and bytes ``tarfile`` itself gives, however the stream is cut."""
    from executor.workspace.tarstream import tar_members

    long_dir = "d" * 60 + "/" + "e" * 60  # fits ustar's prefix field
    members: list[tuple[tarfile.TarInfo, bytes | None]] = [
        (_info("top", tarfile.DIRTYPE), None),
        (_info("top/empty.txt"), b""),
        (_info("top/odd.bin"), os.urandom(1000)),
        (_info(f"{long_dir}/f.txt"), b"x" * 513),
        (_info("top/hard", tarfile.LNKTYPE, "top/odd.bin"), None),
        (_info("top/sym", tarfile.SYMTYPE, "odd.bin"), None),
    ]
    if fmt != tarfile.USTAR_FORMAT:
        members.append((_info("top/" + "n" * 150 + ".txt"), b"long name"))
        members.append((_info("top/ünïcødé.txt"), b"accents"))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    raw = buf.getvalue()
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        expected = [
            (m.name, m.type, m.linkname, tar.extractfile(m).read() if m.isfile() else None)  # type: ignore[union-attr]
            for m in tar
        ]
    got = [
        (rel, info.type, info.linkname, data.read() if data is not None else None)
        for rel, info, data in tar_members(ChunkReader(_pieces(raw, piece)))  # type: ignore[arg-type]
    ]
    assert got == expected


def test_members_skipped_or_half_read_do_not_shift_the_next_header() -> None:
    """A consumer that reads part of a member (or none of it) still gets the next member whole."""
    from executor.workspace.tarstream import tar_members

    raw = _tar([(_info("a"), os.urandom(3000)), (_info("b"), b"bee"), (_info("c"), b"sea")])
    out = {}
    for rel, _, data in tar_members(ChunkReader(_pieces(raw.getvalue(), 700))):  # type: ignore[arg-type]
        assert data is not None
        out[rel] = data.read(10) if rel == "a" else data.read() if rel == "c" else b""
    assert out == {"a": raw.getvalue()[512:522], "b": b"", "c": b"sea"}


def test_an_archive_cut_inside_a_member_is_an_error_not_a_short_file(tmp_path: Path) -> None:
    """A stream that ends inside a file's data raises; no shortened file counts as written."""
    raw = _tar([(_info("big.bin"), os.urandom(5000))]).getvalue()[:3000]
    with pytest.raises(tarfile.ReadError, match="unexpected end"):
        extract_files(ChunkReader(_pieces(raw, 1024)), tmp_path)  # type: ignore[arg-type]
    assert not (tmp_path / "big.bin").exists()


def test_garbage_is_not_an_archive() -> None:
    """A stream that is not a tar archive raises ReadError, as tarfile does."""
    from executor.workspace.tarstream import tar_members

    with pytest.raises(tarfile.ReadError):
        list(tar_members(io.BytesIO(b"not a tar archive" * 100)))
    with pytest.raises(tarfile.ReadError, match="empty"):
        list(tar_members(io.BytesIO(b"")))


def test_extracted_bytes_are_the_archived_bytes(tmp_path: Path) -> None:
    """A file written through the zero-copy path holds exactly the archived bytes."""
    payload = os.urandom(3 * 1024 * 1024 + 17)
    raw = _tar([(_info("out/data.bin"), payload)]).getvalue()
    done = extract_files(ChunkReader(_pieces(raw, 100_000)), tmp_path)  # type: ignore[arg-type]
    assert done.written["out/data.bin"].read_bytes() == payload


def test_member_reads_are_whole_across_chunk_boundaries() -> None:
    """read(n) gives n bytes even when the chunks are smaller (tarfile.addfile relies on it)."""
    from executor.workspace.tarstream import tar_members

    payload = os.urandom(10_000)
    raw = _tar([(_info("a"), payload)]).getvalue()
    for _, _, data in tar_members(ChunkReader(_pieces(raw, 333))):  # type: ignore[arg-type]
        assert data is not None
        assert data.read(4096) == payload[:4096]
        assert data.read(4096) == payload[4096:8192]
        assert data.read() == payload[8192:]
        assert data.read(10) == b""


@pytest.mark.parametrize("cut", ["between members", "inside a header", "before the end block"])
def test_an_unframed_stream_cut_anywhere_but_the_end_block_is_an_error(cut: str) -> None:
    """require_end (the engine's unframed body): only the end-of-archive block ends it."""
    from executor.workspace.tarstream import tar_members

    raw = _tar([(_info("a"), b"x" * 700), (_info("b"), b"bee")]).getvalue()
    second = 512 + 1024  # a's header and its data padded to whole blocks
    end = second + 1024
    upto = {"between members": second, "inside a header": second + 100, "before the end block": end}
    stream = raw[: upto[cut]]

    def names(data: bytes, require_end: bool) -> list[str]:
        found = tar_members(ChunkReader(_pieces(data, 300)), require_end=require_end)  # type: ignore[arg-type]
        return [rel for rel, _, _ in found]

    with pytest.raises(tarfile.ReadError, match="cut short"):
        names(stream, require_end=True)
    assert names(raw, require_end=True) == ["a", "b"]  # the whole archive still reads
    assert names(stream, require_end=False)[0] == "a"  # a framed stream stays tolerant
