"""The WorkingDirectory cache: files kept between executions under ``$EXECUTOR_HOME/cache``.

One entry per (namespace, flow, task): ``<namespace>/<flow>/<task>.tar`` and a manifest
``<task>.json`` holding when it was saved, a digest of its content and its paths. An entry is
restored while younger than its ``ttl`` and replaced only when the digest of what matches the
patterns changed. The tar is written and read as a stream and never extracted on the host: links
in it are links inside the container, where they belong.

Python tasks' venvs (``container_paths.VENVS`` in the container, outside the workspace) are
kept beside it, one entry per image: ``<task>.venvs/<digest of the image id>.tar``. A venv links
to its image's interpreter, so another image never receives it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tarfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from executor.errors import NotFoundError, UsageError
from executor.names import check_namespace

_NAME_PATTERN = "letters, digits, '_' and '-'"


def _check_name(kind: str, name: str) -> str:
    if not name or name.startswith(".") or "/" in name or "\0" in name or name == "..":
        raise UsageError(f"{name!r} is not a {kind} id ({_NAME_PATTERN})")
    return name


@dataclass(frozen=True)
class CacheKey:
    """Which WorkingDirectory a cache entry belongs to (its venvs for ``image``, when given)."""

    namespace: str
    flow_id: str
    task_id: str
    image: str = ""  # an image id: the entry holds the venvs made in that image's container

    def __post_init__(self) -> None:
        check_namespace(self.namespace)
        _check_name("flow", self.flow_id)
        _check_name("task", self.task_id)

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.flow_id}/{self.task_id}"
        return f"{where} (venvs, image {self.image[7:19] or self.image})" if self.image else where

    @property
    def file_stem(self) -> str:
        """The entry's file name without suffix, relative to its flow's directory."""
        if not self.image:
            return self.task_id
        return f"{self.task_id}.venvs/{hashlib.sha256(self.image.encode()).hexdigest()[:32]}"


@dataclass(frozen=True)
class CacheEntry:
    """A saved cache entry as its manifest describes it."""

    key: CacheKey
    tar: Path
    saved_at: float
    digest: str
    paths: tuple[str, ...]
    size: int

    def age(self, now: float | None = None) -> float:
        """Seconds since it was saved."""
        return (now or time.time()) - self.saved_at


class _Digest:
    """A content digest of archive members: names, types, modes, link targets and bytes."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()

    def member(self, info: tarfile.TarInfo) -> None:
        head = f"{info.name}\0{info.type.decode()}\0{info.mode:o}\0{info.linkname}\0{info.size}\0"
        self._hash.update(head.encode("utf-8", "surrogateescape"))

    def data(self, chunk: bytes) -> None:
        self._hash.update(chunk)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


class _HashingReader:
    """Reads through to ``raw`` while feeding every byte to the digest."""

    def __init__(self, raw: IO[bytes], digest: _Digest) -> None:
        self._raw = raw
        self._digest = digest

    def read(self, size: int = -1) -> bytes:
        chunk = self._raw.read(size)
        self._digest.data(chunk)
        return chunk


@dataclass(frozen=True)
class SaveResult:
    """What :meth:`LocalCacheStore.save` did."""

    saved: bool
    files: int
    size: int
    reason: str


# implements store.api.CacheStore (structurally, checked where store.local builds the Services)
class LocalCacheStore:
    """Cache entries on the host."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _paths(self, key: CacheKey) -> tuple[Path, Path]:
        base = self.root / key.namespace / key.flow_id
        return base / f"{key.file_stem}.tar", base / f"{key.file_stem}.json"

    def get(self, key: CacheKey) -> CacheEntry | None:
        """The entry of ``key``, or ``None`` when there is none (or it is unreadable)."""
        tar, manifest = self._paths(key)
        try:
            doc = json.loads(manifest.read_text())
            size = tar.stat().st_size
        except (OSError, ValueError):
            return None
        return CacheEntry(
            key, tar, float(doc["saved_at"]), str(doc["digest"]), tuple(doc.get("paths", [])), size
        )

    def fresh(self, key: CacheKey, ttl: float | None) -> tuple[CacheEntry | None, str]:
        """The entry to restore, or ``None`` with why not (``no entry``, ``expired``)."""
        entry = self.get(key)
        if entry is None:
            return None, "no entry"
        if ttl is not None and entry.age() >= ttl:
            return None, f"expired ({entry.age():.0f}s old, ttl {ttl:.0f}s)"
        return entry, "fresh"

    def save(
        self, key: CacheKey, members: Iterable[tuple[str, tarfile.TarInfo, IO[bytes] | None]]
    ) -> SaveResult:
        """Write the members to the entry's tar unless their digest equals the stored one.

        The members are streamed into a temporary file while they are hashed; it replaces the
        entry only when the content changed, so an unchanged cache costs no write.
        """
        tar_path, manifest = self._paths(key)
        tar_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = tar_path.with_name(f".{tar_path.name}.{os.getpid()}.part")
        digest = _Digest()
        paths: list[str] = []
        try:
            with (
                tmp.open("wb") as out,
                tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar,
            ):
                for rel, info, data in members:
                    info.name = rel
                    if info.islnk() or info.issym() or info.isdir():
                        info.size = 0
                    elif not info.isfile():
                        continue
                    digest.member(info)
                    reader = _HashingReader(data, digest) if data is not None else None
                    tar.addfile(info, reader)
                    if not info.isdir():
                        paths.append(rel)
            if not paths:
                tmp.unlink(missing_ok=True)
                return SaveResult(False, 0, 0, "nothing matches the cache patterns")
            size = tmp.stat().st_size
            old = self.get(key)
            if old is not None and old.digest == digest.hexdigest():
                tmp.unlink(missing_ok=True)
                return SaveResult(False, len(paths), size, "unchanged")
            tmp.replace(tar_path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        doc: dict[str, Any] = {
            "saved_at": time.time(),
            "digest": digest.hexdigest(),
            "paths": paths,
            "key": str(key),
            "image": key.image,
        }
        mtmp = manifest.with_name(f".{manifest.name}.{os.getpid()}.part")
        mtmp.write_text(json.dumps(doc))
        mtmp.replace(manifest)
        return SaveResult(True, len(paths), size, "changed" if old is not None else "new")

    def entries(self) -> list[CacheEntry]:
        """Every entry in the store, sorted by key."""
        found: list[CacheEntry] = []
        if not self.root.is_dir():
            return found
        for manifest in sorted(self.root.glob("*/*/*.json")):
            namespace, flow_id = manifest.parent.parent.name, manifest.parent.name
            try:
                entry = self.get(CacheKey(namespace, flow_id, manifest.stem))
            except UsageError:
                continue
            if entry is not None:
                found.append(entry)
        for manifest in sorted(self.root.glob("*/*/*.venvs/*.json")):
            flow_dir = manifest.parent.parent
            try:
                image = str(json.loads(manifest.read_text()).get("image", ""))
                task_id = manifest.parent.name.removesuffix(".venvs")
                key = CacheKey(flow_dir.parent.name, flow_dir.name, task_id, image)
                entry = self.get(key) if image and key.file_stem.endswith(manifest.stem) else None
            except (OSError, ValueError, UsageError):
                continue
            if entry is not None:
                found.append(entry)
        return found

    def clear(
        self, namespace: str | None = None, flow_id: str | None = None, task_id: str | None = None
    ) -> list[CacheEntry]:
        """Remove the entries under a namespace, flow or task (all when none is given).

        Raises:
            NotFoundError: nothing matches.
        """
        chosen = [
            e
            for e in self.entries()
            if (namespace is None or e.key.namespace == namespace)
            and (flow_id is None or e.key.flow_id == flow_id)
            and (task_id is None or e.key.task_id == task_id)
        ]
        if not chosen and any(x is not None for x in (namespace, flow_id, task_id)):
            wanted = "/".join(x for x in (namespace, flow_id, task_id) if x)
            raise NotFoundError(f"no cache entry under {wanted}")
        for entry in chosen:
            tar, manifest = self._paths(entry.key)
            manifest.unlink(missing_ok=True)
            tar.unlink(missing_ok=True)
            if entry.key.image:
                with contextlib.suppress(OSError):  # the task's other images' venvs remain
                    tar.parent.rmdir()
        return chosen
