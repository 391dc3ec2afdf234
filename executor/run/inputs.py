"""Checking and converting flow inputs given on the command line."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from executor.errors import UsageError
from executor.flow.model import Input
from executor.store.files.artifacts import SCHEME


def _convert(spec: Input, raw: Any) -> Any:
    kind = spec.type
    if kind in ("INT",):
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"expected a whole number, got {str(raw)!r}") from None
    if kind == "FLOAT":
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"expected a number, got {str(raw)!r}") from None
    if kind in ("BOOLEAN", "BOOL"):
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError("expected true or false")
        return text in ("true", "1", "yes")
    if kind in ("JSON", "ARRAY", "MULTISELECT"):
        return json.loads(raw) if isinstance(raw, str) else raw
    if kind in ("SELECT", "ENUM"):
        if str(raw) not in (spec.values or []):
            raise ValueError(f"expected one of {', '.join(spec.values or [])}")
        return str(raw)
    if kind in ("DATETIME", "DATE"):
        try:
            return datetime.fromisoformat(str(raw).replace("Z", "+00:00")).isoformat()
        except ValueError:
            raise ValueError(f"expected an ISO 8601 date, got {str(raw)!r}") from None
    if kind == "FILE":
        if isinstance(raw, str) and raw.startswith(SCHEME + "/"):
            return raw  # a stored file (another execution's output): read where it is stored
        path = Path(str(raw)).expanduser()
        if not path.is_file():
            raise ValueError(f"no such file {path}")
        return str(path.resolve())
    return str(raw) if raw is not None else None


def resolve_inputs(specs: list[Input], given: dict[str, str]) -> dict[str, Any]:
    """Apply defaults, check required inputs and convert values to their declared types.

    Raises:
        UsageError: an unknown, missing or badly typed input, naming it.
    """
    values, problems = check_inputs(specs, given)
    unknown = sorted(set(given) - {s.id for s in specs})
    if unknown:
        raise UsageError(
            f"unknown input(s) {', '.join(unknown)}; "
            f"the flow declares: {', '.join(sorted(s.id for s in specs)) or 'none'}"
        )
    if problems:
        raise UsageError("; ".join(problem.sentence for problem in problems.values()))
    return values


@dataclass(frozen=True)
class InputProblem:
    """What is wrong with one input: said next to its field, or as a sentence naming it."""

    spec: Input
    missing: bool
    detail: str = ""

    @property
    def message(self) -> str:
        """The short form, for a form field: ``required``, ``not a valid INT: ...``."""
        return "required" if self.missing else f"not a valid {self.spec.type}: {self.detail}"

    @property
    def plain(self) -> str:
        """A sentence naming the input: ``input 'x' (INT) is required``."""
        if self.missing:
            return f"input '{self.spec.id}' ({self.spec.type}) is required"
        return f"input '{self.spec.id}' is {self.message}"

    @property
    def sentence(self) -> str:
        """As ``plain``, with how to give a missing one on the command line."""
        if self.missing:
            return f"{self.plain}: pass -i {self.spec.id}=VALUE"
        return self.plain


def check_inputs(
    specs: list[Input], given: dict[str, str]
) -> tuple[dict[str, Any], dict[str, InputProblem]]:
    """Each declared input's value (its default when not given, converted to its type), and
    the problem of each input that has one (missing, or not of its type), by input id."""
    values: dict[str, Any] = {}
    problems: dict[str, InputProblem] = {}
    for spec in specs:
        raw = given.get(spec.id, spec.defaults)
        if raw is None:
            if spec.required:
                problems[spec.id] = InputProblem(spec, missing=True)
            values[spec.id] = None
            continue
        try:
            values[spec.id] = _convert(spec, raw)
        except (ValueError, TypeError) as exc:
            problems[spec.id] = InputProblem(spec, missing=False, detail=str(exc))
    return values, problems
