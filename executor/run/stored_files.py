"""``kestra:///`` URIs in a script's commands: copied into the workspace, the local path in place.

Kestra does this for ``commands``, ``script`` and ``beforeCommands``: it is how a task reads an
earlier task's ``outputFiles[...]``, a FILE input, or each URI of a ForEach over files. Each
distinct URI is copied once per exec, under a directory of its own named from the URI, keeping
the file's name (a tool that looks at the extension still sees it).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import PurePosixPath

STORED_FILES_DIR = ".kestra-inputs"
"""Where, under the workspace, the copies go."""

# Kestra's own pattern: the characters a storage URI may hold, up to the first other one.
_STORAGE_URI = re.compile(r"kestra://[-a-zA-Z0-9%._+~#=/]*")


class StoredFiles:
    """Replaces storage URIs in rendered text by local paths, remembering what to copy."""

    def __init__(self, workspace: str) -> None:
        self.workspace = workspace.rstrip("/")
        self.files: dict[str, str] = {}
        """Workspace-relative path -> URI, for each URI met."""

    def localize(self, text: str) -> str:
        """``text`` with each ``kestra:///`` URI replaced by the absolute path of its copy."""
        return _STORAGE_URI.sub(lambda found: self._local(found.group(0)), text)

    def _local(self, uri: str) -> str:
        name = PurePosixPath(uri.removeprefix("kestra://")).name
        if not name or uri.rstrip("/") == "kestra:":
            return uri  # `kestra://` alone names no file
        digest = hashlib.sha256(uri.encode()).hexdigest()[:12]
        rel = f"{STORED_FILES_DIR}/{digest}/{name}"
        self.files[rel] = uri
        return f"{self.workspace}/{rel}"
