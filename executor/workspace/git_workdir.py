"""A repository in a WorkingDirectory's workspace, brought to the host for git and back.

``git.Push`` without a ``url`` commits in the repository a Clone left in the workspace. git
runs on the host (the images need no git), so the repository's directory is streamed out of the
workspace, committed and pushed there, and its ``.git`` (with the files the task wrote) streamed
back, so the next child sees the commit.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath

from executor.engine.api import Workdir
from executor.tar_writer import CHUNK, Entry, tar_stream, tree_entries
from executor.workspace.container import WorkspaceReader
from executor.workspace.tarstream import (
    ChunkReader,
    Prefetch,
    write_members,
)


def copy_out(workdir: Workdir, container: str, directory: str, dest: Path) -> list[str]:
    """Write the regular files under the workspace's ``directory`` (``.``: all) into ``dest``.

    Returns:
        The paths (relative to ``directory``) that were links or special files and not written.
    """
    prefix = PurePosixPath(directory) if directory not in ("", ".") else None
    reader = WorkspaceReader(workdir, container)

    def rebased() -> Iterable[tuple[str, object, object]]:
        for rel, info, data in reader.stream([directory or "."]):
            path = PurePosixPath(rel)
            if prefix is not None:
                if path == prefix or prefix not in path.parents:
                    continue
                path = path.relative_to(prefix)
                if info.islnk():
                    info.linkname = str(PurePosixPath(info.linkname).relative_to(prefix))
            yield str(path), info, data

    done = write_members(rebased(), dest)  # type: ignore[arg-type]
    return sorted(done.refused)


def copy_in(
    workdir: Workdir, container: str, source: Path, paths: Iterable[str], directory: str
) -> None:
    """Stream ``source``'s ``paths`` (files or whole directories) into the workspace's
    ``directory``, replacing what is there."""
    prefix = directory if directory not in ("", ".") else ""
    entries: list[Entry] = []
    for rel in sorted(set(paths)):
        host = source / rel
        target = str(PurePosixPath(prefix, rel)) if prefix else rel
        if host.is_dir() and not host.is_symlink():
            entries.extend(tree_entries(host, target))
        elif host.is_file() and not host.is_symlink():
            entries.append(Entry.host_file(target, host))
    body = io.BufferedReader(ChunkReader(Prefetch(tar_stream(entries))), CHUNK)
    with body:
        workdir.put_tar(container, workdir.workspace, body)


_DROPPED = (
    "hooks",
    "commondir",
    "gitdir",
    "objects/info/alternates",
    "objects/info/http-alternates",
)


def sanitize_repository(repo: Path, read_origin: Callable[[Path], str]) -> str:
    """Make a repository that came out of a container safe to run git on, on the host.

    Anything in a task's container may have written its ``.git``: its config could name
    programs for git to run (``core.fsmonitor``, filters, ``core.sshCommand``, hooks) or other
    host repositories to read (alternates, ``commondir``). The config is replaced by one that
    keeps only the origin's URL (and the object format), and those files are removed.

    Args:
        repo: the working copy on the host.
        read_origin: reads ``remote.origin.url`` from a config file without running anything.

    Returns:
        The origin's URL ("" when there is none).
    """
    git_dir = repo / ".git"
    for rel in _DROPPED:
        path = git_dir / rel
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    config = git_dir / "config"
    origin = read_origin(config) if config.is_file() and not config.is_symlink() else ""
    lines = ["[core]", "\trepositoryformatversion = 0", "\tbare = false"]
    if origin:
        lines += [
            '[remote "origin"]',
            f"\turl = {_quoted(origin)}",
            "\tfetch = +refs/heads/*:refs/remotes/origin/*",
        ]
    config.unlink(missing_ok=True)
    config.write_text("\n".join(lines) + "\n")
    return origin


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
