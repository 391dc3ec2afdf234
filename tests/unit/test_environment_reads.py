"""Environment variables are read in one place per kind of process: ``Settings.from_env`` (and
the server's ``ServerConfig.load``), built by the CLI entry; nothing else reads them, nothing
reads them at import time."""

from __future__ import annotations

import ast
from pathlib import Path

import executor

ROOT = Path(executor.__file__).parent

ALLOWED = {
    "settings.py": "Settings.from_env: the executor's settings",
    "server/config.py": "ServerConfig.load: the server's own settings (EXECUTOR_SERVER_*)",
    "cli/": "the CLI entry: credentials of a remote server, the terminal",
    "worker/client.py": "the API client's Kestra credentials, as `executor workers` takes them",
    "workspace/git.py": "PATH, locale and proxy passed through to git (a child's environment)",
}


def _reads(path: Path) -> list[int]:
    """Lines of ``path`` that name ``os.environ`` or call ``os.getenv``/``os.putenv``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
            and node.attr in ("environ", "getenv", "environb")
        ):
            found.append(node.lineno)
    return found


def test_the_environment_is_read_only_where_settings_are_made() -> None:
    """No module outside the settings (and the CLI entry) reads an environment variable."""
    offending = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if any(rel == allowed or rel.startswith(allowed) for allowed in ALLOWED if allowed):
            continue
        offending += [f"executor/{rel}:{line}" for line in _reads(path)]
    assert offending == [], "read the environment in Settings instead:\n" + "\n".join(offending)
