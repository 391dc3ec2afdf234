"""``backend_for(settings)``: the engine backend the settings name, made on demand.

``EXECUTOR_ENGINE`` names the kind (``docker``, the default, or ``fake``), alone or as the
scheme of a URL (``docker://``); each kind is one alias to a ``module:Class`` implementing
:class:`~executor.engine.api.BackendClass`, imported only when asked for, so a process that
never runs a container imports no engine library. Adding a backend (Kubernetes) is one package
under ``engine/`` and one line here.
"""

from __future__ import annotations

import importlib
from typing import cast

from executor.engine.api import Backend, BackendClass
from executor.errors import UsageError
from executor.settings import Settings

BACKENDS: dict[str, str] = {
    "docker": "executor.engine.docker.backend:DockerBackend",
    "fake": "executor.engine.fake:FakeBackend",
}
"""Engine kind -> the class that implements it."""


def backend_class(engine: str) -> BackendClass:
    """The class of the backend named ``engine`` (a kind, or a URL whose scheme is one).

    Raises:
        UsageError: no backend of that kind, naming the setting and the kinds there are.
    """
    kind = engine.split("://", 1)[0].strip().lower()
    target = BACKENDS.get(kind)
    if target is None:
        known = ", ".join(sorted(BACKENDS))
        raise UsageError(f"EXECUTOR_ENGINE={engine!r}: no such engine backend (known: {known})")
    module, _, name = target.partition(":")
    return cast(BackendClass, getattr(importlib.import_module(module), name))


def backend_for(settings: Settings) -> Backend:
    """Connect to the engine the settings name.

    Raises:
        UsageError: ``settings.engine`` names no backend.
        EngineUnavailable: nothing answers where the backend looks for its engine.
    """
    return backend_class(settings.engine).from_settings(settings)


def describe_engine(settings: Settings, timeout: float) -> dict[str, str]:
    """Who answers at the settings' engine, within ``timeout`` (a readiness probe's details).

    Raises:
        UsageError: ``settings.engine`` names no backend.
        EngineUnavailable: nothing answers in time.
    """
    return backend_class(settings.engine).describe(settings, timeout)
