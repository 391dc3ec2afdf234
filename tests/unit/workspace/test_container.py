"""Choosing what to stream out of a container: the listing, and the fewest archive roots."""

from __future__ import annotations

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
