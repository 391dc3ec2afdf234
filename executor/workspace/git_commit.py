"""Changing a branch of a remote repository from the host: check out, stage, commit, push.

What the GitOps tasks (``git.Push``, ``PushFlows``, ``PushNamespaceFiles``,
``PushExecutionFiles``) share. git runs on the host with the same environment as a Clone
(:func:`executor.workspace.git.git_env`): no user configuration, credentials by askpass only,
every message masked. A branch missing on the remote is created from the default branch (or as
the first commit of an empty repository), as Kestra creates it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from executor.masking import Masker
from executor.workspace.git import (
    CloneRequest,
    check_url,
    clone,
    credential_masker,
    git_env,
    run_git,
    shown_url,
)

_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")


@dataclass
class Checkout:
    """A working copy of one branch on the host, and how git runs in it."""

    path: Path
    branch: str
    env: dict[str, str] = field(repr=False)
    mask: Masker = field(repr=False)
    timeout: float | None = None
    existed: bool = True

    def git(self, *args: str, what: str | None = None) -> str:
        """Run git in the working copy; its stdout (CloneError, masked, when it fails)."""
        return run_git(
            ["git", *args], self.env, self.path, self.mask, self.timeout, what or f"git {args[0]}"
        )


def _branch_exists(
    request: CloneRequest,
    env: dict[str, str],
    cwd: Path,
    mask: Masker,
    timeout: float | None,
    branch: str,
) -> bool | None:
    """Whether the remote has ``branch``; ``None`` when the remote has no branch at all."""
    heads = run_git(
        ["git", "ls-remote", "--heads", "--", request.url],
        env,
        cwd,
        mask,
        timeout,
        f"git ls-remote of {shown_url(mask(request.url))}",
    )
    names = {line.split("\t", 1)[1] for line in heads.splitlines() if "\t" in line}
    if not names:
        return None
    return f"refs/heads/{branch}" in names


def check_out_branch(
    request: CloneRequest,
    branch: str,
    workdir: Path,
    *,
    timeout: float | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> Checkout:
    """Clone ``request.url`` at ``branch`` into ``workdir/repo``, creating the branch if missing.

    Raises:
        UsageError: the URL uses a transport that is not allowed.
        CloneError: git failed (bad URL, wrong credentials); masked message.
    """
    check_url(request.url)
    mask = credential_masker(request.secrets())
    private = workdir / "probe"
    private.mkdir(mode=0o700)
    env = git_env(request, private)
    exists = _branch_exists(request, env, workdir, mask, timeout, branch)
    if exists is None:  # an empty repository: the branch is its first commit
        log(mask(f"{shown_url(request.url)} has no branch yet: {branch} starts it"))
        repo = workdir / "repo"
        repo.mkdir()
        checkout = Checkout(repo, branch, env, mask, timeout, existed=False)
        checkout.git("init", "-q", "-b", branch)
        checkout.git("remote", "add", "origin", "--", request.url)
        return checkout
    wanted = dataclasses.replace(request, branch=branch if exists else None, tag=None, commit=None)
    result = clone(wanted, workdir, timeout=timeout, log=log)
    checkout = Checkout(result.path, branch, env, mask, timeout, existed=exists)
    if not exists:
        log(f"branch {branch} does not exist, creating it")
        checkout.git("checkout", "-q", "-b", branch)
    return checkout


def open_checkout(
    path: Path, request: CloneRequest, workdir: Path, timeout: float | None = None
) -> Checkout:
    """A working copy that is already there (a Clone's), on its current branch."""
    private = workdir / "probe"
    private.mkdir(mode=0o700)
    env = git_env(request, private)
    mask = credential_masker(request.secrets())
    checkout = Checkout(path, "", env, mask, timeout)
    checkout.branch = checkout.git("rev-parse", "--abbrev-ref", "HEAD").strip()
    return checkout


@dataclass(frozen=True)
class Author:
    """The commit's author; git's committer is the same person."""

    name: str
    email: str


def stage(checkout: Checkout, paths: Iterable[str]) -> None:
    """``git add`` these paths (relative to the working copy; deletions included)."""
    wanted = sorted(set(paths))
    for start in range(0, len(wanted), 200):  # keep argv bounded
        checkout.git("add", "-A", "--", *wanted[start : start + 200])


def remove(checkout: Checkout, paths: Iterable[str]) -> None:
    """``git rm`` these tracked paths."""
    wanted = sorted(set(paths))
    for start in range(0, len(wanted), 200):
        checkout.git("rm", "-q", "--", *wanted[start : start + 200])


def has_staged_changes(checkout: Checkout) -> bool:
    return bool(checkout.git("diff", "--cached", "--name-only").strip())


def commit_and_push(checkout: Checkout, message: str, author: Author | None) -> str | None:
    """Commit what is staged and push it to ``origin``'s branch; the commit id, or ``None``
    when nothing was staged (nothing is pushed then)."""
    if not has_staged_changes(checkout):
        return None
    who = author or Author("executor", "executor@localhost")
    args = ["-c", f"user.name={who.name}", "-c", f"user.email={who.email}"]
    checkout.git(*args, "commit", "-q", "--no-verify", "-m", message, what="git commit")
    commit = checkout.git("rev-parse", "HEAD").strip()
    checkout.git(
        "push",
        "-q",
        "--no-verify",
        "origin",
        f"HEAD:refs/heads/{checkout.branch}",
        what=f"git push to {checkout.branch}",
    )
    return commit


def diff_rows(checkout: Checkout, *, staged: bool) -> list[dict[str, str]]:
    """One row per changed file, as Kestra's push tasks write their diff file.

    ``{file, additions: "+N", deletions: "-N", changes: "N"}``: per edit, lines added beyond
    those replaced count as additions, lines removed beyond them as deletions, and a like-for-like
    replacement as changes. ``staged``: what is staged (a dry run); else the last commit.
    """
    if staged:
        args = ["diff", "--cached"]
    elif checkout.git("rev-list", "--count", "HEAD").strip() == "1":
        args = ["show", "--format="]
    else:
        args = ["diff", "HEAD~1", "HEAD"]
    text = checkout.git(*args, "-U0", "--no-color", "--no-renames", "--no-ext-diff")
    rows: list[dict[str, str]] = []
    current: dict[str, int | str] | None = None
    for line in text.splitlines():
        if line.startswith("diff --git "):
            named = line[len("diff --git a/") :].rsplit(" b/", 1)[-1]  # binary files say no more
            current = {"file": named, "additions": 0, "deletions": 0, "changes": 0}
            rows.append(current)  # type: ignore[arg-type]
        elif current is None:
            continue
        elif line.startswith("--- a/") or line.startswith("+++ b/"):
            current["file"] = line[6:]
        elif (found := _HUNK.match(line)) is not None:
            old = int(found.group(1)) if found.group(1) is not None else 1
            new = int(found.group(2)) if found.group(2) is not None else 1
            grown = new - old
            if grown > 0:
                current["additions"] = int(current["additions"]) + grown
            elif grown < 0:
                current["deletions"] = int(current["deletions"]) - grown
            else:
                current["changes"] = int(current["changes"]) + new
    shown = [
        {
            "file": str(r["file"]),
            "additions": f"+{r['additions']}",
            "deletions": f"-{r['deletions']}",
            "changes": str(r["changes"]),
        }
        for r in rows
    ]
    return sorted(shown, key=lambda r: r["file"])


def commit_url(url: str, branch: str, commit: str | None) -> str | None:
    """Where a browser shows the commit (GitHub's, GitLab's and Gitea's ``/commit/<id>``)."""
    if commit is None:
        return None
    base = http_url(url)
    sub = "commits" if "bitbucket.org" in base else "commit"
    found = f"{base}/{sub}/{commit}"
    if "azure.com" in found:
        found += f"?refName=refs%2Fheads%2F{branch}"
    return found


def http_url(url: str) -> str:
    """The repository's web address: ssh forms turned into https, credentials and ``.git`` cut."""
    text = url.strip()
    scp = re.match(r"^[A-Za-z0-9._~-]+@([A-Za-z0-9.-]+):(?!//)(.*)$", text)
    if scp:
        text = f"https://{scp.group(1)}/{scp.group(2)}"
    elif text.startswith("ssh://"):
        parts = urlsplit(text)
        text = f"https://{parts.hostname or ''}{parts.path}"
    elif "://" in text:
        parts = urlsplit(text)
        if parts.username or parts.password:
            netloc = parts.hostname or ""
            if parts.port:
                netloc += f":{parts.port}"
            text = parts._replace(netloc=netloc).geturl()
    text = text.rstrip("/")
    return text[: -len(".git")] if text.endswith(".git") else text
