"""Workspace globs: ``*`` within a name, ``**`` across directories, ``?``, ``[abc]``, ``{a,b}``.

A glob is matched against relative posix paths (``conf/settings.json``); ``**/`` also matches no
directory at all, so ``**/*.tmp`` matches ``scratch.tmp`` as well as ``a/b/scratch.tmp``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from executor.errors import UnsafePathError
from executor.paths import check_safe


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A workspace glob as a compiled regex over relative posix paths.

    Raises:
        UnsafePathError: the glob is absolute or climbs out with ``..``.
    """
    check_safe(pattern, "glob")
    pattern = pattern.removeprefix("./")
    out: list[str] = []
    i, depth = 0, 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and (end := _class_end(pattern, i)) > 0:
            body = pattern[i + 1 : end]
            if body[:1] in ("!", "^"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\").replace("/", "") + "]")
            i = end + 1
        elif c == "{":
            out.append("(?:")
            depth += 1
            i += 1
        elif c == "}" and depth:
            out.append(")")
            depth -= 1
            i += 1
        elif c == "," and depth:
            out.append("|")
            i += 1
        else:
            out.append(re.escape(c))
            i += 1
    if depth:
        raise UnsafePathError(f"glob {pattern!r} has an unclosed '{{'")
    # DOTALL: a name may hold a newline, and ``**`` must still cross it
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def _class_end(pattern: str, start: int) -> int:
    """Index of the ``]`` closing the character class opened at ``start``, or -1."""
    i = start + 1
    if pattern[i : i + 1] in ("!", "^"):
        i += 1
    if pattern[i : i + 1] == "]":
        i += 1
    return pattern.find("]", i)


def literal_prefix(pattern: str) -> str:
    """The leading directories of a glob that hold no wildcard (``a/b`` for ``a/b/*.csv``)."""
    parts = pattern.removeprefix("./").split("/")
    fixed: list[str] = []
    for part in parts[:-1]:
        if any(ch in part for ch in "*?[{"):
            break
        fixed.append(part)
    return "/".join(fixed)


@dataclass(frozen=True)
class GlobSet:
    """Include and exclude globs: a path is chosen when an include matches and no exclude does.

    An empty include list chooses everything.
    """

    include: tuple[re.Pattern[str], ...]
    exclude: tuple[re.Pattern[str], ...] = ()

    @classmethod
    def of(cls, include: Iterable[str], exclude: Iterable[str] = ()) -> GlobSet:
        """Compile the globs (raises UnsafePathError for an unsafe one)."""
        return cls(tuple(glob_regex(p) for p in include), tuple(glob_regex(p) for p in exclude))

    def __call__(self, path: str) -> bool:
        if self.include and not any(r.match(path) for r in self.include):
            return False
        return not any(r.match(path) for r in self.exclude)
