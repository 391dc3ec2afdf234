"""Host file-system failures reach the user as one line and exit code 5, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "executor", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "EXECUTOR_HOME": str(home)},
        check=False,
    )


@pytest.fixture
def read_only_home(tmp_path: Path) -> Iterator[Path]:
    """An EXECUTOR_HOME on a read-only tmpfs (root ignores permission bits, not mount flags)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a read-only tmpfs needs root")
    home = tmp_path / "ro-home"
    home.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(home)], check=True)
    try:
        yield home
    finally:
        subprocess.run(["umount", str(home)], check=True)


def test_namespace_push_into_read_only_home(read_only_home: Path, tmp_path: Path) -> None:
    """`namespace push` into a read-only home: one line naming the path and the reason, exit 5."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_text("a")
    result = _cli(read_only_home, "namespace", "push", "company.team", str(source))
    assert result.returncode == 5, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "namespace push company.team" in lines[0] and "read-only file system" in lines[0]
    assert str(read_only_home) in lines[0]


def test_storage_get_into_proc(tmp_path: Path) -> None:
    """`storage get URI /proc/x`: one line naming the destination, exit 5, nothing written."""
    home = tmp_path / "home"
    stored = home / "artifacts" / "ns" / "report.txt"
    stored.parent.mkdir(parents=True)
    stored.write_text("report")
    result = _cli(home, "storage", "get", "kestra:///ns/report.txt", "/proc/x")
    assert result.returncode == 5, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "storage get kestra:///ns/report.txt" in lines[0]
    assert "/proc/" in lines[0]
    assert not Path("/proc/x").exists()
