"""Flows that would start each other forever through their Flow triggers, refused when saved."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from executor.errors import FlowError, UsageError
from executor.flow.flow_match import describe_cycle, find_cycle
from executor.flow.flow_trigger import FlowTrigger
from executor.flow.loaded import LoadedFlow
from executor.flow.model import Flow
from executor.store.db import Store
from executor.store.flows import StoredFlow, list_flows


def refuse_trigger_loops(
    store: Store, load: Callable[[StoredFlow], LoadedFlow], saving: Sequence[Flow]
) -> None:
    """Refuse ``saving`` when, with the stored flows, Flow triggers make a loop.

    Raises:
        UsageError: the loop, flow by flow (a 422).
    """
    if not any(isinstance(t, FlowTrigger) for f in saving for t in f.triggers or ()):
        return  # in a loop, every flow is started by a Flow trigger: these close none
    replaced = {(f.namespace, f.id) for f in saving}
    flows = list(saving)
    for stored in list_flows(store):
        if (stored.namespace, stored.id) in replaced:
            continue
        try:
            flows.append(load(stored).flow)
        except FlowError:  # a stored flow that no longer loads starts nothing
            continue
    cycle = find_cycle(flows)
    if cycle is not None:
        raise UsageError(describe_cycle(cycle))
