"""Choosing what to stream out of a container: the listing, and the fewest archive roots."""

from __future__ import annotations

from pathlib import Path

from executor.workspace.container import cover, parse_listing


def test_parse_listing_separates_files_and_links() -> None:
    """find's NUL-separated output becomes relative files and links."""
    listing = parse_listing("./a/b.txt\0./c\0\0./link\0\0END\0")
    assert listing is not None
    assert listing.files == {"a/b.txt", "c"} and set(listing.links) == {"link"}


def test_parse_listing_rejects_truncated_output() -> None:
    """Output without the end marker (find died half-way) is not trusted."""
    assert parse_listing("./a\0") is None


def test_cover_takes_whole_directories_only_when_everything_in_them_is_chosen() -> None:
    """venv/** comes out as one 'venv' stream; a mixed directory file by file."""
    listed = ["venv/bin/python", "venv/lib/x.py", "raw.csv", "report.csv", "out/a.csv", "out/b.log"]
    assert cover(["venv/bin/python", "venv/lib/x.py"], listed) == ["venv"]
    assert cover(["report.csv"], listed) == ["report.csv"]
    assert cover(["out/a.csv", "report.csv"], listed) == ["out/a.csv", "report.csv"]
    assert cover(listed, listed) == ["."]


def test_files_read_off_the_host_volume_never_follow_a_link_out(tmp_path: Path) -> None:
    """Read off the volume's directory: files come whole, links are reported, never followed."""
    import os

    from executor.workspace.container import _host_members
    from executor.workspace.tarstream import write_members

    volume, outside, dest = tmp_path / "vol", tmp_path / "outside", tmp_path / "dest"
    (volume / "out" / "deep").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.txt").write_text("host secret")
    (volume / "out" / "a.txt").write_text("a")
    (volume / "out" / "deep" / "b.bin").write_bytes(b"\0b" * 70_000)
    (volume / "out" / "leak.txt").symlink_to(outside / "secret.txt")
    (volume / "linked").symlink_to(outside, target_is_directory=True)
    os.mkfifo(volume / "out" / "pipe")

    members = list(_host_members(volume, "out"))
    assert [m[0] for m in members] == [
        "out",
        "out/a.txt",
        "out/deep",
        "out/deep/b.bin",
        "out/leak.txt",
        "out/pipe",
    ]
    done = write_members(_host_members(volume, "out"), dest)
    assert sorted(done.written) == ["out/a.txt", "out/deep/b.bin"]
    assert (dest / "out" / "deep" / "b.bin").read_bytes() == b"\0b" * 70_000
    assert done.refused["out/leak.txt"].startswith("a symbolic link")
    assert done.refused["out/pipe"] == "not a regular file"
    assert not (dest / "out" / "leak.txt").exists()
    # A path through a link is not reached at all: the engine's stream is asked instead.
    assert list(_host_members(volume, "linked/secret.txt")) == []
    assert list(_host_members(volume, "missing.txt")) == []
    whole = {m[0] for m in _host_members(volume, ".")}
    assert "linked" in whole and "linked/secret.txt" not in whole
