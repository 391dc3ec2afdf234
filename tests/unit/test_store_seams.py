"""Nothing outside the stores and the composition root opens a store by its path.

A run reaches its stores through the ``Services`` that ``app.py`` builds (``executor.services``):
on a worker they are the server's, so a task that opened ``Store(settings.db_path)`` itself
would read and write the worker's own database and the flow would act differently there.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "executor"

# where stores may be opened by path: the stores themselves, the factory that chooses them,
# and the implementation that goes through the server (a worker's copies live in its home)
ALLOWED = ("store/", "services.py", "app.py", "worker/remote.py")

OPENERS = {
    "Store",
    "KvTable",
    "SqlKvStore",
    "LocalRecords",
    "LocalArtifactStore",
    "LocalNamespaceStore",
    "LocalCacheStore",
    "RemoteArtifacts",
}
STORE_PATHS = {"db_path", "artifacts_dir", "namespaces_dir", "cache_dir"}


def store_openings(source: str, name: str = "<source>") -> list[str]:
    """Every place in ``source`` that opens a store itself or reaches for a store's path."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else None
            if isinstance(func, ast.Attribute):
                owner = func.value.id if isinstance(func.value, ast.Name) else None
                if owner in OPENERS and func.attr in ("open", "at"):
                    called = f"{owner}.{func.attr}"
            if called is not None and called.split(".")[0] in OPENERS:
                found.append(f"{name}:{node.lineno}: {called}(...)")
        elif isinstance(node, ast.Attribute) and node.attr in STORE_PATHS:
            found.append(f"{name}:{node.lineno}: .{node.attr}")
    return found


def test_no_module_outside_the_stores_opens_a_store_by_path() -> None:
    """Store(...), KvTable(...), LocalArtifactStore(...), settings.db_path and the like appear
    only in store/, the factory (services.py, app.py) and the remote stores (worker/remote.py)."""
    found: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith(ALLOWED):
            continue
        found += store_openings(path.read_text(), rel)
    assert not found, "stores opened by path outside store/ and app.py:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "line",
    [
        "Store(settings.db_path)",
        "KvTable(path).get('a', 'b')",
        "Store.open(target, recover=False)",
        "LocalArtifactStore(root, reader).open(uri)",
        "LocalNamespaceStore(self.settings.namespaces_dir)",
        "where = ctx.settings.artifacts_dir / 'x'",
    ],
)
def test_the_guard_sees_a_new_opening(line: str) -> None:
    """The check above is not blind: each way of opening a store by path is reported."""
    assert store_openings(line), line


def test_the_guard_lets_services_through() -> None:
    """Reaching a store through the run's services is what the code should do: not reported."""
    source = "ctx.stores().kv.get('a', 'b')\napp.stores().records.connect()\n"
    assert store_openings(source) == []
