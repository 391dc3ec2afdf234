"""The image catalogue, lock, aliases and resolver, with a fake engine: no Docker here."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from executor.engine.labels import INPUT_HASH
from executor.errors import ImageError, TransientEngineError, UsageError
from executor.images import (
    CATALOGUE,
    DEFAULT_IMAGES,
    ROOTFS_CHANGES,
    BuildEvent,
    BuildResult,
    ImageBuilder,
    ImageEngine,
    ImageResolver,
    LockEntry,
    add_alias,
    build,
    build_inputs_hash,
    image_states,
    input_hash,
    normalize_reference,
    read_lock,
    write_lock,
)
from executor.settings import Settings
from executor.task_network import TaskNetwork

ROOTFS_RECIPE = '#!/usr/bin/env bash\nset -e\nmkdir -p "$1/bin"\necho {name} >"$1/marker"\n'


class FakeImages:
    """An in-memory engine that records what it was asked to import, build, tag and remove."""

    def __init__(self, present: dict[str, str] | None = None) -> None:
        self.images: dict[str, str] = dict(present or {})
        self.labels: dict[str, dict[str, str]] = {}
        self.in_use: set[str] = set()
        self.calls: list[tuple[str, str]] = []
        self.contexts: dict[str, dict[str, bytes]] = {}
        self.imported: dict[str, tuple[list[str], list[str], Path]] = {}

    def image_id(self, ref: str) -> str | None:
        return self.images.get(ref)

    def images_labelled(self, label: str, value: str) -> list[str]:
        found = [i for i, labels in self.labels.items() if labels.get(label) == value]
        return sorted(found, reverse=True)  # ids count up, so this is newest first

    def tag(self, image_id: str, ref: str) -> None:
        self.calls.append(("tag", ref))
        self.images[ref] = image_id

    def remove_unused(self, image_id: str) -> bool:
        if image_id in self.in_use or image_id in self.images.values():
            return False
        self.calls.append(("remove", image_id))
        self.labels.pop(image_id, None)
        return True

    def import_rootfs(
        self, rootfs: Path, ref: str, changes: Sequence[str], labels: Mapping[str, str]
    ) -> str:
        files = sorted(p.relative_to(rootfs).as_posix() for p in rootfs.rglob("*"))
        self.imported[ref] = (files, list(changes), rootfs)
        return self._made("import", ref, labels)

    def build_dockerfile(
        self,
        context: Path,
        ref: str,
        on_line: Callable[[str], None],
        labels: Mapping[str, str],
    ) -> str:
        on_line("Step 1/2 : FROM executor/debian:bookworm")
        on_line(" ---> 1234")
        self.contexts[ref] = {p.name: p.read_bytes() for p in context.iterdir() if p.is_file()}
        return self._made("build", ref, labels)

    def _made(self, how: str, ref: str, labels: Mapping[str, str]) -> str:
        self.calls.append((how, ref))
        image_id = f"sha256:{len(self.calls):064d}"
        self.images[ref] = image_id
        self.labels[image_id] = dict(labels)
        return image_id

    def made(self) -> list[tuple[str, str]]:
        """The imports and builds asked for, in order."""
        return [call for call in self.calls if call[0] in ("import", "build")]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with a temporary home and a small recipe tree that builds in milliseconds."""
    images = tmp_path / "images"
    for name in ("busybox", "debian"):
        (images / name).mkdir(parents=True)
        (images / name / "rootfs.sh").write_text(ROOTFS_RECIPE.format(name=name))
    (images / "python").mkdir()
    (images / "python" / "Dockerfile").write_text("FROM executor/debian:bookworm\n")
    for name, base in (
        ("node", "debian:bookworm"),
        ("r", "debian:bookworm"),
        ("dbt", "python:3.11"),
    ):
        (images / name).mkdir()
        (images / name / "Dockerfile").write_text(f"FROM executor/{base}\n")
    return Settings(home=tmp_path / "home", images_dir=images)


@pytest.fixture
def engine() -> FakeImages:
    """An empty fake engine."""
    return FakeImages()


def built_names(results: Sequence[BuildResult]) -> list[str]:
    """The names of the images a build actually built."""
    return [r.name for r in results if r.built]


# --- input hash ---------------------------------------------------------------------------------


def test_input_hash_is_stable_and_follows_the_recipe_bytes(settings: Settings) -> None:
    """The hash repeats for the same recipe and changes when one byte of it changes."""
    before = input_hash("busybox", settings.images_dir)
    assert before == input_hash("busybox", settings.images_dir)
    (settings.images_dir / "busybox" / "rootfs.sh").write_text("echo other\n")
    assert input_hash("busybox", settings.images_dir) != before


def test_a_dockerfile_image_hash_includes_its_base(settings: Settings) -> None:
    """Changing debian's recipe changes python's input hash, since python builds FROM it."""
    before = input_hash("python", settings.images_dir)
    (settings.images_dir / "debian" / "rootfs.sh").write_text("echo changed\n")
    assert input_hash("python", settings.images_dir) != before


def test_a_missing_recipe_is_an_image_error(settings: Settings) -> None:
    """An image whose recipe directory is gone cannot be hashed, and the error names it."""
    (settings.images_dir / "busybox" / "rootfs.sh").unlink()
    with pytest.raises(ImageError, match="busybox"):
        input_hash("busybox", settings.images_dir)


# --- lock file ----------------------------------------------------------------------------------


def test_lock_round_trips_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    """A written lock reads back equal, and only the lock file is left in its directory."""
    path = tmp_path / "state" / "images.lock.json"
    entries = {"busybox": LockEntry("executor/busybox:latest", "sha256:1", "sha256:h", "now")}
    write_lock(path, entries)
    assert read_lock(path) == entries
    assert [p.name for p in path.parent.iterdir()] == ["images.lock.json"]


def test_a_missing_lock_is_empty_and_a_corrupt_one_is_an_error(tmp_path: Path) -> None:
    """No lock file means no entries; a lock that is not JSON is an ImageError naming it."""
    path = tmp_path / "images.lock.json"
    assert read_lock(path) == {}
    path.write_text("{not json")
    with pytest.raises(ImageError, match=r"images\.lock\.json"):
        read_lock(path)


# --- building -----------------------------------------------------------------------------------


def test_first_build_builds_all_three_bases_first_and_locks_them(
    settings: Settings, engine: FakeImages
) -> None:
    """On an empty engine every image is built, debian before python, and each id is locked."""
    results = build(settings, engine)
    assert engine.calls == [
        ("import", "executor/busybox:latest"),
        ("import", "executor/debian:bookworm"),
        ("build", "executor/python:3.11"),
    ]
    lock = read_lock(settings.images_lock)
    assert {name: e.id for name, e in lock.items()} == {r.name: r.image_id for r in results}
    assert lock["python"].input_hash == input_hash("python", settings.images_dir)


def test_a_rootfs_image_imports_what_the_recipe_made_then_drops_the_temp_dir(
    settings: Settings, engine: FakeImages
) -> None:
    """The import sees the recipe's files and the shell/workdir/PATH changes; the temp dir goes."""
    build(settings, engine, ["busybox"])
    files, changes, rootfs = engine.imported["executor/busybox:latest"]
    assert files == ["bin", "marker"]
    assert changes == list(ROOTFS_CHANGES)
    assert 'CMD ["/bin/sh"]' in changes and "WORKDIR /workspace" in changes
    assert not rootfs.parent.exists()


def test_a_second_build_is_up_to_date(settings: Settings, engine: FakeImages) -> None:
    """Nothing is rebuilt when the engine and the lock agree with the recipes."""
    build(settings, engine)
    results = build(settings, engine)
    assert built_names(results) == []
    assert [r.reason for r in results] == ["up to date"] * 3
    assert len(engine.calls) == 3


def test_a_changed_recipe_rebuilds_the_image_and_its_dependents(
    settings: Settings, engine: FakeImages
) -> None:
    """Editing debian's recipe rebuilds debian and python (built FROM it), not busybox."""
    build(settings, engine)
    (settings.images_dir / "debian" / "rootfs.sh").write_text(ROOTFS_RECIPE.format(name="v2"))
    assert built_names(build(settings, engine)) == ["debian", "python"]


def test_an_image_missing_from_the_engine_is_rebuilt(
    settings: Settings, engine: FakeImages
) -> None:
    """A locked image someone removed from the engine is built again."""
    build(settings, engine)
    engine.labels.pop(engine.images.pop("executor/busybox:latest"))
    results = build(settings, engine, ["busybox"])
    assert built_names(results) == ["busybox"]
    assert results[0].reason == "missing from the engine"


def test_an_image_without_a_lock_entry_is_rebuilt(settings: Settings) -> None:
    """An image present in the engine but absent from this lock is built into the lock."""
    engine = FakeImages({"executor/busybox:latest": "sha256:old"})
    results = build(settings, engine, ["busybox"])
    assert results[0].reason == "no lock entry"
    assert read_lock(settings.images_lock)["busybox"].id != "sha256:old"


def test_force_rebuilds_an_up_to_date_image(settings: Settings, engine: FakeImages) -> None:
    """``force`` builds even when nothing changed."""
    build(settings, engine, ["busybox"])
    assert built_names(build(settings, engine, ["busybox"], force=True)) == ["busybox"]


def test_building_python_builds_a_missing_debian_first(
    settings: Settings, engine: FakeImages
) -> None:
    """Asking for python alone on an empty engine builds its base debian before it."""
    build(settings, engine, ["python"])
    assert [ref for _, ref in engine.calls] == ["executor/debian:bookworm", "executor/python:3.11"]


def test_building_python_reuses_a_present_debian_not_asked_for(settings: Settings) -> None:
    """A base present in the engine is used as it is when only its dependent is asked for."""
    engine = FakeImages({"executor/debian:bookworm": "sha256:base"})
    results = build(settings, engine, ["python"])
    assert built_names(results) == ["python"]
    assert "debian" not in read_lock(settings.images_lock)


def test_built_images_are_labelled_with_the_hash_of_their_inputs(
    settings: Settings, engine: FakeImages
) -> None:
    """Each built image carries io.executor.input-hash; python's covers debian's exact id."""
    build(settings, engine)
    debian = engine.images["executor/debian:bookworm"]
    for spec in (CATALOGUE[name] for name in DEFAULT_IMAGES):
        parent = debian if spec.name == "python" else None
        expected = build_inputs_hash(spec, input_hash(spec.name, settings.images_dir), parent)
        assert engine.labels[engine.images[spec.ref]] == {INPUT_HASH: expected}
    assert len(set(map(str, engine.labels.values()))) == 3


def test_a_fresh_home_adopts_the_images_with_the_same_inputs(
    settings: Settings, engine: FakeImages
) -> None:
    """A second EXECUTOR_HOME builds nothing: it locks the ids the engine already has."""
    first = {r.name: r.image_id for r in build(settings, engine)}
    fresh = Settings(home=settings.home.parent / "fresh-home", images_dir=settings.images_dir)
    events: list[BuildEvent] = []
    results = ImageBuilder(fresh, engine, events.append).build()
    assert len(engine.made()) == 3 and ("tag", "executor/busybox:latest") not in engine.calls
    assert [(r.built, r.adopted) for r in results] == [(False, True)] * 3
    assert {n: e.id for n, e in read_lock(fresh.images_lock).items()} == first
    assert all("adopted" in r.reason and "no lock entry" in r.reason for r in results)
    assert [e.image for e in events if e.step == "adopt"] == ["busybox", "debian", "python"]
    assert not any(e.step == "cleanup" for e in events)


def test_an_untagged_image_with_the_same_inputs_is_adopted_and_named_again(
    settings: Settings, engine: FakeImages
) -> None:
    """An image that lost its name but still has the same inputs gets the name back."""
    (built,) = build(settings, engine, ["busybox"])
    del engine.images["executor/busybox:latest"]
    (result,) = build(settings, engine, ["busybox"])
    assert result.adopted and result.image_id == built.image_id
    assert engine.images["executor/busybox:latest"] == built.image_id
    assert engine.calls[-1] == ("tag", "executor/busybox:latest")


def test_force_builds_even_when_an_image_with_the_same_inputs_exists(
    settings: Settings, engine: FakeImages
) -> None:
    """``--force`` never adopts, and the image it replaces is removed."""
    (old,) = build(settings, engine, ["busybox"])
    (new,) = build(settings, engine, ["busybox"], force=True)
    assert new.built and not new.adopted and new.image_id != old.image_id
    assert engine.calls[-1] == ("remove", old.image_id)


def test_a_python_built_on_another_debian_is_not_adopted(
    settings: Settings, engine: FakeImages
) -> None:
    """The parent image id is an input: after debian's name moves, python is built anew."""
    build(settings, engine)
    engine.images["executor/debian:bookworm"] = "sha256:another-debian"
    fresh = Settings(home=settings.home.parent / "fresh-home", images_dir=settings.images_dir)
    results = build(fresh, engine, ["python"])
    assert [(r.name, r.built, r.adopted) for r in results] == [
        ("debian", False, False),
        ("python", True, False),
    ]


def test_a_rebuild_removes_the_image_it_replaces_unless_it_is_in_use(
    settings: Settings, engine: FakeImages
) -> None:
    """A changed recipe rebuilds; the old image goes, or stays when a container uses it."""
    first = {r.name: r.image_id for r in build(settings, engine)}
    engine.in_use.add(first["busybox"])
    for name in ("busybox", "debian"):
        (settings.images_dir / name / "rootfs.sh").write_text(ROOTFS_RECIPE.format(name=f"{name}2"))
    events: list[BuildEvent] = []
    results = ImageBuilder(settings, engine, events.append).build()
    assert [r.name for r in results if r.built] == ["busybox", "debian", "python"]
    removed = [call[1] for call in engine.calls if call[0] == "remove"]
    assert removed == [first["python"], first["debian"]]  # dependents first, the base after
    cleanup = {e.image: e.message for e in events if e.step == "cleanup"}
    assert cleanup["busybox"].startswith(f"kept the replaced image {first['busybox'][:19]}")
    assert cleanup["debian"].startswith("removed the replaced image")


def test_a_failing_recipe_names_the_image_and_its_last_lines(
    settings: Settings, engine: FakeImages
) -> None:
    """A recipe that exits non-zero raises ImageError with the image and its output; no lock."""
    script = settings.images_dir / "busybox" / "rootfs.sh"
    script.write_text("echo fetching busybox-static\necho 'E: no mirror' >&2\nexit 3\n")
    with pytest.raises(ImageError) as caught:
        build(settings, engine, ["busybox"])
    assert "'busybox'" in str(caught.value) and "exited 3" in str(caught.value)
    assert "E: no mirror" in str(caught.value)
    assert engine.calls == [] and read_lock(settings.images_lock) == {}


def test_an_unknown_image_name_is_a_usage_error(settings: Settings, engine: FakeImages) -> None:
    """``images build nosuch`` says which images exist."""
    with pytest.raises(UsageError, match="busybox, debian, python"):
        build(settings, engine, ["nosuch"])


def test_progress_reports_each_image_and_step(settings: Settings, engine: FakeImages) -> None:
    """The progress sink hears which image is at which step, with elapsed seconds."""
    events: list[BuildEvent] = []
    fake: ImageEngine = engine
    ImageBuilder(settings, fake, events.append).build(["python"])
    steps = [(e.image, e.step) for e in events]
    assert ("debian", "rootfs") in steps and ("debian", "import") in steps
    assert ("python", "build") in steps and ("python", "done") in steps
    assert all(e.elapsed >= 0 for e in events)


def test_image_states_report_what_list_shows(settings: Settings, engine: FakeImages) -> None:
    """Before a build every image is missing (the on-demand ones say how to build them); after
    it each built one shows its engine id, up to date."""
    assert {s.name: s.status for s in image_states(settings, engine.image_id)} == {
        "busybox": "missing from the engine",
        "debian": "missing from the engine",
        "python": "missing from the engine",
        "node": "not built (on request: executor images build node)",
        "r": "not built (on request: executor images build r)",
        "dbt": "not built (on request: executor images build dbt)",
    }
    build(settings, engine)
    states = [
        s for s in image_states(settings, engine.image_id) if not CATALOGUE[s.name].on_request
    ]
    assert all(s.status == "up to date" and s.lock and s.lock.id == s.engine_id for s in states)


def test_on_demand_images_build_only_when_named_with_the_host_ca_bundle(
    settings: Settings, engine: FakeImages, tmp_path: Path
) -> None:
    """A plain build leaves node, r and dbt alone; naming dbt builds it on python (and its
    bases), its build context holding the host's CA bundle as ca-bundle.crt."""
    build(settings, engine)
    assert not {"executor/node:18", "executor/r:4", "executor/dbt:1.9"} & set(engine.images)
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    with_ca = dataclasses.replace(settings, task_network=TaskNetwork(ca_bundle=str(bundle)))
    results = build(with_ca, engine, ["dbt"])
    assert built_names(results) == ["dbt"]
    assert engine.contexts["executor/dbt:1.9"] == {
        "Dockerfile": b"FROM executor/python:3.11\n",
        "ca-bundle.crt": b"-----BEGIN CERTIFICATE-----\n",
    }
    build(settings, engine, ["node"])
    assert engine.contexts["executor/node:18"]["ca-bundle.crt"] == b""


# --- aliases and resolving ----------------------------------------------------------------------

LOCAL = {
    "executor/busybox:latest": "sha256:bb",
    "executor/debian:bookworm": "sha256:deb",
    "executor/python:3.11": "sha256:py",
}


def resolver(settings: Settings, images: dict[str, str] | None = None) -> ImageResolver:
    """A resolver over a fixed set of local images."""
    present = LOCAL if images is None else images
    return ImageResolver(settings, present.get)


def test_an_exact_local_reference_wins(settings: Settings) -> None:
    """A reference present in the engine resolves to itself, not to an alias."""
    resolved = resolver(settings, {**LOCAL, "python:3.13-slim": "sha256:real"}).resolve(
        "python:3.13-slim"
    )
    assert (resolved.ref_local, resolved.image_id, resolved.via) == (
        "python:3.13-slim",
        "sha256:real",
        "local",
    )


def test_a_reference_without_a_tag_means_latest(settings: Settings) -> None:
    """``myimage`` is looked up as ``myimage:latest``."""
    resolved = resolver(settings, {"myimage:latest": "sha256:m"}).resolve("myimage")
    assert resolved.ref_local == "myimage:latest" and resolved.image_id == "sha256:m"


@pytest.mark.parametrize(
    ("ref", "local"),
    [
        ("python:3.13-slim", "executor/python:3.11"),
        ("python", "executor/python:3.11"),
        ("ubuntu:latest", "executor/debian:bookworm"),
        ("ubuntu", "executor/debian:bookworm"),
        ("debian:12", "executor/debian:bookworm"),
        ("alpine:3.19", "executor/busybox:latest"),
        ("docker.io/library/busybox:1.36", "executor/busybox:latest"),
    ],
)
def test_kestra_default_images_map_to_ours(settings: Settings, ref: str, local: str) -> None:
    """Kestra's default images resolve to the local images on an offline host."""
    resolved = resolver(settings).resolve(ref)
    assert resolved.ref_requested == ref
    assert resolved.ref_local == local and resolved.image_id == LOCAL[local]
    assert resolved.via.startswith("alias ")


def test_a_user_alias_wins_over_the_builtin_one(settings: Settings) -> None:
    """``images alias python:3.13* executor/busybox:latest`` beats the built-in python alias."""
    add_alias(settings, "python:3.13*", "executor/busybox:latest")
    assert resolver(settings).resolve("python:3.13-slim").image_id == "sha256:bb"
    assert resolver(settings).resolve("python:3.12").image_id == "sha256:py"


def test_add_alias_replaces_a_pattern_and_puts_the_newest_first(settings: Settings) -> None:
    """Re-adding a pattern replaces its target; the newest alias is tried first."""
    add_alias(settings, "a:*", "x:1")
    add_alias(settings, "b:*", "y:1")
    add_alias(settings, "a:*", "z:1")
    text = settings.aliases_file.read_text()
    assert text.splitlines() == ["a:*: z:1", "b:*: y:1"]


def test_an_alias_whose_target_is_absent_is_skipped(settings: Settings) -> None:
    """When a matching alias's target is not built, the next matching alias is tried."""
    add_alias(settings, "python:*", "executor/not-built:1")
    assert resolver(settings).resolve("python:3.12").image_id == "sha256:py"


def test_a_bad_aliases_file_is_an_image_error(settings: Settings) -> None:
    """An aliases file that is not a mapping of strings is reported with its path."""
    settings.aliases_file.parent.mkdir(parents=True)
    settings.aliases_file.write_text("- just\n- a list\n")
    with pytest.raises(ImageError, match=r"aliases\.yaml"):
        resolver(settings)


def test_nothing_local_names_the_reference_the_alias_and_the_fix(settings: Settings) -> None:
    """The error names the reference, the alias it tried, and `executor images build`."""
    with pytest.raises(ImageError) as caught:
        resolver(settings, {}).resolve("python:3.13-slim")
    message = str(caught.value)
    assert "'python:3.13-slim'" in message
    assert "python:* -> executor/python:3.11" in message
    assert "executor images build" in message and "make images" in message


def test_if_not_present_pulls_when_nothing_local_fits(settings: Settings) -> None:
    """A reference with no local image and no alias is pulled under IF_NOT_PRESENT."""
    pulled: list[str] = []

    def pull(ref: str) -> str:
        pulled.append(ref)
        return "sha256:pulled"

    resolved = resolver(settings).resolve("ghcr.io/org/tool:1", pull=pull)
    assert pulled == ["ghcr.io/org/tool:1"] and resolved.via == "pulled"


def test_never_does_not_pull(settings: Settings) -> None:
    """Under NEVER the puller is not called and the error says so."""

    def pull(ref: str) -> str:
        raise AssertionError("must not pull")

    with pytest.raises(ImageError, match="NEVER"):
        resolver(settings).resolve("ghcr.io/org/tool:1", pull_policy="NEVER", pull=pull)


def test_always_pulls_even_when_present(settings: Settings) -> None:
    """Under ALWAYS a present image is pulled again."""
    resolved = resolver(settings).resolve(
        "executor/busybox:latest", pull_policy="ALWAYS", pull=lambda ref: "sha256:fresh"
    )
    assert resolved.image_id == "sha256:fresh" and resolved.via == "pulled"


def test_always_falls_back_to_local_images_when_the_pull_fails(settings: Settings) -> None:
    """On an offline host ALWAYS still runs: a failed pull falls back to the alias."""

    def pull(ref: str) -> str:
        raise TransientEngineError("pulling: dial tcp: lookup registry-1.docker.io")

    resolved = resolver(settings).resolve("python:3.13-slim", pull_policy="ALWAYS", pull=pull)
    assert resolved.image_id == "sha256:py"


def test_a_failed_pull_is_in_the_error(settings: Settings) -> None:
    """When nothing local fits and the pull fails, the error carries the pull's reason."""

    def pull(ref: str) -> str:
        raise ImageError("pull access denied")

    with pytest.raises(ImageError, match="pull access denied"):
        resolver(settings, {}).resolve("ghcr.io/org/tool:1", pull=pull)


def test_an_invalid_reference_is_refused_with_dockers_reason(settings: Settings) -> None:
    """``Python:3`` is not looked up, aliased or pulled: Docker would refuse the uppercase name."""
    pulled: list[str] = []

    def pull(ref: str) -> str:
        pulled.append(ref)
        return "sha256:pulled"

    with pytest.raises(ImageError, match=r"'Python:3'.*must be lowercase"):
        resolver(settings).resolve("Python:3", pull=pull)
    assert pulled == []


def test_a_registry_port_reference_is_looked_up_with_its_tag(settings: Settings) -> None:
    """``127.0.0.1:5055/team/bb`` means ``:latest`` there; the port is not taken for a tag."""
    present = {"127.0.0.1:5055/team/bb:latest": "sha256:bb5055"}
    resolved = resolver(settings, present).resolve("127.0.0.1:5055/team/bb", "NEVER")
    assert (resolved.ref_local, resolved.image_id) == (
        "127.0.0.1:5055/team/bb:latest",
        "sha256:bb5055",
    )


DIGEST = "sha256:" + "5e" * 32


def test_a_digest_reference_resolves_to_the_image_holding_it_and_records_the_digest(
    settings: Settings,
) -> None:
    """``busybox@sha256:...`` is looked up by its digest, and the digest is kept for the run."""
    asked: list[str] = []

    def lookup(ref: str) -> str | None:
        asked.append(ref)
        return "sha256:pinned" if ref.endswith(f"@{DIGEST}") else LOCAL.get(ref)

    images = ImageResolver(settings, lookup)
    resolved = images.resolve(f"busybox@{DIGEST}", "NEVER")
    assert (resolved.image_id, resolved.via, resolved.digest) == ("sha256:pinned", "local", DIGEST)
    tagged = images.resolve(f"busybox:1.36@{DIGEST}", "NEVER")
    assert tagged.ref_local == f"busybox:1.36@{DIGEST}" and tagged.digest == DIGEST
    assert asked == [f"busybox@{DIGEST}", f"busybox:1.36@{DIGEST}"]
    assert images.resolve("busybox:1.36").digest is None


def test_a_digest_reference_never_falls_back_to_an_alias(settings: Settings) -> None:
    """A digest pins content: an alias matching the name is not used, and the error says why."""
    add_alias(settings, "busybox*", "executor/busybox:latest")
    with pytest.raises(ImageError, match="no local image holds that digest") as caught:
        resolver(settings).resolve(f"busybox@{DIGEST}", "NEVER")
    assert "images alias" not in str(caught.value)


def test_a_pulled_digest_reference_records_the_digest(settings: Settings) -> None:
    """When a digest reference is pulled, the resolved image still carries the digest."""
    resolved = resolver(settings, {}).resolve(
        f"ghcr.io/org/tool@{DIGEST}", pull=lambda r: "sha256:p"
    )
    assert (resolved.via, resolved.digest) == ("pulled", DIGEST)


def test_an_unknown_pull_policy_is_an_error(settings: Settings) -> None:
    """A misspelt pull policy is rejected, naming the valid ones."""
    with pytest.raises(ImageError, match="IF_NOT_PRESENT"):
        resolver(settings).resolve("busybox", pull_policy="SOMETIMES")


@given(st.from_regex(r"[a-z0-9]+(/[a-z0-9]+)?(:[a-z0-9][a-z0-9.]*)?", fullmatch=True))
def test_normalizing_a_reference_is_idempotent_and_always_tags(ref: str) -> None:
    """A normalized reference always has a tag and normalizing it again changes nothing."""
    once = normalize_reference(ref)
    assert normalize_reference(once) == once
    assert ":" in once.rsplit("/", 1)[-1]


def test_lock_file_is_json_an_outsider_can_read(settings: Settings, engine: FakeImages) -> None:
    """The lock is plain JSON: {name: {ref, id, input_hash, built_at}}."""
    build(settings, engine, ["busybox"])
    raw = json.loads(settings.images_lock.read_text())
    assert set(raw["busybox"]) == {"ref", "id", "input_hash", "built_at"}
    assert raw["busybox"]["ref"] == "executor/busybox:latest"


# --- the deploy images (built only on request, from the repository) ------------------------------


@pytest.fixture
def deploy_settings(settings: Settings) -> Settings:
    """The small recipe tree plus an ``executor`` recipe whose context.sh records its arguments,
    and a repository holding the sources it names."""
    images = settings.images_dir
    (images / "executor").mkdir()
    (images / "executor" / "Dockerfile").write_text("FROM executor/python:3.11\n")
    (images / "executor" / "context.sh").write_text(
        'set -e\necho "context for $2" >"$1/made-by-context"\ncp "$2/pyproject.toml" "$1/"\n'
    )
    repository = images.parent
    (repository / "pyproject.toml").write_text("[project]\nname = 'executor'\n")
    (repository / "README.md").write_text("readme\n")
    (repository / "executor").mkdir()
    (repository / "executor" / "app.py").write_text("x = 1\n")
    return settings


class ContextRecordingImages(FakeImages):
    """A fake engine that keeps a copy of each Dockerfile build's context."""

    def __init__(self) -> None:
        super().__init__()
        self.contexts: dict[str, dict[str, str]] = {}

    def build_dockerfile(
        self, context: Path, ref: str, on_line: Callable[[str], None], labels: Mapping[str, str]
    ) -> str:
        self.contexts[ref] = {
            p.relative_to(context).as_posix(): p.read_text()
            for p in context.rglob("*")
            if p.is_file()
        }
        return super().build_dockerfile(context, ref, on_line, labels)


def test_a_bare_build_leaves_the_deploy_images_out(deploy_settings: Settings) -> None:
    """`images build` with no name builds busybox, debian and python, not the deploy images;
    `images list` shows a deploy image as built on request until it was built."""
    engine = FakeImages()
    assert [r.name for r in build(deploy_settings, engine)] == list(DEFAULT_IMAGES)

    def status() -> str:
        states = image_states(deploy_settings, engine.image_id)
        return next(s.status for s in states if s.name == "executor")

    assert status() == "not built (on request: executor images build executor)"
    build(deploy_settings, engine, ["executor"])
    assert status() == "up to date"


def test_the_executor_image_context_is_made_by_its_script_from_the_repository(
    deploy_settings: Settings,
) -> None:
    """context.sh gets a copy of the recipe and the repository; the recipe stays untouched."""
    engine = ContextRecordingImages()
    build(deploy_settings, engine, ["executor"])
    context = engine.contexts["executor/executor:latest"]
    repository = deploy_settings.images_dir.parent
    assert context["made-by-context"] == f"context for {repository}\n".encode()
    expected = {"Dockerfile", "context.sh", "made-by-context", "pyproject.toml", "ca-bundle.crt"}
    assert set(context) == expected
    assert not (deploy_settings.images_dir / "executor" / "made-by-context").exists()


def test_the_executor_image_hash_follows_its_sources_not_their_caches(
    deploy_settings: Settings,
) -> None:
    """A changed source file changes the executor image's input hash; bytecode caches do not."""
    repository = deploy_settings.images_dir.parent
    before = input_hash("executor", deploy_settings.images_dir)
    cache = repository / "executor" / "__pycache__"
    cache.mkdir()
    (cache / "app.cpython-311.pyc").write_bytes(b"\0")
    assert input_hash("executor", deploy_settings.images_dir) == before
    (repository / "executor" / "app.py").write_text("x = 2\n")
    assert input_hash("executor", deploy_settings.images_dir) != before


def test_a_failing_context_script_is_an_image_error_with_its_output(
    deploy_settings: Settings,
) -> None:
    """context.sh failing stops the build with its last lines, and nothing is built."""
    (deploy_settings.images_dir / "executor" / "context.sh").write_text(
        "echo no index reachable >&2\nexit 7\n"
    )
    engine = ContextRecordingImages()
    build(deploy_settings, engine, ["python"])
    with pytest.raises(ImageError, match=r"(?s)exited 7.*no index reachable"):
        build(deploy_settings, engine, ["executor"])
    assert "executor/executor:latest" not in engine.images


def test_deploy_images_without_their_sources_say_where_to_build_them(settings: Settings) -> None:
    """Outside a checkout (no pyproject.toml beside images/), the error says what is missing."""
    (settings.images_dir / "executor").mkdir()
    (settings.images_dir / "executor" / "Dockerfile").write_text("FROM executor/python:3.11\n")
    with pytest.raises(ImageError, match=r"pyproject\.toml does not exist"):
        input_hash("executor", settings.images_dir)
