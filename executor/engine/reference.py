"""Image references as Docker reads them: ``[domain[:port]/]path[:tag][@digest]``.

Docker's grammar (``distribution/reference``): the first ``/``-separated component is a registry
domain only when it contains ``.`` or ``:`` or is ``localhost``; so in ``127.0.0.1:5055/team/bb:1``
the first colon belongs to the port and the tag is ``1``. Splitting at the first or last colon of
the whole text gets that wrong. Docker is not imported here, so everything may use it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from executor.errors import ImageError

DEFAULT_DOMAIN = "docker.io"
DEFAULT_TAG = "latest"
# Docker Hub's names for itself; a reference naming one means the same image as naming none.
_HUB_DOMAINS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
_OFFICIAL = "library/"
_MAX_NAME = 255

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(
    rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
)
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")


@dataclass(frozen=True)
class ImageReference:
    """A parsed image reference.

    Attributes:
        domain: the registry (``127.0.0.1:5055``, ``localhost``), or ``None`` when not written.
        path: the repository path inside the registry (``team/bb``, ``busybox``).
        tag: the tag; ``latest`` when neither a tag nor a digest is written, ``None`` when only
            a digest is.
        digest: ``sha256:<64 hex>`` when written, else ``None``.
    """

    domain: str | None
    path: str
    tag: str | None
    digest: str | None

    @property
    def repository(self) -> str:
        """``domain/path`` as written (the engine's ``fromImage``), without tag or digest."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    @property
    def pull_tag(self) -> str:
        """What the engine's pull takes beside the repository: the digest when there is one."""
        return self.digest or self.tag or DEFAULT_TAG

    def normalized(self) -> ImageReference:
        """The same image with Docker Hub spelled out: ``docker.io/library/busybox:latest``."""
        if self.domain is not None and self.domain not in _HUB_DOMAINS:
            return self
        path = self.path if "/" in self.path else _OFFICIAL + self.path
        return replace(self, domain=DEFAULT_DOMAIN, path=path)

    def familiar(self) -> ImageReference:
        """The same image in Docker's short form: ``busybox:latest``, ``team/bb:1``."""
        if self.domain is not None and self.domain not in _HUB_DOMAINS:
            return self
        return replace(self, domain=None, path=self.path.removeprefix(_OFFICIAL))

    def __str__(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        digest = f"@{self.digest}" if self.digest else ""
        return f"{self.repository}{tag}{digest}"


def parse(text: str) -> ImageReference:
    """Parse an image reference the way Docker does.

    Raises:
        ImageError: ``text`` is not a valid reference; the message says which part is wrong.
    """
    ref = text.strip()
    if not ref:
        raise ImageError("an empty image reference")
    name, at, digest = ref.partition("@")
    if at and not _DIGEST.fullmatch(digest):
        raise _invalid(text, f"digest {digest!r} is not sha256:<64 lowercase hex digits>")
    domain, path = _split_domain(name)
    path, colon, tag = path.partition(":")
    if colon and not _TAG.fullmatch(tag):
        raise _invalid(text, f"tag {tag!r} is not valid (letters, digits, '_', '.', '-')")
    if domain is not None and not _DOMAIN.fullmatch(domain):
        raise _invalid(text, f"registry {domain!r} is not a valid host[:port]")
    _check_path(text, path)
    if len(name) - len(tag) - len(colon) > _MAX_NAME:
        raise _invalid(text, f"the repository name is longer than {_MAX_NAME} characters")
    tag_or_default = tag if colon else (None if at else DEFAULT_TAG)
    return ImageReference(domain, path, tag_or_default, digest if at else None)


def _split_domain(name: str) -> tuple[str | None, str]:
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return None, name


def _check_path(text: str, path: str) -> None:
    if not path:
        raise _invalid(text, "the repository name is empty")
    if _PATH.fullmatch(path):
        return
    if _PATH.fullmatch(path.lower()):
        raise _invalid(text, "the repository name must be lowercase")
    raise _invalid(
        text,
        f"repository {path!r} is not valid (lowercase letters and digits, "
        "separated by '.', '_', '__' or '-', components joined by '/')",
    )


def _invalid(text: str, why: str) -> ImageError:
    return ImageError(f"invalid image reference {text!r}: {why}")


def has_digest(ref: ImageReference, repo_digests: Iterable[str]) -> bool:
    """Whether one of an image's ``RepoDigests`` (``repo@sha256:...``) is ``ref``'s digest.

    The repository must match too (after Docker Hub normalization): the same digest under
    another repository is another reference. Entries that do not parse are ignored.
    """
    if ref.digest is None:
        return False
    wanted = ref.normalized().repository
    for entry in repo_digests:
        try:
            found = parse(entry)
        except ImageError:
            continue
        if found.digest == ref.digest and found.normalized().repository == wanted:
            return True
    return False


def digest_in(ref: ImageReference, repo_digests: Iterable[str]) -> str | None:
    """The digest one of an image's ``RepoDigests`` gives ``ref``'s repository, if any."""
    wanted = ref.normalized().repository
    for entry in repo_digests:
        try:
            found = parse(entry)
        except ImageError:
            continue
        if found.digest and found.normalized().repository == wanted:
            return found.digest
    return None
