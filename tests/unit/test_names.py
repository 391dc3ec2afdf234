"""One name rule: the flow model, the KV store and the namespace files agree on every name."""

from __future__ import annotations

from pathlib import Path

import pytest

from executor.errors import FlowValidationError, UsageError
from executor.flow.loader import load_flow_text
from executor.names import check_key, check_namespace
from executor.store import kv
from executor.store.files import namespaces

FLOW = (
    "id: {id}\nnamespace: {namespace}\ntasks:\n"
    "  - id: l\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
)


def _loads(namespace: str, flow_id: str = "f") -> bool:
    try:
        load_flow_text(FLOW.format(id=flow_id, namespace=namespace), Path("f.yaml"))
    except FlowValidationError:
        return False
    return True


def _checks(namespace: str) -> bool:
    try:
        check_namespace(namespace)
    except UsageError:
        return False
    return True


@pytest.mark.parametrize(
    "namespace",
    ["company.team", "a", "a.b-c_d", "a._b", "a.", "a..b", "A.b", ".a", "a/b", "a b", ""],
)
def test_a_namespace_is_judged_alike_by_the_flow_and_the_stores(namespace: str) -> None:
    """A flow may name exactly the namespaces the stores accept (``a..b`` by neither: a
    namespace is a path of the namespace files and the artifact store)."""
    assert _loads(namespace) == _checks(namespace)
    assert kv.check_namespace is check_namespace is namespaces.check_namespace


def test_the_rule_itself() -> None:
    """Kestra's characters; no empty part between dots."""
    assert _checks("company.team") and _checks("a.") and not _checks("a..b")
    with pytest.raises(UsageError, match="is not a namespace"):
        check_namespace("Company")


@pytest.mark.parametrize("name", ["my-key", "k.v_1", "-k", "k/v", ""])
def test_kv_keys_and_flow_ids_follow_one_rule(name: str) -> None:
    """A KV key and a flow id are the same kind of name."""
    try:
        check_key(name)
        key_ok = True
    except UsageError:
        key_ok = False
    assert key_ok == _loads("t", name or '""')
