"""Adding a task type is its model and a handler module: the registry and the list of supported
types follow from them, and a model without a handler (or the reverse) fails here, not at run
time."""

from __future__ import annotations

from typing import Any, get_args

import pytest

from executor.errors import ExecutorError
from executor.flow import model as m
from executor.run import handlers
from executor.run.handlers import handler_for


def test_every_task_model_has_one_handler_and_every_handler_a_model() -> None:
    """The models of ``Task`` and the models the handler modules declare are the same set."""
    models = set(get_args(m.Task))
    handled = set(handlers.handlers())
    assert sorted(k.__name__ for k in models - handled) == []  # a model nothing runs
    assert sorted(k.__name__ for k in handled - models) == []  # a handler no flow can reach


def test_supported_types_are_those_of_the_models() -> None:
    """Every type a model takes is supported, once; nothing else is."""
    declared = [
        name for kind in get_args(m.Task) for name in get_args(kind.model_fields["type"].annotation)
    ]
    assert sorted(m.SUPPORTED_TASK_TYPES) == sorted(declared)
    assert len(set(m.SUPPORTED_TASK_TYPES)) == len(m.SUPPORTED_TASK_TYPES)


def test_a_model_handled_twice_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two modules declaring the same model is an error naming both, not a silent override."""
    from executor.run.handlers import flowable, values

    extra: dict[type[Any], Any] = {m.LogTask: values.HANDLES[m.LogTask]}
    monkeypatch.setattr(handlers, "_registry", {})
    monkeypatch.setattr(flowable, "HANDLES", {**flowable.HANDLES, **extra})
    with pytest.raises(ExecutorError, match="LogTask is handled twice: by flowable and values"):
        handler_for(m.LogTask(id="l", type="io.kestra.plugin.core.log.Log", message="x"))
