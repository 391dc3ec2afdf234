"""git Clone on the host: refs, depth, credentials kept out of argv and out of every message."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from executor.errors import UsageError
from executor.workspace import git as gitmod
from executor.workspace.git import (
    CloneError,
    CloneRequest,
    check_url,
    clone,
    credential_masker,
    shown_url,
)
from tests.unit.workspace.gitserver import git, make_repo, push_commit, serve

HELLO = Path(__file__).parents[2] / "data" / "repos" / "hello"


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, Path]:
    """A bare repo of tests/data/repos/hello with three commits, a tag and a 'dev' branch."""
    bare = tmp_path / "srv" / "hello.git"
    work = make_repo(HELLO, bare)
    push_commit(work, bare, {"v.txt": "one"}, "second", tag="v1")
    push_commit(work, bare, {"v.txt": "two"}, "third")
    git(work, "push", "-q", str(bare), "HEAD:refs/heads/dev")
    return bare, work


def _clone(tmp_path: Path, request: CloneRequest, name: str = "out") -> Path:
    out = tmp_path / name
    out.mkdir()
    return clone(request, out).path


def test_default_clone_is_shallow_at_the_branch_tip(
    tmp_path: Path, repo: tuple[Path, Path]
) -> None:
    """depth 1 by default: one commit, the newest content."""
    path = _clone(tmp_path, CloneRequest(f"file://{repo[0]}", branch="main"))
    assert (path / "hello.py").exists() and (path / "v.txt").read_text() == "two"
    assert git(path, "rev-list", "--count", "HEAD").strip() == "1"


def test_tag_and_commit_ignore_depth(tmp_path: Path, repo: tuple[Path, Path]) -> None:
    """A tag or a commit checks out that state, with the history it needs."""
    tagged = _clone(tmp_path, CloneRequest(f"file://{repo[0]}", tag="v1"), "t")
    assert (tagged / "v.txt").read_text() == "one"
    first = git(repo[1], "rev-list", "--max-parents=0", "HEAD").strip()
    at_commit = _clone(tmp_path, CloneRequest(f"file://{repo[0]}", commit=first), "c")
    assert not (at_commit / "v.txt").exists()
    assert git(at_commit, "rev-parse", "HEAD").strip() == first


def test_submodules_are_cloned_when_asked(tmp_path: Path, repo: tuple[Path, Path]) -> None:
    """cloneSubmodules brings the submodule's files along."""
    bare_sub = tmp_path / "srv" / "lib.git"
    make_repo(None, bare_sub)
    parent = tmp_path / "srv" / "parent.git"
    work = make_repo(None, parent)
    git(
        work,
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "add",
        "-q",
        f"file://{bare_sub}",
        "lib",
    )
    git(work, "commit", "-q", "-m", "sub")
    git(work, "push", "-q", str(parent), "HEAD")
    with_sub = _clone(tmp_path, CloneRequest(f"file://{parent}", submodules=True), "s")
    assert (with_sub / "lib" / "README").read_text() == "readme\n"
    without = _clone(tmp_path, CloneRequest(f"file://{parent}"), "n")
    assert not (without / "lib" / "README").exists()


def test_missing_branch_fails_with_the_reason(tmp_path: Path, repo: tuple[Path, Path]) -> None:
    """A branch that does not exist is a CloneError naming it."""
    with pytest.raises(CloneError, match="Remote branch nope not found"):
        _clone(tmp_path, CloneRequest(f"file://{repo[0]}", branch="nope"))


@pytest.mark.parametrize(
    "url", ["ext::sh -c touch% /tmp/pwned", "/srv/repo.git", "--upload-pack=touch /tmp/x", "fd::3"]
)
def test_other_transports_are_refused(url: str) -> None:
    """ext::, plain paths and option-like URLs never reach git."""
    with pytest.raises(UsageError):
        check_url(url)


def test_http_basic_auth_password_stays_out_of_argv_and_messages(
    tmp_path: Path, repo: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Right password clones; argv never holds it; a wrong one fails with it masked."""
    seen: list[tuple[list[str], dict[str, str]]] = []
    real_run = subprocess.run

    def spy(argv: list[str], **kwargs: Any) -> Any:
        seen.append((list(argv), dict(kwargs.get("env") or {})))
        return real_run(argv, **kwargs)

    monkeypatch.setattr(subprocess, "run", spy)
    password = "correct-horse-battery"
    with serve(repo[0].parent, ("alice", password)) as server:
        path = _clone(
            tmp_path, CloneRequest(server.url("hello.git"), username="alice", password=password)
        )
        assert (path / "hello.py").exists()
        assert any("401" not in r for r in server.requests)
        with pytest.raises(CloneError) as failed:
            _clone(
                tmp_path,
                CloneRequest(
                    server.url("hello.git"), username="alice", password="wrong-" + password
                ),
                "bad",
            )
    assert "Authentication failed" in str(failed.value)
    assert password not in str(failed.value)
    assert all(password not in " ".join(argv) for argv, _ in seen)
    assert any(env.get("EXECUTOR_GIT_PASSWORD") == password for _, env in seen)
    assert not (path / ".git" / "config").read_text().count(password)


def test_password_in_url_is_masked(tmp_path: Path, repo: tuple[Path, Path]) -> None:
    """user:password@host in the URL: shown and failure messages hide the password."""
    url = "http://bob:hunter22secret@127.0.0.1:9/none.git"
    assert "hunter22secret" not in shown_url(url)
    with pytest.raises(CloneError) as failed:
        _clone(tmp_path, CloneRequest(url))
    assert "hunter22secret" not in str(failed.value)
    assert "127.0.0.1:9" in str(failed.value)


def test_private_key_reaches_ssh_as_a_0600_file_and_never_argv(
    tmp_path: Path, repo: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over ssh (a fake ssh that runs the remote command locally) the key arrives as a 0600 file."""
    key = (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nfake-key-material-123\n"
        "-----END OPENSSH PRIVATE KEY-----"
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "ssh.log"
    fake = bin_dir / "ssh"
    fake.write_text(f"""#!/bin/sh
for a in "$@"; do [ "$a" = "-G" ] && exit 0; done
key=""; prev=""
for a in "$@"; do [ "$prev" = "-i" ] && key="$a"; prev="$a"; done
echo "argv: $*" >> {record}
echo "mode: $(stat -c %a "$key")" >> {record}
echo "key: $(sed -n 2p "$key")" >> {record}
for last in "$@"; do :; done
exec sh -c "$last"
""")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    path = _clone(tmp_path, CloneRequest(f"ssh://git@example.invalid{repo[0]}", private_key=key))
    assert (path / "hello.py").exists()
    log = record.read_text()
    assert "mode: 600" in log and "key: fake-key-material-123" in log
    assert "fake-key-material" not in log.split("mode:")[0]


def test_askpass_answers_each_prompt_from_the_environment(tmp_path: Path) -> None:
    """The askpass script gives the username, password or passphrase the prompt asks for."""
    script = tmp_path / "askpass.sh"
    script.write_text(gitmod.ASKPASS)
    script.chmod(stat.S_IRWXU)
    env = {
        "EXECUTOR_GIT_USERNAME": "u",
        "EXECUTOR_GIT_PASSWORD": "p",
        "EXECUTOR_GIT_PASSPHRASE": "k",
    }

    def ask(prompt: str) -> str:
        return subprocess.run(
            [str(script), prompt], env=env, capture_output=True, text=True, check=True
        ).stdout.strip()

    assert ask("Username for 'http://h': ") == "u"
    assert ask("Password for 'http://u@h': ") == "p"
    assert ask("Enter passphrase for key '/k': ") == "k"


def test_masker_hides_every_line_and_url_encoding() -> None:
    """A multi-line key is masked line by line, a password also in its URL-encoded form."""
    mask = credential_masker(["p@ss/word", "line-one\nline-two"])
    assert mask("x p%40ss%2Fword y line-two") == "x ****** y ******"


def test_a_served_repository_cannot_pull_a_host_repository_in_as_a_submodule(
    tmp_path: Path,
) -> None:
    """Where host options are refused (a server), a repository cloned over http whose
    submodule is a file:// path of this host does not bring that path's files along; the
    file:// URL itself is refused by git too. `executor run` (allowed) keeps both."""
    secret = tmp_path / "host" / "secret.git"
    make_repo(None, secret)  # a host repository holding README
    parent = tmp_path / "srv" / "parent.git"
    work = make_repo(None, parent)
    git(
        work,
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "add",
        "-q",
        f"file://{secret}",
        "lib",
    )
    git(work, "commit", "-q", "-m", "sub")
    git(work, "push", "-q", str(parent), "HEAD")
    with serve(parent.parent) as server:
        with pytest.raises(CloneError, match="transport 'file' not allowed"):
            _clone(
                tmp_path,
                CloneRequest(server.url("parent.git"), submodules=True, allow_file=False),
                "refused",
            )
        allowed = _clone(tmp_path, CloneRequest(server.url("parent.git"), submodules=True), "ok")
        assert (allowed / "lib" / "README").read_text() == "readme\n"
    with pytest.raises(CloneError, match="transport 'file' not allowed"):
        _clone(tmp_path, CloneRequest(f"file://{secret}", allow_file=False), "direct")
