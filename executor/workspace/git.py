"""``io.kestra.plugin.git.Clone``: a clone made on the host with the git CLI.

The container images need neither git nor a network: the repository is cloned into a temporary
directory on the host and streamed into the workspace as one tar.

Credentials never reach an argv, a log line, a record or an error message:

* ``username``/``password`` travel in the environment of git only, answered by a small
  ``GIT_ASKPASS`` script that reads them from there;
* ``privateKey`` is written to a 0600 file in a private temporary directory and named by
  ``GIT_SSH_COMMAND``; a ``passphrase`` is answered by the same askpass script;
* every message git prints is passed through the clone's :func:`credential_masker` before it
  goes anywhere.

The user's own git and ssh configuration, credential helpers and agent are kept out (a clone
must not succeed on one machine only because of who runs it).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from executor.errors import UsageError, WorkspaceError
from executor.masking import Masker

ASKPASS = """#!/bin/sh
case "$1" in
  Username*|username*) printf '%s\\n' "$EXECUTOR_GIT_USERNAME" ;;
  *assphrase*) printf '%s\\n' "$EXECUTOR_GIT_PASSPHRASE" ;;
  *) printf '%s\\n' "$EXECUTOR_GIT_PASSWORD" ;;
esac
"""
SCP_LIKE = re.compile(r"^[A-Za-z0-9._~-]+@[A-Za-z0-9.-]+:(?!//)")
ALLOWED_SCHEMES = ("file", "http", "https", "ssh", "git")
KEPT_ENV = (
    "PATH",
    "LANG",
    "LC_ALL",
    "TZ",
    "TMPDIR",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "GIT_SSL_CAINFO",
    "GIT_EXEC_PATH",
)


class CloneError(WorkspaceError):
    """git could not clone; the message is already masked."""


def credential_masker(secrets: Iterable[str | None]) -> Masker:
    """The masker of a clone's credentials: each one, and its URL-encoded form (as it stands
    in a URL git may print)."""
    return Masker(form for s in secrets if s for form in (s.strip(), quote(s.strip(), safe="")))


@dataclass(frozen=True)
class CloneRequest:
    """A rendered Clone task.

    Attributes:
        url: ``file://``, ``http(s)://``, ``ssh://``, ``git://`` or ``user@host:path``.
        branch / tag / commit: what to check out (``commit`` after a full clone).
        depth: history depth; ignored with ``tag`` or ``commit``.
        submodules: clone submodules too.
        username / password: http(s) credentials (``password`` may be a token).
        private_key / passphrase: an ssh key in OpenSSH or PEM form, and its passphrase.
        allow_file: whether ``file://`` may be used (the host's own repositories), by the URL
            or by a submodule; a server refuses it unless configured (``flow.host_access``).
    """

    url: str
    branch: str | None = None
    tag: str | None = None
    commit: str | None = None
    depth: int = 1
    submodules: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    private_key: str | None = field(default=None, repr=False)
    passphrase: str | None = field(default=None, repr=False)
    allow_file: bool = True

    def secrets(self) -> list[str]:
        """Every value that must never be shown, including a password written into the URL."""
        values = [v for v in (self.password, self.private_key, self.passphrase) if v]
        parts = urlsplit(self.url) if "://" in self.url else None
        if parts is not None and parts.password:
            values += [parts.password, unquote(parts.password)]
        return values


def check_url(url: str) -> str:
    """``url`` when git may fetch it here.

    Raises:
        UsageError: another transport (``ext::``, a plain path, an option-like value).
    """
    if url.startswith("-"):
        raise UsageError(f"git url {url!r} must not start with '-'")
    if SCP_LIKE.match(url):
        return url
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in ALLOWED_SCHEMES:
        raise UsageError(
            "git url must be file://, http(s)://, ssh://, git:// or user@host:path; "
            f"got {shown_url(url)!r}"
        )
    return url


def shown_url(url: str) -> str:
    """The URL with any password in it replaced, for messages."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:******@{parts.hostname or ''}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True)
class CloneResult:
    """Where the clone is on the host and what it checked out."""

    path: Path
    commit: str
    ref: str


def git_env(request: CloneRequest, private: Path) -> dict[str, str]:
    """The environment git runs in for ``request``: no user config, credentials by askpass.

    ``private`` is a 0700 directory of this call's own (the askpass script and any key go there).
    """
    env = {k: os.environ[k] for k in KEPT_ENV if k in os.environ}
    askpass = private / "askpass.sh"
    askpass.write_text(ASKPASS)
    askpass.chmod(0o700)
    env.update(
        {
            "HOME": str(private),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": str(askpass),
            "SSH_ASKPASS": str(askpass),
            "SSH_ASKPASS_REQUIRE": "force",
            "DISPLAY": ":0",
            "GIT_ALLOW_PROTOCOL": ("file:" if request.allow_file else "") + "http:https:ssh:git",
            "EXECUTOR_GIT_USERNAME": request.username or ("git" if request.password else ""),
            "EXECUTOR_GIT_PASSWORD": request.password or "",
            "EXECUTOR_GIT_PASSPHRASE": request.passphrase or "",
        }
    )
    config = [("credential.helper", ""), ("core.askPass", str(askpass))]
    if request.submodules and request.allow_file and request.url.lower().startswith("file://"):
        config.append(("protocol.file.allow", "always"))
    env["GIT_CONFIG_COUNT"] = str(len(config))
    for i, (key, value) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"] = key, value
    ssh = [
        "ssh",
        "-F",
        os.devnull,
        "-o",
        f"UserKnownHostsFile={private / 'known_hosts'}",
        "-o",
        "StrictHostKeyChecking=accept-new",
        "-o",
        "IdentityAgent=none",
    ]
    if request.private_key:
        key_file = private / "id_key"
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(request.private_key.strip() + "\n")
        ssh += ["-i", str(key_file), "-o", "IdentitiesOnly=yes"]
    if not request.passphrase:
        ssh += ["-o", "BatchMode=yes"]
    env["GIT_SSH_COMMAND"] = shlex.join(ssh)
    return env


def run_git(
    argv: list[str], env: dict[str, str], cwd: Path, mask: Masker, timeout: float | None, what: str
) -> str:
    """Run one git command; its stdout.

    Raises:
        CloneError: git failed or timed out; the message names ``what``, masked.
    """
    try:
        done = subprocess.run(
            argv,
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise CloneError(f"{what} timed out after {timeout:.0f}s") from None
    except FileNotFoundError:
        raise CloneError("git is not installed on this host (the clone runs on the host)") from None
    if done.returncode != 0:
        lines = [
            ln.strip()
            for ln in done.stderr.splitlines()
            if ln.strip() and not ln.startswith("Cloning into")
        ]
        fatal = [ln for ln in lines if ln.startswith(("fatal:", "error:", "remote:", "warning:"))]
        detail = "; ".join(fatal[-4:] or lines[-3:]) or f"exit code {done.returncode}"
        raise CloneError(mask(f"{what} failed: {detail}"))
    return done.stdout


def clone(
    request: CloneRequest,
    workdir: Path,
    *,
    timeout: float | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> CloneResult:
    """Clone into ``workdir/repo`` on the host; ``workdir`` must be a private empty directory.

    Args:
        request: what to clone.
        workdir: a directory only this process uses (credentials are written there, 0600).
        timeout: seconds before git is stopped.
        log: receives progress lines, already masked.

    Raises:
        UsageError: the URL uses a transport that is not allowed.
        CloneError: git failed (bad URL, wrong credentials, missing branch); masked message.
    """
    check_url(request.url)
    mask = credential_masker(request.secrets())
    private = workdir / "private"
    private.mkdir(mode=0o700)
    env = git_env(request, private)
    repo = workdir / "repo"
    ref = request.tag or request.branch
    argv = ["git", "clone", "--no-progress", "--origin", "origin"]
    if ref:
        argv += ["--branch", ref]
    if request.depth and not (request.commit or request.tag):
        argv += ["--depth", str(request.depth)]
        if request.submodules:
            argv.append("--shallow-submodules")
    if request.submodules and not request.commit:
        argv.append("--recurse-submodules")
    argv += ["--", request.url, str(repo)]
    what = f"git clone of {shown_url(mask(request.url))}" + (f" ({ref})" if ref else "")
    log(
        mask(
            f"cloning {shown_url(request.url)}"
            + (f" at {ref}" if ref else "")
            + (f", commit {request.commit}" if request.commit else "")
            + ("" if request.commit or request.tag else f", depth {request.depth}")
        )
    )
    run_git(argv, env, workdir, mask, timeout, what)
    if request.commit:
        run_git(
            [
                "git",
                "-c",
                "advice.detachedHead=false",
                "checkout",
                "--quiet",
                "--detach",
                request.commit,
                "--",
            ],
            env,
            repo,
            mask,
            timeout,
            f"checkout of {request.commit}",
        )
        if request.submodules:
            run_git(
                ["git", "submodule", "update", "--init", "--recursive"],
                env,
                repo,
                mask,
                timeout,
                "submodule update",
            )
    head = run_git(["git", "rev-parse", "HEAD"], env, repo, mask, timeout, "rev-parse").strip()
    return CloneResult(repo, head, ref or "HEAD")
