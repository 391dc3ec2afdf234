"""The browser for the UI tests: Debian's chromium driven by Playwright, and pages that fail the
test on any script error."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from playwright.sync_api import expect

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
WAIT_MS = 120_000  # the machine is shared: a run can wait its turn for a while
expect.set_options(timeout=WAIT_MS)


def launch(playwright: Any) -> Any:
    """Chromium, headless."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


@contextmanager
def watched_page(browser: Any, **context_options: Any) -> Iterator[Any]:
    """A page in a context of its own (``context_options``: viewport, headers...); on leaving,
    the context closes and any script error the page raised fails the test."""
    context = browser.new_context(**context_options)
    context.set_default_timeout(WAIT_MS)
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda exc: problems.append(str(exc)))
    try:
        yield opened
    finally:
        context.close()
    assert not problems, f"script errors on the page: {problems}"
