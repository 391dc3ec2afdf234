"""The one secret masker: values that must never be shown, replaced by ``******`` in any text.

Every loaded secret, credential and token goes through a :class:`Masker` before a line is
logged, stored, shown or put in an error: the run's secrets (``flow.secrets.Secrets`` holds
one), a clone's credentials, a registry's password echoed by an engine. Each value is masked
whole and each line of a multi-line value on its own (logs are read line by line); values
shorter than three characters are never masked: they would blank out ordinary text.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "******"
MIN_MASKED_LENGTH = 3


class Masker:
    """Replaces every value it was given in any text, longest values first. Thread-safe."""

    def __init__(self, values: Iterable[str | None] = ()) -> None:
        self._masked: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()
        self.remember(*(v for v in values if v))

    def remember(self, *values: str) -> None:
        """Mask these values too from now on (each line of a multi-line value on its own)."""
        with self._lock:
            before = len(self._masked)
            for value in values:
                self._masked.update(_candidates(value))
            if len(self._masked) != before:
                self._pattern = None

    def __bool__(self) -> bool:
        return bool(self._masked)

    def mask(self, text: str) -> str:
        """``text`` with every value replaced by ``******``."""
        if not self._masked or not text:
            return text
        pattern = self._pattern
        if pattern is None:
            with self._lock:
                ordered = sorted(self._masked, key=len, reverse=True)
                pattern = self._pattern = re.compile("|".join(re.escape(v) for v in ordered))
        return pattern.sub(MASK, text)

    def __call__(self, text: str) -> str:
        """:meth:`mask`: a masker is handed around as a ``Callable[[str], str]`` too."""
        return self.mask(text)

    def mask_all(self, texts: list[str]) -> list[str]:
        """:meth:`mask` over many texts; the same list when there is nothing to mask."""
        if not self._masked:
            return texts
        return [self.mask(text) for text in texts]

    def mask_value(self, obj: Any) -> Any:
        """A copy of ``obj`` with every string inside it masked (dict keys and values, lists,
        tuples); anything else is returned unchanged."""
        if isinstance(obj, str):
            return self.mask(obj)
        if isinstance(obj, Mapping):
            return {self.mask_value(k): self.mask_value(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self.mask_value(v) for v in obj]
        if isinstance(obj, tuple):
            return tuple(self.mask_value(v) for v in obj)
        return obj


def _candidates(value: str) -> Iterable[str]:
    if len(value) >= MIN_MASKED_LENGTH:
        yield value
    if "\n" in value:
        for line in value.splitlines():
            line = line.strip()
            if len(line) >= MIN_MASKED_LENGTH:
                yield line


def masked(text: str, values: Iterable[str | None]) -> str:
    """``text`` with ``values`` masked (a masker for one use)."""
    return Masker(values).mask(text)
