"""The server's stored flows as a run's ``FlowRepository``: what ``git.PushFlows`` exports and
``git.SyncFlows`` imports, each change a new revision as if it came through the API.

A flow saved here is checked as the API checks one (size, the loader, options that open the
host), so a task cannot store what a user could not.
"""

from __future__ import annotations

from pathlib import Path

from executor.errors import FlowLoadError
from executor.flow.host_access import refuse_host_openings
from executor.flow.loaded import LoadedFlow
from executor.flow.loader import load_flow_text
from executor.flow_repository import KeptFlow, in_namespace
from executor.store.flows import StoredFlow, delete_flow, list_flows, save_flow
from executor.store.local import LocalRecords


def _kept(flow: StoredFlow) -> KeptFlow:
    return KeptFlow(flow.namespace, flow.id, flow.source, flow.revision)


class StoredFlowRepository:
    """The flows of the server's store."""

    described = "this server's flows"

    def __init__(
        self, records: LocalRecords, max_flow_bytes: int, allow_host_options: bool
    ) -> None:
        self.records = records
        self.max_flow_bytes = max_flow_bytes
        self.allow_host_options = allow_host_options

    def flows(self, namespace: str, children: bool = False) -> list[KeptFlow]:
        with self.records.connect() as store:
            found = list_flows(store, None if children else namespace)
        return [_kept(f) for f in found if in_namespace(f.namespace, namespace, children)]

    def check(self, source: str, where: str) -> LoadedFlow:
        """The flow, loaded as the API loads one (in the task's own thread: a run, not the
        server's event loop, pays for it)."""
        if len(source.encode("utf-8", "surrogatepass")) > self.max_flow_bytes:
            raise FlowLoadError(f"the flow is larger than {self.max_flow_bytes} bytes", where=where)
        loaded = load_flow_text(source, Path(where))
        refuse_host_openings(loaded, self.allow_host_options)
        return loaded

    def save(self, namespace: str, flow_id: str, source: str) -> tuple[KeptFlow, bool]:
        with self.records.connect() as store:
            before = {f.id: f.revision for f in list_flows(store, namespace)}.get(flow_id)
            stored = save_flow(store, namespace, flow_id, source)
        return _kept(stored), stored.revision != before

    def delete(self, namespace: str, flow_id: str) -> bool:
        with self.records.connect() as store:
            return delete_flow(store, namespace, flow_id)
