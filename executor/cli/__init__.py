"""The ``executor`` command line: thin, it parses arguments and calls the library.

Every :class:`~executor.errors.ExecutorError` becomes one line on stderr and the exit code
its class names; Ctrl-C becomes exit 130.
"""

from __future__ import annotations

from executor.cli.main import main

__all__ = ["main"]
