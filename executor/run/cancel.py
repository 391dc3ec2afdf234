"""Cancellation as a tree: stopping a branch stops everything under it, from any thread.

Only the main thread receives signals. Ctrl-C, ``executor kill`` and a Parallel's fail-fast all
end up here: ``cancel()`` marks the scope and every scope below it, and each supervised exec
under it notices within a quarter of a second and kills its processes (see ``supervise``).
"""

from __future__ import annotations

import threading

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
