"""Overlay workspaces: host directories as the read-only lower layer of a workspace volume.

When the engine runs on this host, a workspace seeded from the namespace store need not be
copied: the volume is an overlay mount (Docker's local driver, ``type=overlay``) whose lower
layers are the namespace versions and whose upper layer, where every write of the tasks lands,
is a scratch directory of ours. Seeding then costs the same for ten files or a hundred thousand.

Each overlay workspace has a scratch directory ``<root>/<id>/`` holding ``upper/`` and
``work/`` (the kernel's) and ``lowers``, the lower directories it mounts, one a line: while it
exists those directories are in use, and the namespace store keeps them (``lowers_in_use``).
The volume carries the label :data:`SCRATCH` naming its scratch directory, so ``gc`` can tell a
scratch directory whose volume is gone (``sweep``) after a crash.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from executor.engine.labels import PREFIX

SCRATCH = f"{PREFIX}.overlay-scratch"
LOWERS = "lowers"
# The mount options are one comma-separated string, lowers separated by colons.
_UNSAFE = (",", ":", "\n", "\\", "=")


@dataclass(frozen=True)
class Scratch:
    """The writable side of one overlay workspace."""

    root: Path
    id: str

    @property
    def path(self) -> Path:
        return self.root / self.id

    def options(self, lower: Sequence[Path]) -> dict[str, str]:
        """The local volume driver's options for an overlay of ``lower`` (top layer first)."""
        dirs = ":".join(str(p) for p in lower)
        return {
            "type": "overlay",
            "device": "overlay",
            "o": f"lowerdir={dirs},upperdir={self.path / 'upper'},workdir={self.path / 'work'}",
        }

    def create(self, lower: Sequence[Path]) -> None:
        """Make the upper and work directories and record the lowers (pins them)."""
        (self.path / "upper").mkdir(parents=True)
        (self.path / "work").mkdir()
        (self.path / LOWERS).write_text("".join(f"{p}\n" for p in lower))

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def new_scratch(root: Path) -> Scratch:
    return Scratch(root, uuid.uuid4().hex[:16])


def unusable(lower: Sequence[Path], root: Path) -> str | None:
    """Why these directories cannot be an overlay's layers, or ``None`` when they can."""
    if not lower:
        return "no lower directory"
    for path in [*lower, root]:
        if not path.is_absolute():
            return f"{path} is not absolute"
        if any(c in str(path) for c in _UNSAFE):
            return f"{path} holds a character mount options cannot carry"
    return None


def lowers_in_use(root: Path) -> set[Path]:
    """Every directory some overlay workspace of ``root`` mounts as a lower layer."""
    found: set[Path] = set()
    for listed in root.glob(f"*/{LOWERS}") if root.is_dir() else ():
        try:
            found.update(Path(line) for line in listed.read_text().splitlines() if line)
        except OSError:
            continue
    return found


def sweep(root: Path, live: Callable[[], Iterable[str]], *, dry_run: bool = False) -> list[Path]:
    """Remove the scratch directories whose volume is gone (``live``: ids still labelled).

    The directories are listed before the volumes: a volume is created before its scratch
    directory, so one listed here has its volume in ``live`` while it is in use.
    """
    found = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not found:
        return []
    keep = set(live())
    removed: list[Path] = []
    for path in found:
        if path.name in keep:
            continue
        if not dry_run:
            shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed
