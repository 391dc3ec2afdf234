"""Flow sources as the server receives and keeps them: parsed with the loader's limits.

A flow sent over the API has no file, so its problems are located as ``flow:LINE:COLUMN``
(with the task id where there is one). The same YAML loader as ``executor run`` refuses alias
bombs and documents nested too deep, and options that open the host are refused unless the
server allows them (``flow.host_access``).
"""

from __future__ import annotations

import re
import threading
from contextvars import ContextVar
from pathlib import Path

from executor.errors import FlowError, FlowLoadError
from executor.flow.host_access import refuse_host_openings
from executor.flow.loader import LoadedFlow, load_flow_text
from executor.store.db import Store
from executor.store.flows import StoredFlow, get_flow

SOURCE_NAME = Path("flow")
_DOCUMENT_SEPARATOR = re.compile(r"^---\s*$", re.MULTILINE)

HOST_OPTIONS_ALLOWED: ContextVar[bool] = ContextVar("host_options_allowed", default=False)
"""The server's ``allowHostOptions``, set for each request by ``server.guard`` (refused when
nothing set it)."""


def parse_flow(text: str, max_bytes: int, *, allow_host_options: bool | None = None) -> LoadedFlow:
    """Parse and validate one flow source.

    ``allow_host_options``: whether its tasks may use options that open the host (default: the
    current request's rule, :data:`HOST_OPTIONS_ALLOWED`).

    Raises:
        FlowError: too large, not YAML, not a valid flow, or opening the host; located.
    """
    if len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise FlowLoadError(f"the flow is larger than {max_bytes} bytes", where=str(SOURCE_NAME))
    loaded = load_flow_text(text, SOURCE_NAME)
    if allow_host_options is None:
        allow_host_options = HOST_OPTIONS_ALLOWED.get()
    refuse_host_openings(loaded, allow_host_options)
    return loaded


def split_documents(text: str) -> list[str]:
    """The flows of a multi-document body (``---`` on a line of its own), empty ones dropped."""
    return [part for part in _DOCUMENT_SEPARATOR.split(text) if part.strip()]


def load_stored(flow: StoredFlow) -> LoadedFlow:
    """A stored revision, loaded (it was valid when saved; the loader checks it again)."""
    return load_flow_text(flow.source, Path(f"{flow.namespace}.{flow.id}@{flow.revision}"))


class StoredFlows:
    """The server's flows as a ``FlowSource``: where a Subflow task finds the flow it names."""

    def __init__(self, db_path: Path | str) -> None:
        self.db_path = db_path
        self._lock = threading.Lock()
        self._loaded: dict[tuple[str, str, int], LoadedFlow] = {}

    def find(
        self, namespace: str, flow_id: str, revision: int | None = None, where: str | None = None
    ) -> LoadedFlow:
        """The flow's latest revision (or ``revision``), loaded.

        Raises:
            FlowError: the server has no such flow (or no such revision).
        """
        with Store(self.db_path) as store:
            stored = get_flow(store, namespace, flow_id, revision)
        if stored is None:
            asked = f" revision {revision}" if revision is not None else ""
            raise FlowError(
                f"Unable to find flow '{namespace}'.'{flow_id}'{asked} on this server",
                where=where,
            )
        key = (namespace, flow_id, stored.revision)
        with self._lock:
            if key not in self._loaded:
                self._loaded[key] = load_stored(stored)
            return self._loaded[key]
