"""The wording of template errors: what went wrong, and in which expression."""

from __future__ import annotations

import jinja2
from jinja2.exceptions import SecurityError

from executor.errors import ExecutorError
from executor.flow.template.scan import Piece

_EXCERPT = 120

RENDER_ERRORS = (
    jinja2.TemplateError,
    ExecutorError,
    TypeError,
    ValueError,
    ArithmeticError,
    LookupError,
    AttributeError,
    RecursionError,
)


def describe(exc: BaseException) -> str:
    """One of :data:`RENDER_ERRORS` in words."""
    if isinstance(exc, ExecutorError):
        return exc.message
    if isinstance(exc, SecurityError):
        return f"not allowed: {sentence(exc.message)}"
    if isinstance(exc, jinja2.TemplateError):
        return sentence(exc.message) or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


def sentence(message: str | None) -> str:
    """Jinja's ``message`` without its full stop, as ours go on with ``" in {{ … }}"``."""
    return (message or "").rstrip(".")


def located(piece: Piece | None, multiline: bool) -> str:
    """`` in {{ … }}`` naming ``piece``, with its line if the template has several."""
    if piece is None:
        return ""
    line = f" (line {piece.line})" if multiline else ""
    return f" in {excerpt(piece.source)}{line}"


def excerpt(text: str) -> str:
    """``text``, cut short with an ellipsis if too long for a message."""
    return text if len(text) <= _EXCERPT else text[: _EXCERPT - 1] + "…"
