"""Checking and converting flow inputs given on the command line."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from executor.errors import UsageError
from executor.flow.model import Input
from executor.store.files.artifacts import SCHEME


def _convert(spec: Input, raw: Any) -> Any:
    kind = spec.type
    if kind in ("INT",):
        return int(raw)
    if kind == "FLOAT":
        return float(raw)
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
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00")).isoformat()
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
    known = {s.id for s in specs}
    unknown = sorted(set(given) - known)
    if unknown:
        raise UsageError(
            f"unknown input(s) {', '.join(unknown)}; "
            f"the flow declares: {', '.join(sorted(known)) or 'none'}"
        )
    values: dict[str, Any] = {}
    problems: list[str] = []
    for spec in specs:
        raw = given.get(spec.id, spec.defaults)
        if raw is None:
            if spec.required:
                problems.append(
                    f"input '{spec.id}' ({spec.type}) is required: pass -i {spec.id}=VALUE"
                )
            values[spec.id] = None
            continue
        try:
            values[spec.id] = _convert(spec, raw)
        except (ValueError, TypeError) as exc:
            problems.append(f"input '{spec.id}' is not a valid {spec.type}: {exc}")
    if problems:
        raise UsageError("; ".join(problems))
    return values
