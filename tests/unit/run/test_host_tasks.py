"""Pure pieces of host tasks: webhook payloads, Download file names, Split rules."""

from __future__ import annotations

import pytest

from executor.run.handlers.host import TaskInputError
from executor.run.handlers.http import _file_name
from executor.run.handlers.notify import _slack_markdown
from executor.run.handlers.storage import _byte_size


@pytest.mark.parametrize(
    ("url", "disposition", "expected"),
    [
        ("http://h/data/orders.csv?x=1", None, "orders.csv"),
        ("http://h/", None, "download"),
        ("http://h/x", 'attachment; filename="report 2024.csv"', "report_2024.csv"),
        ("http://h/x", "attachment; filename*=UTF-8''caf%C3%A9.txt", "caf_.txt"),
        ("http://h/x", 'attachment; filename="../../etc/passwd"', "passwd"),
    ],
)
def test_download_file_names_are_safe(url: str, disposition: str | None, expected: str) -> None:
    """A file name never climbs out of the task's store directory."""
    assert _file_name(url, disposition) == expected


def test_slack_markdown_like_kestra() -> None:
    assert _slack_markdown("**bold** __it__ [site](http://x)") == "*bold* _it_ <http://x|site>"


@pytest.mark.parametrize(("text", "size"), [("10", 10), ("4B", 4), ("2KB", 2048), ("1mb", 2**20)])
def test_split_byte_sizes(text: str, size: int) -> None:
    assert _byte_size(text) == size


def test_split_byte_size_refuses_nonsense() -> None:
    with pytest.raises(TaskInputError, match="is not a size"):
        _byte_size("lots")
