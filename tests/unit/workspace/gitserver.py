"""Test helpers: bare git repositories served over http on 127.0.0.1, optionally with basic auth.

``git http-backend`` runs as a CGI program behind a small threaded WSGI server, so a clone goes
through git's real smart-http protocol, credentials prompt included.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` with a fixed identity; returns stdout."""
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout


def make_repo(source: Path | None, dest: Path, branch: str = "main") -> Path:
    """A bare repository ``dest`` with one commit of ``source``'s files on ``branch``."""
    work = dest.parent / f"{dest.name}-work"
    work.mkdir(parents=True)
    git(work, "init", "-q", "-b", branch)
    if source is not None:
        shutil.copytree(source, work, dirs_exist_ok=True)
    else:
        (work / "README").write_text("readme\n")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "first")
    git(work.parent, "clone", "-q", "--bare", str(work), str(dest))
    git(dest, "config", "http.receivepack", "true")
    git(dest, "config", "uploadpack.allowAnySHA1InWant", "true")
    return work


def push_commit(
    work: Path, bare: Path, files: dict[str, str], message: str, tag: str | None = None
) -> str:
    """Commit ``files`` in the work tree, push to ``bare``; returns the commit id."""
    for name, text in files.items():
        path = work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", message)
    if tag:
        git(work, "tag", tag)
    git(work, "push", "-q", "--tags", str(bare), "HEAD")
    return git(work, "rev-parse", "HEAD").strip()


class _Threading(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class GitServer:
    """A running server; ``url(name)`` is a repository's clone URL."""

    port: int
    requests: list[str] = field(default_factory=list)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"


def _app(
    root: Path, credentials: tuple[str, str] | None, server: list[GitServer]
) -> Callable[..., Iterable[bytes]]:
    expected = None
    if credentials:
        expected = "Basic " + base64.b64encode(":".join(credentials).encode()).decode()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        server[0].requests.append(f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}")
        if expected and environ.get("HTTP_AUTHORIZATION") != expected:
            start_response(
                "401 Unauthorized",
                [("WWW-Authenticate", 'Basic realm="git"'), ("Content-Type", "text/plain")],
            )
            return [b"authentication required\n"]
        env = {k: v for k, v in environ.items() if isinstance(v, str) and k.isupper()}
        env.update(
            {
                "GIT_PROJECT_ROOT": str(root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "REMOTE_USER": credentials[0] if credentials else "",
            }
        )
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        out = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
        ).stdout
        sep = b"\r\n\r\n" if b"\r\n\r\n" in out else b"\n\n"
        head, _, payload = out.partition(sep)
        status, headers = "200 OK", []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = value.strip()
            elif name:
                headers.append((name.strip(), value.strip()))
        start_response(status, headers)
        return [payload]

    return app


@contextmanager
def serve(root: Path, credentials: tuple[str, str] | None = None) -> Iterator[GitServer]:
    """Serve the bare repositories under ``root`` on a free port of 127.0.0.1."""
    holder: list[GitServer] = []
    httpd = make_server(
        "127.0.0.1",
        0,
        _app(root, credentials, holder),
        server_class=_Threading,
        handler_class=_Quiet,
    )
    holder.append(GitServer(httpd.server_address[1]))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder[0]
    finally:
        httpd.shutdown()
        httpd.server_close()
