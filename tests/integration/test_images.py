"""Building and resolving images against the real Docker engine.

Only busybox is (re)built or adopted here (about 2 s); executor/debian:bookworm and
executor/python:3.11 are shared with other tests and never removed or rebuilt. Adoption and the
removal of replaced images are tested on a busybox under a name of its own, so the shared
executor/busybox:latest is never replaced by a changed recipe.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest
from click.testing import CliRunner

from executor.engine.docker.client import connect
from executor.engine.docker.images import DockerImages
from executor.errors import EngineUnavailable, ImageError
from executor.images import BuildResult, ImageResolver, ImageSpec, build, read_lock
from executor.settings import Settings

pytestmark = pytest.mark.integration

BUSYBOX = "executor/busybox:latest"
TEST_LABEL = "executor.test"
# Not TEST_LABEL: another checkout's run of this module removes all of those when it ends.
IN_USE_LABEL = "executor.test.image-in-use"


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """A connected Docker client; containers the tests label are removed afterwards."""
    try:
        docker_client = connect(None)
    except EngineUnavailable as exc:
        pytest.skip(f"no Docker engine: {exc}")
    yield docker_client
    for container in docker_client.containers.list(all=True, filters={"label": TEST_LABEL}):
        container.remove(force=True)
    docker_client.close()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary EXECUTOR_HOME shared by this module's tests."""
    return tmp_path_factory.mktemp("executor-home")


@pytest.fixture(scope="module")
def settings(home: Path) -> Settings:
    """Settings over the temporary home and the repository's real recipes."""
    return Settings.from_env({"EXECUTOR_HOME": str(home)})


@pytest.fixture(scope="module")
def busybox_build(settings: Settings, client: Any) -> BuildResult:
    """Busybox built once into the temporary home's (empty) lock."""
    (result,) = build(settings, DockerImages(client), ["busybox"])
    return result


@pytest.fixture
def app(settings: Settings, client: Any) -> Any:
    """The CLI's context object over the temporary home and the shared client."""
    from executor.cli.context import AppContext

    return AppContext(settings=settings)


def run_cli(app: Any, *args: str) -> Any:
    """Invoke ``executor images ARGS`` and return click's result."""
    from executor.cli.images_cmd import images

    result = CliRunner().invoke(images, list(args), obj=app, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_busybox_builds_into_the_lock_with_the_engine_id(
    busybox_build: BuildResult, settings: Settings, client: Any
) -> None:
    """A fresh home builds (or adopts) busybox and locks the exact id the engine has for it."""
    assert busybox_build.built or busybox_build.adopted
    assert "no lock entry" in busybox_build.reason
    locked = read_lock(settings.images_lock)["busybox"]
    assert locked.ref == BUSYBOX
    assert locked.id == busybox_build.image_id == DockerImages(client).image_id(BUSYBOX)


def test_the_built_busybox_runs_a_shell_in_the_workspace(
    busybox_build: BuildResult, client: Any
) -> None:
    """``docker run`` of the built id runs sh, in /workspace, with a usual PATH."""
    output = client.containers.run(
        busybox_build.image_id,
        ["sh", "-c", "pwd; echo $PATH; echo hello from busybox"],
        remove=True,
        labels={TEST_LABEL: "images"},
    ).decode()
    assert output.splitlines() == [
        "/workspace",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "hello from busybox",
    ]


def test_a_second_build_says_up_to_date_and_keeps_the_id(
    busybox_build: BuildResult, app: Any
) -> None:
    """``images build busybox`` again builds nothing; progress goes to stderr, result to stdout."""
    result = run_cli(app, "build", "busybox")
    assert "up to date" in result.stdout and busybox_build.image_id[:19] in result.stdout
    assert "[busybox" in result.stderr and "up-to-date" in result.stderr


def test_list_shows_busybox_with_its_locked_id(busybox_build: BuildResult, app: Any) -> None:
    """``images list --json`` shows busybox up to date with the id the lock recorded."""
    listed = {row["name"]: row for row in json.loads(run_cli(app, "list", "--json").stdout)}
    assert listed["busybox"]["id"] == listed["busybox"]["locked_id"] == busybox_build.image_id
    assert listed["busybox"]["up_to_date"] is True
    table = run_cli(app, "list").stdout
    assert any(
        line.startswith("busybox") and busybox_build.image_id[:19] in line
        for line in table.splitlines()
    )


def test_offline_references_resolve_to_the_built_busybox(
    busybox_build: BuildResult, settings: Settings, client: Any
) -> None:
    """``alpine:3.19`` resolves through the built-in alias to the busybox just built."""
    resolved = ImageResolver(settings, DockerImages(client).image_id).resolve(
        "alpine:3.19", pull_policy="NEVER"
    )
    assert (resolved.ref_local, resolved.image_id) == (BUSYBOX, busybox_build.image_id)


def test_image_id_of_an_absent_reference_is_none(client: Any) -> None:
    """Looking up a reference the engine does not have gives None, not an error."""
    assert DockerImages(client).image_id(f"executor-test/absent:{uuid.uuid4().hex}") is None


def test_a_failing_dockerfile_build_reports_its_last_lines(
    busybox_build: BuildResult, client: Any, tmp_path: Path
) -> None:
    """A RUN that fails raises ImageError carrying the step's output, and tags nothing."""
    (tmp_path / "Dockerfile").write_text(
        f"FROM {BUSYBOX}\nRUN echo about-to-fail-{busybox_build.name} && exit 7\n"
    )
    ref = f"executor-test/failing:{uuid.uuid4().hex[:12]}"
    images = DockerImages(client)
    lines: list[str] = []
    with pytest.raises(ImageError) as caught:
        images.build_dockerfile(tmp_path, ref, lines.append, {})
    assert "about-to-fail-busybox" in str(caught.value)
    assert any(line.startswith("Step 2/2") for line in lines)
    assert images.image_id(ref) is None


def engine_image_ids(client: Any) -> set[str]:
    """Every image id the engine has, intermediate ones included (``docker images -aq``)."""
    return {str(image["Id"]) for image in client.api.images(all=True)}


@pytest.fixture
def own_busybox(
    tmp_path: Path, client: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, str]]:
    """The busybox recipe under a name of its own, with a nonce file making its inputs unique.

    The catalogue is patched to hold only it; every image made under its name is removed after.
    """
    name = f"executor-test/busybox-{uuid.uuid4().hex[:12]}:latest"
    images_dir = tmp_path / "images"
    shutil.copytree(Path(__file__).parents[2] / "images" / "busybox", images_dir / "busybox")
    (images_dir / "busybox" / "nonce").write_text(name)
    monkeypatch.setattr(
        "executor.images.CATALOGUE", {"busybox": ImageSpec("busybox", name, "rootfs")}
    )
    made: set[str] = set()
    monkeypatch.setattr(DockerImages, "import_rootfs", _recording(DockerImages.import_rootfs, made))
    yield images_dir, name
    for container in client.containers.list(all=True, filters={"label": f"{IN_USE_LABEL}={name}"}):
        container.remove(force=True)
    for image_id in made:
        with contextlib.suppress(docker.errors.NotFound):
            client.api.remove_image(image_id, force=True)


def _recording(import_rootfs: Any, made: set[str]) -> Any:
    def recorded(self: DockerImages, *args: Any) -> str:
        image_id = str(import_rootfs(self, *args))
        made.add(image_id)
        return image_id

    return recorded


def build_in(home: Path, images_dir: Path, client: Any) -> Any:
    """``executor images build busybox`` with EXECUTOR_HOME=home; click's result."""
    from executor.cli.context import AppContext

    env = {"EXECUTOR_HOME": str(home), "EXECUTOR_IMAGES_DIR": str(images_dir)}
    settings = Settings.from_env(env)
    return run_cli(AppContext(settings=settings), "build", "busybox")


def test_a_fresh_home_adopts_an_image_with_the_same_inputs_and_a_rebuild_removes_the_old_one(
    own_busybox: tuple[Path, str], client: Any, tmp_path: Path
) -> None:
    """Home two adopts home one's image (no image made); a changed recipe replaces and removes it.

    A replaced image that a container uses is kept, and the build says so.
    """
    images_dir, name = own_busybox
    images = DockerImages(client)
    build_in(tmp_path / "home-1", images_dir, client)
    first = read_lock(tmp_path / "home-1" / "images.lock.json")["busybox"].id
    assert images.image_id(name) == first
    before = engine_image_ids(client)

    adopted = build_in(tmp_path / "home-2", images_dir, client)
    assert read_lock(tmp_path / "home-2" / "images.lock.json")["busybox"].id == first
    assert "adopted" in adopted.stdout and "adopt:" in adopted.stderr
    assert engine_image_ids(client) == before

    (images_dir / "busybox" / "nonce").write_text(name + " changed")
    rebuilt = build_in(tmp_path / "home-2", images_dir, client)
    second = read_lock(tmp_path / "home-2" / "images.lock.json")["busybox"].id
    assert second != first and images.image_id(name) == second
    assert first not in engine_image_ids(client)
    assert "built in" in rebuilt.stdout and "removed the replaced image" in rebuilt.stderr

    client.api.create_container(second, "true", labels={IN_USE_LABEL: name})
    (images_dir / "busybox" / "nonce").write_text(name + " changed again")
    kept = build_in(tmp_path / "home-2", images_dir, client)
    assert f"kept the replaced image {second[:19]}" in kept.stderr, kept.stderr
    assert second in engine_image_ids(client) and images.image_id(name) != second
