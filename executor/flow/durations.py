"""Kestra's durations: ISO-8601 (``PT30S``, ``P1DT2H``) in any case, or a template.

Java's ``Duration.parse`` reads ``PT5m`` as five minutes; pydantic's ISO parser wants upper
case, so the text is upper-cased first. A ``timeout`` or ``pauseDuration`` may also be a
template (``"{{ inputs.timeout }}"``): it stays text in the model and is rendered, then
parsed, when the task starts (:func:`parse_duration`).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, TypeAdapter, ValidationError

_ISO = re.compile(r"^[-+]?P[0-9DTHMSW.,]*$", re.IGNORECASE)
_TIMEDELTA: TypeAdapter[timedelta] = TypeAdapter(timedelta)


def _iso_upper(value: Any) -> Any:
    if isinstance(value, str) and _ISO.match(value.strip()):
        return value.strip().upper()
    return value


def _iso_unless_template(value: Any) -> Any:
    if isinstance(value, str) and "{{" in value:
        return value
    return _TIMEDELTA.validate_python(_iso_upper(value))


Duration = Annotated[timedelta, BeforeValidator(_iso_upper)]
"""An ISO-8601 duration in any case (``PT5m``), or seconds as a number."""

DurationOrTemplate = Annotated[timedelta | str, BeforeValidator(_iso_unless_template)]
"""A :data:`Duration`, or a template rendered to one when the task starts."""


def parse_duration(text: str) -> timedelta:
    """Parse rendered duration text (ISO-8601, any case).

    Raises:
        ValueError: the text is not a duration; the message quotes it and shows the form.
    """
    try:
        return _TIMEDELTA.validate_python(_iso_upper(text.strip()))
    except ValidationError:
        raise ValueError(
            f"{text!r} is not an ISO-8601 duration (such as PT30S, PT5M or P1DT2H)"
        ) from None
