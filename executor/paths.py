"""The one path rule: relative, inside its root, no ``..``, no ``~``, no NUL.

Every relative path a flow, an archive, a URI or a client names goes through it: the loader
judges what a flow writes literally (``templated=True``: expressions are judged once rendered),
the workspace layer the rendered values, the stores (artifacts, namespace files) and the tar
reader every name before anything is written or read.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from executor.errors import UnsafePathError

_TEMPLATE = re.compile(r"\{\{.*?\}\}", re.S)


def unsafe_reason(path: str, *, templated: bool = False, root: str = "the workspace") -> str | None:
    """Why a relative path or glob is refused, or ``None`` when it is safe.

    Args:
        path: the path, with ``/`` or ``\\`` between its parts.
        templated: ``path`` is a flow's own text: its template expressions (``{{ ... }}``)
            are skipped, only what is written literally is judged (the rendered value is
            judged again at run time, with ``templated=False``).
        root: what the path must stay inside, as the reason names it.
    """
    literal = _TEMPLATE.sub("x", path) if templated else path
    if not literal.strip():
        return "is empty"
    if literal.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:[\\/]", literal):
        return f"is absolute; it must be relative to {root}"
    if literal.startswith("~"):
        return f"starts with '~'; it must be relative to {root}"
    if ".." in re.split(r"[\\/]", literal):
        return f"climbs out of {root} with '..'"
    if "\0" in literal:
        return "contains a NUL character"
    return None


def from_namespace_root(glob: str) -> str:
    """A ``namespaceFiles`` glob relative to the namespace root: a leading ``/`` dropped.

    Kestra's own flows write ``/ignore/**``: the root is the namespace's, never the host's.
    """
    return glob.lstrip("/") if glob.startswith("/") and glob.strip("/") else glob


def check_safe(path: str, what: str = "path") -> str:
    """``path`` itself when :func:`unsafe_reason` finds nothing wrong with it as it is.

    Raises:
        UnsafePathError: the path is absolute, climbs out with ``..`` or is empty.
    """
    reason = unsafe_reason(path)
    if reason is not None:
        raise UnsafePathError(f"{what} {path!r} {reason}")
    return path


def safe_relative(path: str, root: str = "its directory") -> PurePosixPath:
    """``path`` as a normalised relative path (``a/./b`` is ``a/b``) that stays inside ``root``.

    Args:
        path: a posix path as written in a flow, a URI or an archive.
        root: what it must stay inside, as the error names it.

    Raises:
        UnsafePathError: the path is empty, absolute, starts with ``~`` or has a ``..`` part.
    """
    reason = unsafe_reason(path, root=root)
    if reason is None and not PurePosixPath(path).parts:
        reason = "is empty"
    if reason is not None:
        raise UnsafePathError(f"path {path!r} must be relative and stay inside {root}: {reason}")
    return PurePosixPath(path)
