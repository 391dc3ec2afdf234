"""The one workspace path rule: relative, inside the workspace, no ``..``, no NUL.

The loader applies it to what a flow writes literally, the workspace layer again to rendered
values, so a path that escapes is refused before anything runs and again before it is used.
"""

from __future__ import annotations

import re

from executor.errors import UnsafePathError


def unsafe_reason(path: str) -> str | None:
    """Why a workspace path or glob is refused, or ``None`` when it is safe.

    Template expressions (``{{ ... }}``) are skipped: only what is written literally is judged
    here, the rendered value is checked again at run time.
    """
    literal = re.sub(r"\{\{.*?\}\}", "x", path, flags=re.S)
    if not literal.strip():
        return "is empty"
    if literal.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:[\\/]", literal):
        return "is absolute; it must be relative to the workspace"
    if literal.startswith("~"):
        return "starts with '~'; it must be relative to the workspace"
    if ".." in re.split(r"[\\/]", literal):
        return "climbs out of the workspace with '..'"
    if "\0" in literal:
        return "contains a NUL character"
    return None


def from_namespace_root(glob: str) -> str:
    """A ``namespaceFiles`` glob relative to the namespace root: a leading ``/`` dropped.

    Kestra's own flows write ``/ignore/**``: the root is the namespace's, never the host's.
    """
    return glob.lstrip("/") if glob.startswith("/") and glob.strip("/") else glob


def check_safe(path: str, what: str = "path") -> str:
    """``path`` itself when :func:`unsafe_reason` finds nothing wrong.

    Raises:
        UnsafePathError: the path is absolute, climbs out with ``..`` or is empty.
    """
    reason = unsafe_reason(path)
    if reason is not None:
        raise UnsafePathError(f"{what} {path!r} {reason}")
    return path
