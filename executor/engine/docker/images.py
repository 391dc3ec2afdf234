"""The Docker calls for images: look up, pull, import a root filesystem, build, tag, push.

This is the only module that talks to Docker about images: the backend's image calls come here,
and ``executor.images`` drives the catalogue's builds through the
:class:`~executor.engine.api.ImageStore` protocol, so its tests use a fake instead.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import docker.errors

from executor.engine.api import BuildRequest, ImageCommand, RegistryAuth
from executor.engine.docker.client import DEFAULT_SOCKET, RetryPolicy, translated
from executor.engine.reference import ImageReference, digest_in, has_digest
from executor.engine.reference import parse as parse_reference
from executor.errors import EngineError, EngineLost, ImageError
from executor.masking import masked

CHUNK_SIZE = 1 << 20
TAIL_LINES = 20


class DockerImages:
    """Image operations on a connected ``docker.DockerClient``.

    Args:
        client: the SDK's client.
        retry: how transient engine errors are retried (none by default).
        address: the engine's address, as errors name it.
    """

    def __init__(
        self, client: Any, retry: RetryPolicy | None = None, address: str = DEFAULT_SOCKET
    ) -> None:
        self._api = client.api
        self.address = address
        self._retry = (retry or RetryPolicy(attempts=1)).for_engine(address)

    def image_id(self, ref: str) -> str | None:
        """The local image id of ``ref``, or ``None`` when the engine does not have it.

        A reference with a digest (``repo@sha256:...``) names the image whose ``RepoDigests``
        hold that repository and digest, whatever it is tagged.

        Raises:
            ImageError: ``ref`` is not a valid reference.
            EngineError: the engine failed.
        """
        parsed = parse_reference(ref)
        with translated(f"inspecting image {ref}", self.address):
            if parsed.digest:
                return find_by_digest(self._api.images(), parsed)
            try:
                return str(self._api.inspect_image(ref)["Id"])
            except docker.errors.NotFound:
                return None
            except docker.errors.APIError as exc:
                if exc.status_code == 400:
                    raise ImageError(f"invalid image reference {ref!r}: {exc.explanation}") from exc
                raise

    def pull(self, ref: str, auth: RegistryAuth | None = None) -> str:
        """Pull ``ref`` (with ``auth``) and return its id; a digest is verified.

        Raises:
            ImageError: the image cannot be had; the message names the registry, never the
                credentials (an engine may echo what it was sent).
        """
        parsed = parse_reference(ref)
        registry = (auth.registry if auth and auth.registry else None) or parsed.domain
        source = f"registry {registry}" if registry else "Docker Hub"
        try:
            with translated(f"pull {ref}", self.address):
                self._api.pull(
                    parsed.repository, tag=parsed.pull_tag, auth_config=auth_config(auth)
                )
        except EngineLost:
            raise
        except (EngineError, ImageError) as exc:
            detail = masked(exc.message, auth.secrets if auth else ())
            raise ImageError(f"cannot pull image {ref} from {source}: {detail}") from None
        found = self.image_id(str(parsed))
        if not found:
            # A digest pins content: the pulled image must hold it, or it is not the one asked for.
            what = "no image holding that digest" if parsed.digest else "no such image"
            raise ImageError(f"pulled {ref} from {source} but the engine lists {what}")
        return found

    def repo_digest(self, ref: str, image_id: str) -> str | None:
        """The digest the registry of ``ref`` gave ``image_id`` when it was pulled, if known."""
        try:
            with translated(f"inspect image {image_id}", self.address):
                listed = self._api.inspect_image(image_id).get("RepoDigests") or []
        except ImageError:
            return None
        return digest_in(parse_reference(ref), listed)

    def image_command(self, image: str) -> ImageCommand:
        """The image's ENTRYPOINT and CMD."""
        info = self._retry.call(f"inspect image {image}", lambda: self._api.inspect_image(image))
        config = info.get("Config") or {}
        return ImageCommand(
            entrypoint=tuple(str(a) for a in config.get("Entrypoint") or ()),
            cmd=tuple(str(a) for a in config.get("Cmd") or ()),
        )

    def image_user(self, image: str) -> str:
        """The user an image runs as by default (its ``USER``); empty when it runs as root."""
        info = self._retry.call(f"inspect image {image}", lambda: self._api.inspect_image(image))
        user = (info.get("Config") or {}).get("User") or ""
        return "" if is_root(user) else str(user)

    def tag(self, image_id: str, ref: str) -> None:
        """Point ``ref`` (``repo:tag``) at ``image_id``, replacing any previous target.

        Raises:
            ImageError: ``ref`` is not a valid reference, or names a digest (which is not a tag).
            EngineError: the engine failed.
        """
        parsed = parse_reference(ref)
        if parsed.digest or parsed.tag is None:
            raise ImageError(f"cannot tag {image_id} as {ref!r}: a digest is not a tag")
        with translated(f"tagging {image_id} as {ref}", self.address):
            self._api.tag(image_id, parsed.repository, parsed.tag, force=True)

    def images_labelled(self, label: str, value: str) -> list[str]:
        """Ids of the local images (dangling ones too) whose ``label`` is ``value``, newest first.

        Raises:
            EngineError: the engine failed.
        """
        with translated(f"listing images labelled {label}={value}", self.address):
            listed = self._api.images(filters={"label": f"{label}={value}"})
        newest_first = sorted(listed, key=lambda image: image.get("Created", 0), reverse=True)
        return [str(image["Id"]) for image in newest_first]

    def remove_unused(self, image_id: str) -> bool:
        """Remove ``image_id`` unless a name or a container (even a stopped one) still uses it.

        The engine would remove an image that still has one name, so names are checked here; it
        refuses to remove one a container uses with a conflict, which is the answer, not an error.

        Returns:
            Whether the image is gone.

        Raises:
            EngineError: the engine failed otherwise.
        """
        with translated(f"removing image {image_id}", self.address):
            try:
                if self._api.inspect_image(image_id).get("RepoTags"):
                    return False
                self._api.remove_image(image_id, force=False, noprune=False)
            except docker.errors.NotFound:
                return True
            except docker.errors.APIError as exc:
                if exc.status_code == 409:
                    return False
                raise
        return True

    def import_rootfs(
        self, rootfs: Path, ref: str, changes: Sequence[str], labels: Mapping[str, str]
    ) -> str:
        """Stream ``rootfs`` as a tar into the engine, tag the image ``ref`` and return its id.

        The image is tagged only after ``tar`` has finished cleanly, so a half-read directory
        never gets the name.

        Args:
            rootfs: the root filesystem directory.
            ref: the ``repo:tag`` to give the image.
            changes: Dockerfile instructions to apply, e.g. ``WORKDIR /workspace``.
            labels: labels the image gets.

        Raises:
            ImageError: ``tar`` failed or the engine rejected the archive.
            EngineError: the engine failed.
        """
        with (
            _tar_stream(rootfs) as (chunks, tar),
            translated(f"importing {rootfs} as {ref}", self.address),
        ):
            answer = self._api.import_image_from_stream(
                chunks, changes=[*changes, *_label_changes(labels)]
            )
        image_id = _imported_id(answer, ref)
        if tar.failed():
            self._discard(image_id)
            raise ImageError(f"importing {ref}: tar of {rootfs} failed: {tar.last_lines()}")
        self.tag(image_id, ref)
        return image_id

    def _discard(self, image_id: str) -> None:
        """Remove a half-made image; failing to is not worth hiding the real error."""
        with suppress(docker.errors.DockerException):
            self._api.remove_image(image_id, noprune=False)

    def build_dockerfile(
        self,
        context: Path,
        ref: str,
        on_line: Callable[[str], None],
        labels: Mapping[str, str],
    ) -> str:
        """Build the Dockerfile in ``context`` as ``ref`` with ``labels``; lines go to ``on_line``.

        Returns:
            The id of the built image.

        Raises:
            ImageError: the build failed; the message carries the last lines of its output.
            EngineError: the engine failed.
        """
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        image_id: str | None = None
        with translated(f"building {ref} from {context}", self.address):
            for event in self._api.build(
                path=str(context),
                tag=ref,
                rm=True,
                forcerm=True,
                decode=True,
                labels=dict(labels),
            ):
                image_id = _follow_build_event(event, ref, tail, on_line) or image_id
        # The id the build itself reported; a lookup of ``ref`` could see a concurrent build's.
        image_id = image_id or self.image_id(ref)
        if image_id is None:
            raise ImageError(f"building {ref}: the engine reports no image after the build")
        return image_id

    def build_task_image(self, request: BuildRequest, on_line: Callable[[str], None]) -> str:
        """Build ``request`` (a task's ``docker.Build``): tagged with every tag; its image id.

        ``on_line`` gets each line of output and may raise to stop the build (the engine stops
        it when the connection closes).

        Raises:
            ImageError: the build failed; the message carries its last lines.
            EngineError: the engine failed.
        """
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        first = request.tags[0]
        image_id: str | None = None
        with translated(f"building {first}", self.address):
            events = self._api.build(
                path=str(request.context),
                dockerfile=request.dockerfile,
                tag=first,
                buildargs=dict(request.build_args) or None,
                labels=dict(request.labels) or None,
                platform=request.platform,
                pull=request.pull,
                rm=True,
                forcerm=True,
                decode=True,
            )
            try:
                for event in events:
                    image_id = _follow_build_event(event, first, tail, on_line) or image_id
            finally:
                close = getattr(events, "close", None)
                if callable(close):
                    close()
        image_id = image_id or self.image_id(first)
        if image_id is None:
            raise ImageError(f"building {first}: the engine reports no image after the build")
        for ref in request.tags[1:]:
            self.tag(image_id, ref)
        return image_id

    def push(
        self, ref: str, auth: RegistryAuth | None, on_line: Callable[[str], None]
    ) -> str | None:
        """Push ``ref`` to its registry with ``auth``; the digest the registry reports.

        Raises:
            ImageError: the registry or the engine refused it (never naming the credentials).
        """
        try:
            return self._push(ref, auth_config(auth), on_line)
        except EngineLost:
            raise
        except (EngineError, ImageError) as exc:
            raise ImageError(masked(exc.message, auth.secrets if auth else ())) from None

    def _push(
        self, ref: str, config: Mapping[str, str] | None, on_line: Callable[[str], None]
    ) -> str | None:
        parsed = parse_reference(ref)
        if parsed.digest or parsed.tag is None:
            raise ImageError(f"cannot push {ref!r}: name a tag, not a digest")
        digest: str | None = None
        with translated(f"pushing {ref}", self.address):
            for event in self._api.push(
                parsed.repository,
                tag=parsed.tag,
                auth_config=dict(config) if config else None,
                stream=True,
                decode=True,
            ):
                if "error" in event:
                    raise ImageError(f"pushing {ref} failed: {str(event['error']).strip()}")
                status = str(event.get("status", "")).strip()
                if status and "progress" not in event:
                    on_line(f"{event.get('id', '')} {status}".strip())
                aux = event.get("aux")
                if isinstance(aux, dict) and aux.get("Digest"):
                    digest = str(aux["Digest"])
        return digest


def auth_config(auth: RegistryAuth | None) -> dict[str, str] | None:
    """Docker's ``X-Registry-Auth`` fields for ``auth`` (the SDK encodes them in a header)."""
    if auth is None:
        return None
    fields = {
        "serveraddress": auth.registry,
        "username": auth.username,
        "password": auth.password,
        "auth": auth.auth,
        "registrytoken": auth.registry_token,
        "identitytoken": auth.identity_token,
    }
    return {k: v for k, v in fields.items() if v}


def is_root(user: str | None) -> bool:
    """Whether ``user`` (``uid[:gid]`` or a name) is root."""
    return user is not None and user.split(":", 1)[0] in ("0", "root")


def _label_changes(labels: Mapping[str, str]) -> list[str]:
    """``LABEL`` instructions for an import, each key and value quoted as JSON strings are."""
    return [f"LABEL {json.dumps(key)}={json.dumps(value)}" for key, value in labels.items()]


def find_by_digest(listed: Iterable[Mapping[str, Any]], ref: ImageReference) -> str | None:
    """The id of the listed image (the engine's image list) holding ``ref``'s digest, or None."""
    for image in listed:
        if has_digest(ref, image.get("RepoDigests") or ()):
            return str(image["Id"])
    return None


def _follow_build_event(
    event: dict[str, Any], ref: str, tail: deque[str], on_line: Callable[[str], None]
) -> str | None:
    """Pass on the event's output lines; return the image id it announces, if any."""
    for line in str(event.get("stream", "")).splitlines():
        if line.strip():
            tail.append(line)
            on_line(line)
    if "error" in event:
        last = "\n  ".join(tail)
        raise ImageError(f"building {ref} failed: {event['error'].strip()}\n  {last}")
    aux = event.get("aux")
    return str(aux["ID"]) if isinstance(aux, dict) and "ID" in aux else None


def _imported_id(answer: Any, ref: str) -> str:
    """Read the new image's id out of the import endpoint's JSON-lines answer."""
    text = answer.decode() if isinstance(answer, bytes) else str(answer)
    for line in reversed(text.splitlines()):
        if not line.strip():
            continue
        message = json.loads(line)
        if "error" in message:
            raise ImageError(f"importing {ref}: {message['error']}")
        status = str(message.get("status", ""))
        if status.startswith("sha256:"):
            return status
    raise ImageError(f"importing {ref}: the engine answered without an image id: {text[:200]}")


@contextmanager
def _tar_stream(rootfs: Path) -> Iterator[tuple[Iterator[bytes], _TarOutcome]]:
    """Run ``tar -c`` on ``rootfs``; yield its output as chunks, then record how it ended."""
    if not rootfs.is_dir():
        raise ImageError(f"cannot import {rootfs}: not a directory")
    argv = ["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", "-", "."]
    outcome = _TarOutcome()
    # stderr goes to a file: a pipe nobody reads while we stream stdout could fill and stall tar.
    with (
        tempfile.TemporaryFile() as errors,
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errors) as process,
    ):
        assert process.stdout is not None
        try:
            yield _read_chunks(process.stdout), outcome
        finally:
            if process.poll() is None:
                process.stdout.close()
            outcome.returncode = process.wait()
            errors.seek(0)
            outcome.stderr = errors.read().decode(errors="replace").strip()


def _read_chunks(stdout: IO[bytes]) -> Iterator[bytes]:
    while chunk := stdout.read(CHUNK_SIZE):
        yield chunk


@dataclass
class _TarOutcome:
    """How ``tar`` ended, known once the stream is closed."""

    returncode: int = 0
    stderr: str = ""

    def failed(self) -> bool:
        return self.returncode != 0

    def last_lines(self) -> str:
        return "\n".join(self.stderr.splitlines()[-5:]) or f"exit {self.returncode}"
