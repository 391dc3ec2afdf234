"""Images without a registry: the catalogue, building it, the lock file, and resolving references.

The engine starts with no images and no registry answers, so the executor builds its own from
recipes under ``images/`` and records each one's exact id in a lock file. A flow names ordinary
references (``python:3.13-slim``); :class:`ImageResolver` finds a local image for them, through an
alias table when the exact reference is not there.

Docker is never imported here: building goes through :class:`ImageEngine` (implemented by
``executor.engine.docker.images.DockerImages``) and resolving through a ``lookup`` callable.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import yaml

from executor.engine.api import ImageStore
from executor.engine.labels import INPUT_HASH
from executor.engine.reference import parse as parse_reference
from executor.errors import EngineError, EngineUnavailable, ImageError, UsageError
from executor.settings import Settings

HOW_TO_BUILD = "run `executor images build` (or `make images`)"
ROOTFS_CHANGES = (
    'CMD ["/bin/sh"]',
    "WORKDIR /workspace",
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
)
PULL_POLICIES = ("ALWAYS", "IF_NOT_PRESENT", "NEVER")
# Kestra's default images, mapped to ours for hosts without a registry.
BUILTIN_ALIASES: tuple[tuple[str, str], ...] = (
    ("python", "executor/python:3.11"),
    ("python:*", "executor/python:3.11"),
    ("ubuntu", "executor/debian:bookworm"),
    ("ubuntu:*", "executor/debian:bookworm"),
    ("debian", "executor/debian:bookworm"),
    ("debian:*", "executor/debian:bookworm"),
    ("busybox", "executor/busybox:latest"),
    ("busybox:*", "executor/busybox:latest"),
    ("alpine", "executor/busybox:latest"),
    ("alpine:*", "executor/busybox:latest"),
    ("node", "executor/node:18"),
    ("node:*", "executor/node:18"),
    ("r-base", "executor/r:4"),
    ("r-base:*", "executor/r:4"),
    ("ghcr.io/kestra-io/dbt", "executor/dbt:1.9"),
    ("ghcr.io/kestra-io/dbt:*", "executor/dbt:1.9"),
    ("ghcr.io/kestra-io/dbt-duckdb", "executor/dbt:1.9"),
    ("ghcr.io/kestra-io/dbt-duckdb:*", "executor/dbt:1.9"),
    ("ghcr.io/kestra-io/dbt-postgres", "executor/dbt:1.9"),
    ("ghcr.io/kestra-io/dbt-postgres:*", "executor/dbt:1.9"),
)
_TAIL_LINES = 15


# --- the catalogue ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageSpec:
    """One image the executor can build.

    Attributes:
        name: the catalogue name, also the recipe's directory under ``images/``.
        ref: the local reference the image gets.
        kind: ``rootfs`` (``rootfs.sh OUT_DIR``, then imported) or ``dockerfile``. A Dockerfile
            recipe with a ``context.sh`` gets its build context made by it (``context.sh
            CONTEXT_DIR REPOSITORY``, the recipe already copied into CONTEXT_DIR).
        base: the catalogue name of the image a Dockerfile builds ``FROM``.
        on_request: built only when named (``executor images build node``), never by a bare
            ``build``: the deploy images, and heavy images few flows need.
        sources: files and directories of the repository (``images/``'s parent) that go into
            the image through ``context.sh``: the input hash covers them.
    """

    name: str
    ref: str
    kind: Literal["rootfs", "dockerfile"]
    base: str | None = None
    on_request: bool = False
    sources: tuple[str, ...] = ()

    def recipe_dir(self, images_dir: Path) -> Path:
        """The directory holding this image's recipe."""
        return images_dir / self.name


CATALOGUE: Mapping[str, ImageSpec] = {
    spec.name: spec
    for spec in (
        ImageSpec("busybox", "executor/busybox:latest", "rootfs"),
        ImageSpec("debian", "executor/debian:bookworm", "rootfs"),
        ImageSpec("python", "executor/python:3.11", "dockerfile", base="debian"),
        # the deploy images (compose.yaml, README "Deploy"): `make deploy-images`
        ImageSpec(
            "executor",
            "executor/executor:latest",
            "dockerfile",
            base="python",
            on_request=True,
            sources=("pyproject.toml", "README.md", "executor"),
        ),
        ImageSpec("postgres", "executor/postgres:15", "dockerfile", base="debian", on_request=True),
        ImageSpec("redis", "executor/redis:7", "dockerfile", base="debian", on_request=True),
        # script languages and CLIs few flows need
        ImageSpec("node", "executor/node:18", "dockerfile", base="debian", on_request=True),
        ImageSpec("r", "executor/r:4", "dockerfile", base="debian", on_request=True),
        ImageSpec("dbt", "executor/dbt:1.9", "dockerfile", base="python", on_request=True),
    )
}
DEFAULT_IMAGES = tuple(name for name, spec in CATALOGUE.items() if not spec.on_request)
# what a source tree holds that never goes into an image
_NOT_SOURCES = ("__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache")

BUILD_CA_BUNDLE = "ca-bundle.crt"
"""The host's CA bundle as a Dockerfile build finds it in its context (empty when none)."""


def catalogue_spec(name: str) -> ImageSpec:
    """The catalogue entry called ``name``.

    Raises:
        UsageError: no image has that name.
    """
    try:
        return CATALOGUE[name]
    except KeyError:
        known = ", ".join(CATALOGUE)
        raise UsageError(f"unknown image {name!r}; known images: {known}") from None


def input_hash(name: str, images_dir: Path) -> str:
    """sha256 over every file of the image's recipe (paths and bytes), of its sources, and its
    base's input hash.

    Raises:
        ImageError: the recipe directory is missing or empty, or a source is missing.
    """
    spec = catalogue_spec(name)
    recipe = spec.recipe_dir(images_dir)
    files = sorted(p for p in recipe.rglob("*") if p.is_file()) if recipe.is_dir() else []
    if not files:
        raise ImageError(f"no recipe for image {name!r} in {recipe}")
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(recipe).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    for path, shown in _source_files(spec, images_dir.parent):
        digest.update(f"source:{shown}".encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    if spec.base:
        digest.update(input_hash(spec.base, images_dir).encode())
    return "sha256:" + digest.hexdigest()


def _source_files(spec: ImageSpec, repository: Path) -> list[tuple[Path, str]]:
    """The files of ``spec.sources`` under ``repository`` (path, path as shown), sorted.

    Raises:
        ImageError: a source does not exist (images with sources build from the repository).
    """
    found: list[tuple[Path, str]] = []
    for source in spec.sources:
        top = repository / source
        if not top.exists():
            raise ImageError(
                f"image {spec.name!r} is built from the repository, and {top} does not exist: "
                "build it from a checkout of the executor (`make deploy-images`)"
            )
        paths = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        for path in paths:
            shown = path.relative_to(repository).as_posix()
            if not any(part in _NOT_SOURCES for part in path.parts) and path.suffix != ".pyc":
                found.append((path, shown))
    return found


def build_inputs_hash(spec: ImageSpec, recipe_hash: str, parent_id: str | None) -> str:
    """sha256 over everything that makes the image: recipe, build arguments, parent image id.

    The recipe hash is :func:`input_hash`; the build arguments are the changes an import applies
    (a Dockerfile build passes none); the parent is the exact image a Dockerfile builds FROM, so
    an image built on another base is never adopted. The catalogue name is included too, so one
    image never stands for two names. Built images carry it as a label.
    """
    arguments = ROOTFS_CHANGES if spec.kind == "rootfs" else ()
    digest = hashlib.sha256()
    for part in (spec.name, spec.kind, recipe_hash, *arguments, parent_id or "-"):
        digest.update(part.encode() + b"\0")
    return "sha256:" + digest.hexdigest()


# --- the lock file ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LockEntry:
    """What the lock records about one built image."""

    ref: str
    id: str
    input_hash: str
    built_at: str


def read_lock(path: Path) -> dict[str, LockEntry]:
    """The lock's entries by image name; empty when the file does not exist.

    Raises:
        ImageError: the file is not a lock file.
    """
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text())
        return {name: LockEntry(**fields) for name, fields in raw.items()}
    except (ValueError, TypeError, AttributeError) as exc:
        raise ImageError(
            f"{path} is not a valid image lock ({exc}); delete it and {HOW_TO_BUILD}"
        ) from exc


def write_lock(path: Path, entries: Mapping[str, LockEntry]) -> None:
    """Write the lock atomically: a temporary file beside it, then ``os.replace``."""
    text = json.dumps({name: asdict(e) for name, e in sorted(entries.items())}, indent=2) + "\n"
    _write_atomically(path, text)


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        Path(temp).replace(path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


# --- building -----------------------------------------------------------------------------------


ImageEngine = ImageStore
"""The engine operations a build needs (``engine.api.ImageStore``; Docker's ``DockerImages``)."""


@dataclass(frozen=True)
class BuildEvent:
    """A progress report: which image, which step, seconds since that image's build began.

    ``step`` is one of ``check``, ``adopt``, ``rootfs``, ``context``, ``import``, ``build``,
    ``done``, ``up-to-date``, ``cleanup``, or ``output`` for a raw line of a recipe's or
    Docker's output.
    """

    image: str
    step: str
    message: str
    elapsed: float


@dataclass(frozen=True)
class BuildResult:
    """What ``build`` did for one image.

    ``adopted`` means a local image with the same inputs was recorded instead of building one
    (``built`` is then false).
    """

    name: str
    ref: str
    image_id: str
    built: bool
    reason: str
    seconds: float
    adopted: bool = False


@dataclass(frozen=True)
class ImageState:
    """One catalogue image as the engine and the lock see it (for ``images list``)."""

    name: str
    ref: str
    engine_id: str | None
    lock: LockEntry | None
    input_hash: str
    stale_reason: str | None

    @property
    def status(self) -> str:
        """``up to date``, or why the image would be built."""
        return self.stale_reason or "up to date"


ProgressSink = Callable[[BuildEvent], None]


def stale_reason(engine_id: str | None, lock: LockEntry | None, current_hash: str) -> str | None:
    """Why an image needs building, or ``None`` when it is up to date."""
    if engine_id is None:
        return "missing from the engine"
    if lock is None:
        return "no lock entry"
    if lock.input_hash != current_hash:
        return "recipe changed"
    if lock.id != engine_id:
        return "the engine's image differs from the locked one"
    return None


def image_states(settings: Settings, lookup: Callable[[str], str | None]) -> list[ImageState]:
    """The state of every catalogue image, in catalogue order; an image built only on request
    is shown once it was built (the engine or the lock has it)."""
    lock = read_lock(settings.images_lock)
    states = []
    for spec in CATALOGUE.values():
        if spec.on_request and not spec.recipe_dir(settings.images_dir).is_dir():
            continue  # an images directory of one's own, without this recipe
        engine_id = lookup(spec.ref)
        current = input_hash(spec.name, settings.images_dir)
        reason = stale_reason(engine_id, lock.get(spec.name), current)
        if engine_id is None and spec.on_request:
            reason = f"not built (on request: executor images build {spec.name})"
        states.append(
            ImageState(spec.name, spec.ref, engine_id, lock.get(spec.name), current, reason)
        )
    return states


def build_plan(names: Iterable[str]) -> list[tuple[ImageSpec, bool]]:
    """Images to consider, bases first, each with whether it was asked for (when none: all but
    the images built only on request)."""
    requested = {catalogue_spec(name).name for name in names} or set(DEFAULT_IMAGES)
    needed = set(requested)
    for name in requested:
        base = CATALOGUE[name].base
        while base:
            needed.add(base)
            base = CATALOGUE[base].base
    ordered = _bases_first(needed)
    return [(CATALOGUE[name], name in requested) for name in ordered]


def _bases_first(names: set[str]) -> list[str]:
    ordered: list[str] = []

    def visit(name: str) -> None:
        base = CATALOGUE[name].base
        if base and base not in ordered:
            visit(base)
        if name not in ordered:
            ordered.append(name)

    for name in CATALOGUE:
        if name in names:
            visit(name)
    return ordered


class ImageBuilder:
    """Builds catalogue images that are missing or stale, and records them in the lock.

    Every built image carries the label ``io.executor.input-hash``: a hash of everything that
    makes it (:func:`build_inputs_hash`). Before building, an image already carrying the same
    hash is adopted instead, so a fresh EXECUTOR_HOME does not rebuild what the engine has. An
    image whose name is taken over by a new one is removed when nothing else uses it.
    """

    def __init__(
        self, settings: Settings, engine: ImageEngine, progress: ProgressSink | None = None
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._progress = progress or (lambda event: None)

    def build(self, names: Sequence[str] = (), force: bool = False) -> list[BuildResult]:
        """Build the named images (all when none), their bases first.

        An asked-for image is built when it is missing from the engine, has no lock entry, its
        input hash differs from the lock's, the engine's id differs from the locked one, its base
        changed in this run, or ``force``. A base that was not asked for is built only when the
        engine lacks it. Unless ``force``, a local image with the same inputs is adopted instead
        of building. Afterwards, each image whose name went to a new image is removed, unless a
        container or another name still uses it.

        Returns:
            One result per image considered, bases first.

        Raises:
            UsageError: an unknown name.
            ImageError: a recipe or a build failed.
            EngineError: the engine failed.
        """
        results: list[BuildResult] = []
        changed: set[str] = set()
        replaced: list[tuple[str, str]] = []
        for spec, requested in build_plan(names):
            reason = self._reason(spec, requested, force, changed)
            if not reason:
                results.append(self._up_to_date(spec))
                continue
            previous = self._engine.image_id(spec.ref)
            result = self._build_one(spec, reason, force)
            if result.image_id != previous:
                changed.add(spec.name)
                if previous:
                    replaced.append((spec.name, previous))
            results.append(result)
        self._remove_replaced(replaced)
        return results

    def _reason(self, spec: ImageSpec, requested: bool, force: bool, changed: set[str]) -> str:
        engine_id = self._engine.image_id(spec.ref)
        if not requested:
            return "" if engine_id else "base image missing from the engine"
        if force:
            return "forced"
        if spec.base in changed:
            return f"base {spec.base} changed"
        current = input_hash(spec.name, self._settings.images_dir)
        lock = read_lock(self._settings.images_lock).get(spec.name)
        return stale_reason(engine_id, lock, current) or ""

    def _up_to_date(self, spec: ImageSpec) -> BuildResult:
        lock = read_lock(self._settings.images_lock).get(spec.name)
        image_id = self._engine.image_id(spec.ref) or ""
        note = "up to date" if lock else "present in the engine (not built by this lock)"
        self._emit(spec.name, "up-to-date", f"{spec.ref} {note}", time.monotonic())
        return BuildResult(spec.name, spec.ref, image_id, False, note, 0.0)

    def _build_one(self, spec: ImageSpec, reason: str, force: bool) -> BuildResult:
        started = time.monotonic()
        current = input_hash(spec.name, self._settings.images_dir)
        inputs = build_inputs_hash(spec, current, self._parent_id(spec))
        adopted = None if force else self._adoptable(spec, inputs)
        if adopted:
            return self._adopt(spec, adopted, current, reason, started)
        self._emit(spec.name, "check", f"building {spec.ref}: {reason}", started)
        labels = {INPUT_HASH: inputs}
        if spec.kind == "rootfs":
            image_id = self._build_rootfs(spec, labels, started)
        else:
            image_id = self._build_dockerfile(spec, labels, started)
        self._record(spec, image_id, current)
        seconds = time.monotonic() - started
        self._emit(spec.name, "done", f"{spec.ref} is {image_id[:19]}", started)
        return BuildResult(spec.name, spec.ref, image_id, True, reason, seconds)

    def _parent_id(self, spec: ImageSpec) -> str | None:
        if not spec.base:
            return None
        parent = self._engine.image_id(CATALOGUE[spec.base].ref)
        if parent is None:
            raise ImageError(f"cannot build {spec.name}: its base {spec.base} is missing")
        return parent

    def _adoptable(self, spec: ImageSpec, inputs: str) -> str | None:
        """A local image built from exactly these inputs; the one ``spec.ref`` names, if it is."""
        found = self._engine.images_labelled(INPUT_HASH, inputs)
        current = self._engine.image_id(spec.ref)
        return current if current in found else next(iter(found), None)

    def _adopt(
        self, spec: ImageSpec, image_id: str, current: str, reason: str, started: float
    ) -> BuildResult:
        if self._engine.image_id(spec.ref) != image_id:
            self._engine.tag(image_id, spec.ref)
        self._record(spec, image_id, current)
        note = f"adopted {image_id[:19]}, a local image with the same inputs ({reason})"
        self._emit(spec.name, "adopt", f"{spec.ref}: {note}", started)
        seconds = time.monotonic() - started
        return BuildResult(spec.name, spec.ref, image_id, False, note, seconds, adopted=True)

    def _remove_replaced(self, replaced: Sequence[tuple[str, str]]) -> None:
        # Dependents were replaced after their bases: removing them first frees the old base.
        for name, image_id in reversed(replaced):
            started = time.monotonic()
            if self._engine.remove_unused(image_id):
                self._emit(name, "cleanup", f"removed the replaced image {image_id[:19]}", started)
            else:
                why = "a container or another name still uses it"
                self._emit(
                    name, "cleanup", f"kept the replaced image {image_id[:19]}: {why}", started
                )

    def _build_rootfs(self, spec: ImageSpec, labels: Mapping[str, str], started: float) -> str:
        script = spec.recipe_dir(self._settings.images_dir) / "rootfs.sh"
        with tempfile.TemporaryDirectory(prefix=f"executor-{spec.name}-") as temp:
            rootfs = Path(temp) / "rootfs"
            self._emit(spec.name, "rootfs", f"running {script.name}", started)
            run_rootfs_recipe(spec.name, script, rootfs, self._sink(spec.name, started))
            self._emit(spec.name, "import", f"importing the root filesystem as {spec.ref}", started)
            return self._engine.import_rootfs(rootfs, spec.ref, ROOTFS_CHANGES, labels)

    def _build_dockerfile(self, spec: ImageSpec, labels: Mapping[str, str], started: float) -> str:
        recipe = spec.recipe_dir(self._settings.images_dir)
        sink = self._sink(spec.name, started)

        def on_line(line: str) -> None:
            if line.startswith("Step "):
                self._emit(spec.name, "build", line, started)
            else:
                sink(line)

        with tempfile.TemporaryDirectory(prefix=f"executor-{spec.name}-context-") as temp:
            context = Path(temp) / "context"
            shutil.copytree(recipe, context)
            bundle = self._settings.task_network.ca_bundle
            # What task containers get (see task_network): pip or npm in a build reach the
            # registries through a TLS-intercepting proxy too. Not part of the input hash.
            (context / BUILD_CA_BUNDLE).write_bytes(Path(bundle).read_bytes() if bundle else b"")
            script = recipe / "context.sh"
            if script.is_file():
                repository = self._settings.images_dir.parent
                self._emit(spec.name, "context", f"running {script.name}", started)
                run_recipe_script(spec.name, script, [context, repository], sink)
            self._emit(spec.name, "build", f"docker build {recipe}", started)
            return self._engine.build_dockerfile(context, spec.ref, on_line, labels)

    def _record(self, spec: ImageSpec, image_id: str, current_hash: str) -> None:
        # Re-read just before writing: another build may have recorded a different image meanwhile.
        entries = read_lock(self._settings.images_lock)
        built_at = datetime.now(UTC).isoformat(timespec="seconds")
        entries[spec.name] = LockEntry(spec.ref, image_id, current_hash, built_at)
        write_lock(self._settings.images_lock, entries)

    def _sink(self, image: str, started: float) -> Callable[[str], None]:
        return lambda line: self._emit(image, "output", line, started)

    def _emit(self, image: str, step: str, message: str, started: float) -> None:
        self._progress(BuildEvent(image, step, message, time.monotonic() - started))


def build(
    settings: Settings,
    engine: ImageEngine,
    names: Sequence[str] = (),
    force: bool = False,
    progress: ProgressSink | None = None,
) -> list[BuildResult]:
    """Build missing or stale catalogue images; see :meth:`ImageBuilder.build`."""
    return ImageBuilder(settings, engine, progress).build(names, force)


def run_rootfs_recipe(
    name: str, script: Path, out_dir: Path, on_line: Callable[[str], None]
) -> None:
    """Run ``bash script out_dir``, passing each output line to ``on_line``.

    Raises:
        ImageError: the recipe failed; names the image and carries its last output lines.
    """
    run_recipe_script(name, script, [out_dir], on_line)


def run_recipe_script(
    name: str, script: Path, args: Sequence[Path], on_line: Callable[[str], None]
) -> None:
    """Run ``bash script ARGS...``, passing each output line to ``on_line``.

    Raises:
        ImageError: the script failed; names the image and carries its last output lines.
    """
    if not script.is_file():
        raise ImageError(f"no recipe for image {name!r}: {script} does not exist")
    tail: deque[str] = deque(maxlen=_TAIL_LINES)
    with subprocess.Popen(
        ["bash", str(script), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            tail.append(line.rstrip())
            on_line(line.rstrip())
    if process.returncode != 0:
        raise ImageError(_recipe_failure(name, script, process.returncode, list(tail)))


def _recipe_failure(name: str, script: Path, code: int, tail: list[str]) -> str:
    hint = "" if os.geteuid() == 0 else " (image recipes need root: try `sudo make images`)"
    shown = "\n  ".join(tail) if tail else "(no output)"
    return f"building image {name!r}: {script} exited {code}{hint}; last lines:\n  {shown}"


# --- aliases and resolving ----------------------------------------------------------------------


def normalize_reference(ref: str) -> str:
    """``ref`` in Docker's normal form: ``:latest`` added when it names no tag and no digest.

    Raises:
        ImageError: ``ref`` is empty or not a valid reference.
    """
    return str(parse_reference(ref))


def _match_candidates(ref: str) -> list[str]:
    """The forms of ``ref`` an alias pattern is tried against (as written, tagged, short)."""
    written, parsed = ref.strip(), parse_reference(ref)
    short = parsed.familiar()
    forms = [written, str(parsed), str(short)]
    if written != str(parsed):  # no tag written: ``docker.io/library/x`` still matches ``x``
        forms.append(short.repository)
    return list(dict.fromkeys(forms))


def load_user_aliases(path: Path) -> list[tuple[str, str]]:
    """The user's aliases (pattern, target) in file order; none when the file is missing.

    Raises:
        ImageError: the file is not a YAML mapping of strings to strings.
    """
    if not path.exists():
        return []
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ImageError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        raise ImageError(f"{path} must map image patterns to image references (strings)")
    return list(raw.items())


def add_alias(settings: Settings, pattern: str, target: str) -> None:
    """Add (or replace) a user alias; it is tried before older user aliases and the built-ins.

    Raises:
        UsageError: an empty pattern, or a target that is a pattern or empty.
        ImageError: the existing aliases file is invalid.
    """
    pattern, target = pattern.strip(), target.strip()
    if not pattern or not target or any(c in target for c in "*?["):
        raise UsageError("an alias needs a pattern and a plain target reference")
    existing = [(p, t) for p, t in load_user_aliases(settings.aliases_file) if p != pattern]
    aliases = dict([(pattern, target), *existing])
    _write_atomically(settings.aliases_file, yaml.safe_dump(aliases, sort_keys=False))


def all_aliases(settings: Settings) -> list[tuple[str, str]]:
    """User aliases, then the built-in ones: the order :class:`ImageResolver` tries them in."""
    return load_user_aliases(settings.aliases_file) + list(BUILTIN_ALIASES)


@dataclass(frozen=True)
class ResolvedImage:
    """A reference as the flow wrote it, and the local image that will run it.

    Attributes:
        ref_requested: the reference as written.
        ref_local: the local reference used (the exact one, an alias target, or the pulled one).
        image_id: the engine's image id, which a run records.
        via: how it was found: ``local``, ``alias <pattern>`` or ``pulled``.
        digest: the ``sha256:...`` digest the reference pins (or a pull by tag found), which a
            run records beside the id; ``None`` for a local image named by tag.
    """

    ref_requested: str
    ref_local: str
    image_id: str
    via: str = "local"
    digest: str | None = None


class ImageResolver:
    """Finds a local image for a reference: exactly, through an alias, or by pulling."""

    def __init__(self, settings: Settings, lookup: Callable[[str], str | None]) -> None:
        """Read the alias table now; ``lookup`` gives a local image id for a reference, or None.

        Raises:
            ImageError: the user's aliases file is invalid.
        """
        self._aliases = all_aliases(settings)
        self._lookup = lookup

    def resolve(
        self,
        ref: str,
        pull_policy: str = "IF_NOT_PRESENT",
        pull: Callable[[str], str] | None = None,
    ) -> ResolvedImage:
        """Resolve ``ref`` to a local image.

        Order: the exact reference when present (a tagless one means ``:latest``); else the first
        matching alias whose target is present; else a pull, unless the policy is ``NEVER`` or no
        ``pull`` is given. With ``ALWAYS`` and a ``pull``, the pull comes first, and when it fails
        (an offline host) the local image or an alias is used instead. A reference with a digest
        pins exact content, so it resolves only to the image holding that digest, never to an
        alias.

        Args:
            ref: the image reference the flow names.
            pull_policy: ``ALWAYS``, ``IF_NOT_PRESENT`` or ``NEVER``.
            pull: pulls a reference and returns its id; ``None`` when no registry is used.

        Raises:
            ImageError: ``ref`` is invalid, or nothing local fits and no pull succeeded; the
                message names the reference, the aliases tried and how to build the local images.
        """
        policy = _check_policy(pull_policy)
        parsed = parse_reference(ref)
        local, digest = str(parsed), parsed.digest
        pull_error: str | None = None
        if policy == "ALWAYS" and pull is not None:
            pulled, pull_error = _try_pull(pull, ref)
            if pulled:
                return ResolvedImage(ref, local, pulled, "pulled", digest)
        found = self._local(ref, local, digest)
        if found:
            return found
        if policy != "NEVER" and pull is not None and pull_error is None:
            pulled, pull_error = _try_pull(pull, ref)
            if pulled:
                return ResolvedImage(ref, local, pulled, "pulled", digest)
        raise ImageError(self._not_found(ref, policy, pull is not None, pull_error))

    def _local(self, ref: str, local: str, digest: str | None) -> ResolvedImage | None:
        image_id = self._lookup(local)
        if image_id:
            return ResolvedImage(ref, local, image_id, digest=digest)
        if digest:
            return None
        for pattern, target in self._matching(ref):
            image_id = self._lookup(normalize_reference(target))
            if image_id:
                return ResolvedImage(ref, normalize_reference(target), image_id, f"alias {pattern}")
        return None

    def _matching(self, ref: str) -> Iterator[tuple[str, str]]:
        forms = _match_candidates(ref)
        for pattern, target in self._aliases:
            if any(fnmatch.fnmatchcase(form, pattern) for form in forms):
                yield pattern, target

    def _not_found(self, ref: str, policy: str, can_pull: bool, pull_error: str | None) -> str:
        if pull_error:
            pulling = f"; pulling failed: {pull_error}"
        elif policy == "NEVER" or not can_pull:
            pulling = f"; not pulled (pull policy {policy}{'' if can_pull else ', no registry'})"
        else:
            pulling = ""
        if parse_reference(ref).digest:
            return (
                f"image {ref!r} is not available locally: no local image holds that digest "
                f"(aliases are not used for a digest, which pins exact content){pulling}; "
                "only a pull from a registry records a digest, so name the image by tag to use "
                "a local or aliased one"
            )
        tried = [f"alias {p} -> {t} (not built{_build_hint(t)})" for p, t in self._matching(ref)]
        aliases = "; tried " + ", ".join(tried) if tried else "; no alias matches it"
        return (
            f"image {ref!r} is not available locally{aliases}{pulling}; {HOW_TO_BUILD}, "
            "or map it to a local image with `executor images alias REF TARGET`"
        )


def _build_hint(target: str) -> str:
    """How to build an alias target that is an on-demand catalogue image (else nothing)."""
    wanted = normalize_reference(target)
    for spec in CATALOGUE.values():
        if spec.on_request and normalize_reference(spec.ref) == wanted:
            return f": run `executor images build {spec.name}`"
    return ""


def _check_policy(pull_policy: str) -> str:
    policy = pull_policy.strip().upper()
    if policy not in PULL_POLICIES:
        raise ImageError(f"unknown pull policy {pull_policy!r}; use one of {PULL_POLICIES}")
    return policy


def _try_pull(pull: Callable[[str], str], ref: str) -> tuple[str | None, str | None]:
    """Pull ``ref``: its id, or the reason it failed (offline hosts fail here)."""
    try:
        return pull(ref), None
    except EngineUnavailable:
        raise
    except (ImageError, EngineError) as exc:
        return None, str(exc)
