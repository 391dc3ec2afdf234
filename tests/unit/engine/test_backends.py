"""The engine seam: one factory picks the backend, and every backend keeps the same Protocols.

mypy checks the implementations against the Protocols statically (``_check`` in each backend);
these tests check them at run time too, member by member, signature by signature, so a backend
that drifts from the seam fails here as well as in the type check.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from executor.engine import api
from executor.engine.backends import BACKENDS, backend_class, backend_for
from executor.engine.containers import ContainerWorkdir
from executor.engine.docker.backend import DockerBackend
from executor.engine.docker.client import LOCAL_BASE_URL
from executor.engine.fake import FakeBackend
from executor.errors import UsageError
from executor.settings import Settings

REPO = Path(__file__).resolve().parents[3]


def _members(protocol: type) -> list[str]:
    return sorted(
        name
        for klass in protocol.__mro__
        if klass not in (object,) and klass.__name__ not in ("Protocol", "Generic")
        for name in vars(klass)
        if not name.startswith("_")
    )


def _parameters(function: Any) -> list[tuple[str, Any]]:
    """Names and kinds of the parameters (annotations are strings here, compared by name)."""
    params = list(inspect.signature(function).parameters.values())
    return [(p.name, p.kind) for p in params if p.name not in ("self", "cls")]


def _same_shape(protocol: type, implementation: type) -> list[str]:
    """What ``implementation`` lacks of ``protocol``, or takes differently."""
    problems = []
    for name in _members(protocol):
        wanted = inspect.getattr_static(protocol, name)
        declared = any(name in vars(k).get("__annotations__", {}) for k in implementation.__mro__)
        if not hasattr(implementation, name) and not declared:
            problems.append(f"{implementation.__name__} has no {name}")
            continue
        if isinstance(wanted, property):
            continue  # an attribute or a property: read either way
        found = inspect.getattr_static(implementation, name)
        if isinstance(found, classmethod | staticmethod):
            found = found.__func__
        if _parameters(wanted) != _parameters(found):
            problems.append(
                f"{implementation.__name__}.{name}{_parameters(found)} != {_parameters(wanted)}"
            )
    return problems


def _docker_backend() -> DockerBackend:
    """A Docker backend over a stand-in client: nothing is asked of it here."""
    api = SimpleNamespace(base_url=LOCAL_BASE_URL, info=lambda: {"Name": "elsewhere"})
    return DockerBackend(SimpleNamespace(api=api))


@pytest.mark.parametrize("implementation", [DockerBackend, FakeBackend])
def test_the_docker_and_the_fake_backend_keep_the_same_protocols(implementation: type) -> None:
    """Both backends have every member of Backend and ContainerEngine, taking the same
    parameters, and both classes make backends from settings the same way."""
    for protocol in (api.Backend, api.ContainerEngine):
        assert _same_shape(protocol, implementation) == []
    assert _same_shape(api.BackendClass, implementation) == []


def test_both_backends_are_backends_at_run_time() -> None:
    """isinstance against the runtime-checkable Protocols holds for an instance of each, and
    the WorkingDirectory they open is a Workdir."""
    for backend in (_docker_backend(), FakeBackend()):
        assert isinstance(backend, api.Backend) and isinstance(backend, api.ContainerEngine)
        assert isinstance(backend.capabilities, api.Capabilities)
    assert _same_shape(api.Workdir, ContainerWorkdir) == []
    spec = api.WorkdirSpec({}, "/workspace", lambda: api.ContainerOptions("img"))
    assert isinstance(FakeBackend().open_workdir(spec), api.Workdir)


def test_a_protocol_drift_is_caught() -> None:
    """The shape check is not vacuous: a backend whose method takes other parameters fails."""

    class Drifted(FakeBackend):
        def pull(self, reference: str) -> str:  # type: ignore[override]
            return reference

    (problem,) = _same_shape(api.Backend, Drifted)
    assert problem.startswith("Drifted.pull[('reference',")


@pytest.mark.parametrize(
    ("engine", "expected"),
    [("docker", DockerBackend), ("docker://", DockerBackend), ("FAKE", FakeBackend)],
)
def test_the_factory_picks_the_backend_by_kind_or_url_scheme(engine: str, expected: type) -> None:
    """A kind, or a URL whose scheme is one, names the backend class."""
    assert backend_class(engine) is expected


def test_the_fake_is_made_from_settings_by_the_same_factory(tmp_path: Path) -> None:
    """EXECUTOR_ENGINE=fake gives the fake backend, through backend_for like Docker."""
    settings = Settings.from_env({"EXECUTOR_HOME": str(tmp_path), "EXECUTOR_ENGINE": "fake"})
    assert isinstance(backend_for(settings), FakeBackend)


def test_an_unknown_engine_is_one_clear_error() -> None:
    """An unknown kind names the setting, the value and the kinds there are."""
    with pytest.raises(UsageError) as raised:
        backend_class("kubernetes://cluster")
    assert str(raised.value) == (
        "EXECUTOR_ENGINE='kubernetes://cluster': no such engine backend (known: docker, fake)"
    )
    assert sorted(BACKENDS) == ["docker", "fake"]


def test_an_unknown_engine_stops_executor_run_with_exit_2_and_no_traceback(
    tmp_path: Path,
) -> None:
    """`executor run` with EXECUTOR_ENGINE naming no backend: one line, exit code 2."""
    flow = tmp_path / "f.yaml"
    flow.write_text(
        "id: f\nnamespace: t\ntasks:\n"
        "  - id: l\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "EXECUTOR_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "executor", "run", str(flow)],
        env={**env, "EXECUTOR_ENGINE": "nomad"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "executor: EXECUTOR_ENGINE='nomad': no such engine backend (known: docker, fake)"
    ]


def test_the_factory_imports_only_the_backend_asked_for() -> None:
    """A process that uses the fake never imports docker (nor the Docker backend)."""
    code = (
        "import sys\n"
        "from executor.engine.backends import backend_class\n"
        "backend_class('fake')\n"
        "ours = [m for m in sys.modules if m.startswith('executor.engine.docker')]\n"
        "print(sorted(ours + [m for m in sys.modules if m == 'docker']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "[]"
