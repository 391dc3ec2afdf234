"""Workdir.layer_over: when an overlay workspace is made, and how it falls back."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from executor.engine import overlay
from executor.engine.api import Capabilities, ContainerOptions, ContainerSpec, WorkdirSpec
from executor.engine.containers import ContainerWorkdir
from executor.engine.fake import FakeBackend
from executor.errors import EngineError


@dataclass
class LocalEngine(FakeBackend):
    """A fake engine on this host (it declares it mounts host directories); its mounts fail
    when ``mount_fails``."""

    capabilities: Capabilities = field(default_factory=lambda: Capabilities(host_directory=True))
    mount_fails: bool = False

    def start_container(self, spec: ContainerSpec) -> str:
        if self.mount_fails and self.volume_options.get(spec.volume):
            raise EngineError("error while mounting volume: invalid argument")
        return super().start_container(spec)


def _options() -> ContainerOptions:
    return ContainerOptions("sha256:img")


def _open(engine: FakeBackend) -> ContainerWorkdir:
    spec = WorkdirSpec({"io.executor.managed": "true"}, "/workspace", _options)
    return ContainerWorkdir(engine, spec).open()


def _lower(tmp_path: Path) -> list[Path]:
    top, bottom = tmp_path / "top", tmp_path / "bottom"
    top.mkdir()
    bottom.mkdir()
    return [top, bottom]


def test_overlay_volume_replaces_the_plain_one(tmp_path: Path) -> None:
    engine = LocalEngine()
    workdir = _open(engine)
    plain = workdir.volume
    assert workdir.layer_over(_lower(tmp_path), tmp_path / "scratch") is None
    assert workdir.volume != plain and engine.volumes == {workdir.volume}
    assert workdir.volume is not None
    opts = engine.volume_options[workdir.volume]
    (scratch,) = (tmp_path / "scratch").iterdir()
    assert opts["type"] == "overlay"
    assert opts["o"] == (
        f"lowerdir={tmp_path / 'top'}:{tmp_path / 'bottom'},"
        f"upperdir={scratch / 'upper'},workdir={scratch / 'work'}"
    )
    assert overlay.lowers_in_use(tmp_path / "scratch") == set(_lower_paths(tmp_path))
    assert workdir.close() == []
    assert engine.volumes == set()
    assert list((tmp_path / "scratch").iterdir()) == []


def _lower_paths(tmp_path: Path) -> list[Path]:
    return [tmp_path / "top", tmp_path / "bottom"]


def test_a_remote_engine_keeps_the_plain_volume(tmp_path: Path) -> None:
    engine = FakeBackend()  # no host_directory capability: not on this host
    workdir = _open(engine)
    plain = workdir.volume
    why = workdir.layer_over(_lower(tmp_path), tmp_path / "scratch")
    assert why is not None and "host" in why
    assert workdir.volume == plain and engine.volumes == {plain}
    assert not (tmp_path / "scratch").exists()


def test_a_failed_mount_falls_back_and_leaves_nothing(tmp_path: Path) -> None:
    engine = LocalEngine()
    engine.mount_fails = True
    workdir = _open(engine)
    plain = workdir.volume
    why = workdir.layer_over(_lower(tmp_path), tmp_path / "scratch")
    assert why is not None and "could not mount" in why
    assert workdir.volume == plain and engine.volumes == {plain}
    assert list((tmp_path / "scratch").iterdir()) == []
    assert workdir.containers == []
    workdir.container(_options())  # the plain workspace still works
    assert workdir.close() == []


def test_only_before_any_container(tmp_path: Path) -> None:
    engine = LocalEngine()
    workdir = _open(engine)
    workdir.container(_options())
    why = workdir.layer_over(_lower(tmp_path), tmp_path / "scratch")
    assert why == "a container already uses the workspace"


@pytest.mark.parametrize("bad", ["a,b", "a:b", "a=b"])
def test_paths_mount_options_cannot_carry(tmp_path: Path, bad: str) -> None:
    lower = tmp_path / bad
    lower.mkdir()
    why = _open(LocalEngine()).layer_over([lower], tmp_path / "scratch")
    assert why is not None and "mount options" in why


def test_sweep_keeps_live_scratch_and_removes_the_rest(tmp_path: Path) -> None:
    for name in ("live", "dead"):
        overlay.Scratch(tmp_path, name).create([tmp_path])
    removed = overlay.sweep(tmp_path, lambda: ["live"])
    assert removed == [tmp_path / "dead"]
    assert [p.name for p in tmp_path.iterdir()] == ["live"]
    assert overlay.lowers_in_use(tmp_path) == {tmp_path}
