"""Parsing image references with Docker's grammar: registries with ports, tags, digests."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from executor.engine.reference import ImageReference, has_digest, parse
from executor.errors import ImageError

DIGEST = "sha256:" + "ab12" * 16


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("busybox", ImageReference(None, "busybox", "latest", None)),
        ("python:3.13-slim", ImageReference(None, "python", "3.13-slim", None)),
        ("executor/busybox:latest", ImageReference(None, "executor/busybox", "latest", None)),
        ("127.0.0.1:5055/team/bb:1", ImageReference("127.0.0.1:5055", "team/bb", "1", None)),
        ("127.0.0.1:5055/team/bb", ImageReference("127.0.0.1:5055", "team/bb", "latest", None)),
        ("localhost/bb", ImageReference("localhost", "bb", "latest", None)),
        ("localhost:5000/bb:v2", ImageReference("localhost:5000", "bb", "v2", None)),
        (
            "registry.example.com/a/b/c:x",
            ImageReference("registry.example.com", "a/b/c", "x", None),
        ),
        ("[::1]:5000/bb:1", ImageReference("[::1]:5000", "bb", "1", None)),
        ("team/bb:1", ImageReference(None, "team/bb", "1", None)),
        ("localhost:5000", ImageReference(None, "localhost", "5000", None)),
        (f"busybox@{DIGEST}", ImageReference(None, "busybox", None, DIGEST)),
        (f"busybox:1.36@{DIGEST}", ImageReference(None, "busybox", "1.36", DIGEST)),
        (
            f"127.0.0.1:5055/team/bb:1@{DIGEST}",
            ImageReference("127.0.0.1:5055", "team/bb", "1", DIGEST),
        ),
        (
            "my_org/some.image__x-y:Tag_1.0-rc",
            ImageReference(None, "my_org/some.image__x-y", "Tag_1.0-rc", None),
        ),
        ("  busybox:1  ", ImageReference(None, "busybox", "1", None)),
    ],
)
def test_valid_references_split_as_docker_does(text: str, expected: ImageReference) -> None:
    """Domain, path, tag and digest come out where Docker's grammar puts them."""
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("Busybox", "must be lowercase"),
        ("executor/BusyBox:1", "must be lowercase"),
        ("Registry/foo", "must be lowercase"),
        ("busybox:", "tag ''"),
        ("busybox:bad/tag", "registry 'busybox:bad'"),
        ("busybox:-lead", "tag '-lead'"),
        ("busybox:" + "x" * 129, "is not valid"),
        ("busybox@sha256:abc", "sha256:<64"),
        ("busybox@md5:" + "a" * 32, "sha256:<64"),
        ("busybox@" + DIGEST.upper(), "sha256:<64"),
        ("a@b@c", "digest"),
        ("127.0.0.1:5055/", "empty"),
        ("bad_host_:5000/x", "not a valid host"),
        ("host:port/x", "registry 'host:port'"),
        ("team//bb", "not valid"),
        ("team/bb-", "not valid"),
        ("-team/bb", "not valid"),
        ("a" * 256, "longer than 255"),
    ],
)
def test_invalid_references_are_image_errors_saying_why(text: str, why: str) -> None:
    """A reference Docker would refuse raises ImageError naming the reference and the fault."""
    with pytest.raises(ImageError, match="image reference") as caught:
        parse(text)
    assert why in str(caught.value)


def test_str_adds_latest_only_when_there_is_neither_tag_nor_digest() -> None:
    """Printing a parsed reference gives Docker's normal form, round-tripping through parse."""
    assert str(parse("127.0.0.1:5055/team/bb")) == "127.0.0.1:5055/team/bb:latest"
    assert str(parse(f"busybox@{DIGEST}")) == f"busybox@{DIGEST}"
    assert str(parse(f"bb:1@{DIGEST}")) == f"bb:1@{DIGEST}"


def test_pull_asks_for_the_repository_and_then_the_digest_or_tag() -> None:
    """The engine's pull gets ``fromImage`` with the port kept, and the digest before the tag."""
    ref = parse("127.0.0.1:5055/team/bb:1")
    assert (ref.repository, ref.pull_tag) == ("127.0.0.1:5055/team/bb", "1")
    pinned = parse(f"127.0.0.1:5055/team/bb:1@{DIGEST}")
    assert (pinned.repository, pinned.pull_tag) == ("127.0.0.1:5055/team/bb", DIGEST)


@pytest.mark.parametrize(
    ("text", "familiar", "normalized"),
    [
        ("busybox", "busybox:latest", "docker.io/library/busybox:latest"),
        ("docker.io/library/python:3", "python:3", "docker.io/library/python:3"),
        ("index.docker.io/library/python:3", "python:3", "docker.io/library/python:3"),
        ("docker.io/team/x", "team/x:latest", "docker.io/team/x:latest"),
        ("library/python", "python:latest", "docker.io/library/python:latest"),
        ("localhost:5000/bb", "localhost:5000/bb:latest", "localhost:5000/bb:latest"),
    ],
)
def test_docker_hub_spellings_normalize_to_one_name(
    text: str, familiar: str, normalized: str
) -> None:
    """Docker Hub's long and short spellings name one image; other registries stay as written."""
    assert str(parse(text).familiar()) == familiar
    assert str(parse(text).normalized()) == normalized


def test_has_digest_matches_repository_and_digest_after_normalizing() -> None:
    """A RepoDigests entry matches when its digest and (normalized) repository both match."""
    ref = parse(f"docker.io/library/busybox@{DIGEST}")
    assert has_digest(ref, ["garbage entry", f"busybox@{DIGEST}"])
    assert not has_digest(ref, [f"other@{DIGEST}"])
    assert not has_digest(ref, ["busybox@sha256:" + "0" * 64])
    assert not has_digest(parse("busybox:1"), [f"busybox@{DIGEST}"])


@given(
    st.from_regex(
        r"(localhost(:[0-9]{1,5})?/|[a-z]{1,8}\.[a-z]{2,4}(:[0-9]{1,5})?/)?"
        r"[a-z0-9]{1,8}(/[a-z0-9]{1,8}){0,2}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,10})?",
        fullmatch=True,
    )
)
def test_parsing_the_printed_form_gives_the_same_reference(text: str) -> None:
    """``parse(str(parse(x))) == parse(x)`` for generated valid references."""
    once = parse(text)
    assert parse(str(once)) == once


def test_digest_in_finds_the_digest_of_the_same_repository_only() -> None:
    """RepoDigests give the digest of the reference's repository, Hub names normalized."""
    from executor.engine.reference import digest_in

    listed = [f"127.0.0.1:5055/other@{DIGEST}", "python@sha256:" + "ab" * 32]
    assert digest_in(parse("docker.io/library/python:3.13"), listed) == "sha256:" + "ab" * 32
    assert digest_in(parse("127.0.0.1:5055/team/bb:1"), listed) is None
    assert digest_in(parse("127.0.0.1:5055/other:1"), ["not a ref!", *listed]) == DIGEST
