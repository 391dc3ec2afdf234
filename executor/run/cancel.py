"""Cancellation as a tree: stopping a branch stops everything under it, from any thread.

Only the main thread receives signals. Ctrl-C, ``executor kill`` and a Parallel's fail-fast all
end up here: ``cancel()`` marks the scope and every scope below it, and each supervised exec
under it notices within a quarter of a second and kills its processes (see ``supervise``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from executor.host import Owner
from executor.model import State


class CancelScope:
    """One node of the cancellation tree."""

    def __init__(self, parent: CancelScope | None = None) -> None:
        self._lock = threading.Lock()
        self._children: list[CancelScope] = []
        self.state: State | None = None
        self.reason: str | None = None
        if parent is not None:
            parent._adopt(self)

    def _adopt(self, child: CancelScope) -> None:
        with self._lock:
            self._children.append(child)
            state, reason = self.state, self.reason
        if state is not None:
            child.cancel(state, reason or "")

    def child(self) -> CancelScope:
        """A scope that is cancelled with this one (or on its own)."""
        return CancelScope(self)

    @property
    def cancelled(self) -> bool:
        return self.state is not None

    def cancel(self, state: State, reason: str) -> None:
        """Stop this scope and all below it; tasks stopped end ``state`` (KILLED, FAILED...)."""
        with self._lock:
            if self.state is not None:
                return
            self.state, self.reason = state, reason
            children = list(self._children)
        for child in children:
            child.cancel(state, reason)


class Running:
    """What one process runs now: execution id -> the scope that kills it.

    The server's slots register the executions they take, and the Subflow tasks the children
    they start (``wait: true`` ones run inside their parent's slot), so that a kill finds every
    execution the process runs, and a recovery knows which of its records have lost their
    runner. Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scopes: dict[str, CancelScope] = {}

    @contextmanager
    def holding(self, execution_id: str, scope: CancelScope) -> Iterator[None]:
        """Registered while the block runs."""
        with self._lock:
            self._scopes[execution_id] = scope
        try:
            yield
        finally:
            with self._lock:
                if self._scopes.get(execution_id) is scope:
                    del self._scopes[execution_id]

    def add(self, execution_id: str, scope: CancelScope) -> None:
        """Registered until :meth:`discard` (when a block cannot hold it: see ``holding``)."""
        with self._lock:
            self._scopes[execution_id] = scope

    def discard(self, execution_id: str) -> None:
        with self._lock:
            self._scopes.pop(execution_id, None)

    def get(self, execution_id: str) -> CancelScope | None:
        with self._lock:
            return self._scopes.get(execution_id)

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._scopes)

    def scopes(self) -> list[CancelScope]:
        with self._lock:
            return list(self._scopes.values())


def runner_gone(owner: Owner, me: Owner, running: Running | None, execution_id: str) -> bool:
    """Whether nothing runs an unfinished execution recorded as run by ``owner``: ``owner`` is
    this process (``me``) and none of its runners holds it, or ``owner`` is a process of this
    host that no longer runs. The one rule of the kill (``app.kill_execution``) and of a
    server's recovery."""
    if owner == me:
        return running is None or running.get(execution_id) is None
    return owner.is_gone()
