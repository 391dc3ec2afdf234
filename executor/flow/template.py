"""Render Kestra's Pebble templates with a sandboxed Jinja2 made Pebble-compatible.

How: the template is cut into text, ``{{ … }}``, ``{% … %}`` and ``{# … #}`` pieces (quotes and
brackets respected). Each expression is parsed with *Pebble's* grammar and operator precedence
and re-emitted as a fully parenthesised Jinja expression; text is left alone. A sandboxed Jinja
environment carrying Pebble's and Kestra's filters, tests and functions then renders it.

Pebble behaviour kept (it differs from plain Jinja):

* ``a ?? b`` (``b`` when ``a`` is undefined or null), ``a ??? b`` (only when undefined),
  ``c ? x : y``, ``contains``, ``equals``, ``a..b`` and ``range()`` (both inclusive),
  ``null``; ``not`` binds tightest and filters bind looser than ``~``/``+`` (Pebble's table).
* ``{% elseif %}``, ``{% verbatim %}``, ``loop.index`` counting from 0, ``for`` over a map
  giving entries with ``key`` and ``value``.
* ``true``/``false`` print as such, null prints nothing, maps and lists print as JSON.
* An undefined name is an error naming the dotted path and the expression, never ``""``.

Not supported: string interpolation ``"#{…}"``, Java methods on values (``.size()``), and the
Kestra functions that need a server (``read``, ``kv``, ``render``…).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from typing import Any, NamedTuple, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from jinja2.environment import TemplateExpression
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import MAX_RANGE, SandboxedEnvironment
from jinja2.utils import missing

from executor.errors import ExecutorError, TemplateError
from executor.flow.secrets import Secrets

_CACHE_SIZE = 2048
_EXCERPT = 120


def truthy(value: Any) -> bool:
    """Tell whether a rendered ``runIf``-style value counts as true.

    Args:
        value: a value from :meth:`Renderer.evaluate` or a rendered string.

    Returns:
        ``False`` for ``None``, ``False``, zero, empty containers and the strings ``"false"``,
        ``"0"``, ``""`` and ``"null"`` (any case, surrounding blanks ignored); else ``True``.
    """
    if isinstance(value, str):
        return value.strip().lower() not in {"false", "0", "", "null"}
    return bool(value)


class Renderer:
    """Render templates against a context, Pebble-style, sandboxed.

    Args:
        secrets: where ``secret('NAME')`` looks; no secrets at all when ``None``.
        clock: what ``now()`` reads; the current UTC time when ``None``.
    """

    def __init__(
        self, secrets: Secrets | None = None, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self._secrets = secrets if secrets is not None else Secrets()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._env = _PebbleEnvironment(
            undefined=_PathUndefined,
            finalize=_finalize,
            keep_trailing_newline=True,
            autoescape=False,
        )
        self._env.filters.update(_FILTERS)
        self._env.tests.update(_TESTS)
        self._env.globals.clear()
        self._env.globals.update(_FUNCTIONS)
        self._env.globals.update(secret=self._secret, now=self._now)
        self._templates: dict[str, _Compiled] = {}
        self._expressions: dict[str, TemplateExpression] = {}

    def render(self, template: str, context: Mapping[str, Any], *, where: str) -> str:
        """Render one template string.

        Args:
            template: the text; returned as is when it holds no ``{{`` or ``{%``.
            context: the variables (``inputs``, ``outputs``, ``vars``, ``flow``…).
            where: the location named in errors, e.g. ``"flow.yaml:12 task 'extract'"``.

        Returns:
            The rendered text.

        Raises:
            TemplateError: a syntax error, an undefined name, an unsafe access, a missing
                secret, or a filter that failed; the message names the expression.
        """
        if "{{" not in template and "{%" not in template:
            return template
        compiled = self._compile(template, where)
        tracker = _Tracker()
        variables = dict(context)
        variables[_MARKER] = tracker.at
        variables[_TEXTS] = compiled.translation.texts
        token = _PATHS.set(_root_paths(context))
        try:
            return compiled.template.render(variables)
        except _RENDER_ERRORS as exc:
            piece = compiled.piece(tracker.current)
            # `from None`: the original error may quote a secret value.
            raise self._error(_describe(exc) + _located(piece, compiled.multiline),
                              where=where) from None
        finally:
            _PATHS.reset(token)

    def render_value(self, value: Any, context: Mapping[str, Any], *, where: str) -> Any:
        """Render every string inside ``value``: dict keys and values, list items.

        Args:
            value: a string, a container of them, or anything else (returned unchanged).
            context: the variables.
            where: the location named in errors.

        Returns:
            A copy of ``value`` with every string rendered.

        Raises:
            TemplateError: as :meth:`render`.
        """
        if isinstance(value, str):
            return self.render(value, context, where=where)
        if isinstance(value, Mapping):
            return {self.render_value(k, context, where=where):
                    self.render_value(v, context, where=where) for k, v in value.items()}
        if isinstance(value, list):
            return [self.render_value(v, context, where=where) for v in value]
        if isinstance(value, tuple):
            return tuple(self.render_value(v, context, where=where) for v in value)
        return value

    def evaluate(self, expression_template: str, context: Mapping[str, Any], *, where: str) -> Any:
        """Evaluate a template that is exactly one ``{{ expression }}`` to its Python value.

        Args:
            expression_template: e.g. ``"{{ inputs.n > 3 }}"``; any other template is rendered
                to a string as by :meth:`render`.
            context: the variables.
            where: the location named in errors.

        Returns:
            The expression's value (``"{{ false }}"`` gives ``False``), or the rendered string.

        Raises:
            TemplateError: as :meth:`render`; an undefined result is an error too.
        """
        body = _single_expression(expression_template)
        if body is None:
            return self.render(expression_template, context, where=where)
        shown = _excerpt(expression_template.strip())
        expression = self._expressions.get(body)
        if expression is None:
            try:
                expression = self._env.compile_expression(_translate_expression(body),
                                                          undefined_to_none=False)
            except _PebbleSyntaxError as exc:
                raise self._error(f"syntax error in {shown}: {exc}", where=where) from None
            except jinja2.TemplateSyntaxError as exc:
                raise self._error(f"{_sentence(exc.message)} in {shown}", where=where) from None
            _remember(self._expressions, body, expression)
        token = _PATHS.set(_root_paths(context))
        try:
            value = expression(dict(context))
            if isinstance(value, jinja2.Undefined):
                value._fail_with_undefined_error()
            return value
        except _RENDER_ERRORS as exc:
            raise self._error(f"{_describe(exc)} in {shown}", where=where) from None
        finally:
            _PATHS.reset(token)

    def _compile(self, template: str, where: str) -> _Compiled:
        compiled = self._templates.get(template)
        if compiled is not None:
            return compiled
        multiline = "\n" in template.strip()
        try:
            translation = _translate_template(template)
        except _PebbleSyntaxError as exc:
            raise self._error(f"syntax error{_located(exc.piece, multiline)}: {exc}",
                              where=where) from None
        try:
            jinja_template = self._env.from_string(translation.source)
        except jinja2.TemplateSyntaxError as exc:
            raise self._explain_compile_error(exc, translation, multiline, where) from None
        compiled = _Compiled(jinja_template, translation, multiline)
        _remember(self._templates, template, compiled)
        return compiled

    def _explain_compile_error(self, exc: jinja2.TemplateSyntaxError, translation: _Translation,
                               multiline: bool, where: str) -> TemplateError:
        # Jinja reports a line of the translated text; find the expression it chokes on.
        for piece, expression in zip(translation.pieces, translation.expressions, strict=True):
            try:
                self._env.compile_expression(expression)
            except jinja2.TemplateSyntaxError as inner:
                return self._error(f"{_sentence(inner.message)}{_located(piece, multiline)}",
                                   where=where)
        line = f" (line {exc.lineno})" if multiline else ""
        return self._error(f"syntax error{line}: {_sentence(exc.message)}", where=where)

    def _error(self, message: str, *, where: str) -> TemplateError:
        # An error can quote a value (`invalid literal for int(): '<the secret>'`).
        return TemplateError(self._secrets.mask(message), where=where)

    def _secret(self, name: Any) -> str:
        if isinstance(name, jinja2.Undefined):
            name._fail_with_undefined_error()
        if not isinstance(name, str):
            raise TemplateError(f"secret() needs a name, got {_to_text(name)!r}")
        return self._secrets.get(name)

    def _now(self, timeZone: str | None = None) -> str:
        moment = self._clock()
        if timeZone is not None:
            moment = moment.astimezone(_zone(timeZone))
        return moment.isoformat()


# --------------------------------------------------------------------------- errors, caching

_RENDER_ERRORS = (
    jinja2.TemplateError, ExecutorError, TypeError, ValueError, ArithmeticError, LookupError,
    AttributeError, RecursionError,
)


class _PebbleSyntaxError(Exception):
    """A Pebble expression or template that cannot be parsed; ``piece`` is where, if known."""

    def __init__(self, message: str, piece: _Piece | None = None) -> None:
        super().__init__(message)
        self.piece = piece


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ExecutorError):
        return exc.message
    if isinstance(exc, SecurityError):
        return f"not allowed: {_sentence(exc.message)}"
    if isinstance(exc, jinja2.TemplateError):
        return _sentence(exc.message) or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


def _sentence(message: str | None) -> str:
    # Jinja ends its messages with a full stop; ours go on with " in {{ … }}".
    return (message or "").rstrip(".")


def _located(piece: _Piece | None, multiline: bool) -> str:
    if piece is None:
        return ""
    line = f" (line {piece.line})" if multiline else ""
    return f" in {_excerpt(piece.source)}{line}"


def _excerpt(text: str) -> str:
    return text if len(text) <= _EXCERPT else text[: _EXCERPT - 1] + "…"


def _remember(cache: dict[str, Any], key: str, value: Any) -> None:
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    cache[key] = value


# --------------------------------------------------------------------------- template pieces

_MARKER = "_pebble_at"
_TEXTS = "_pebble_text"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_OPENING = re.compile(r"\{[{%#]")
_END_VERBATIM = re.compile(r"\{%-?\s*end(?:raw|verbatim)\s*-?%\}")
_TAG = re.compile(r"\s*([A-Za-z_]\w*)(.*)", re.DOTALL)
_FOR = re.compile(r"\s*([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)\s+in\s(.*)", re.DOTALL)
_SET = re.compile(r"\s*([A-Za-z_]\w*)\s*=(?!=)(.*)", re.DOTALL)


@dataclass(frozen=True)
class _Piece:
    """One piece of the original template: text, comment, raw block, ``{{ }}`` or ``{% %}``.

    ``left``/``right`` are the whitespace controls (``"-"`` or ``""``) on the outer sides; for a
    raw block, ``source`` is its content already trimmed by the inner ones. For text and raw
    blocks, ``body`` keeps the untrimmed text (to keep line numbers).
    """

    kind: str  # "text", "comment", "raw", "print" or "tag"
    source: str
    line: int
    body: str = ""
    left: str = ""
    right: str = ""


@dataclass(frozen=True)
class _Translation:
    source: str
    pieces: tuple[_Piece, ...]  # the expression-bearing pieces, by marker index
    expressions: tuple[str, ...]  # their Jinja translations, by the same index
    texts: tuple[str, ...]  # text Jinja must not see (it would rewrite its line endings)


@dataclass(frozen=True)
class _Compiled:
    template: jinja2.Template
    translation: _Translation
    multiline: bool

    def piece(self, index: int) -> _Piece | None:
        pieces = self.translation.pieces
        return pieces[index] if 0 <= index < len(pieces) else None


class _Tracker:
    """Remembers which expression is being evaluated, to name it when it fails."""

    __slots__ = ("current",)

    def __init__(self) -> None:
        self.current = -1

    def at(self, index: int) -> bool:
        self.current = index
        return False  # so that `_pebble_at(i) or (expr)` is worth `expr`


def _scan(template: str) -> Iterator[_Piece]:
    pos, size = 0, len(template)
    while pos < size:
        match = _OPENING.search(template, pos)
        if match is None:
            yield _text_piece(template, pos, size)
            return
        start = match.start()
        line = template.count("\n", 0, start) + 1
        if start > pos:
            yield _text_piece(template, pos, start)
        kind = template[start + 1]
        body_start = start + 2
        left = "-" if template.startswith("-", body_start) else ""
        body_start += len(left)
        if kind == "#":
            end = template.find("#}", body_start)
            if end < 0:
                raise _PebbleSyntaxError("a comment '{#' is never closed by '#}'",
                                         _Piece("comment", template[start:start + 40], line))
        else:
            end = _find_closer(template, body_start, "}}" if kind == "{" else "%}")
            if end < 0:
                raise _PebbleSyntaxError(
                    f"'{template[start:start + 2]}' is never closed by "
                    f"'{'}}' if kind == '{' else '%}'}' (or a quote inside it is not closed)",
                    _Piece("text", template[start:].split("\n", 1)[0], line))
        right = "-" if end > body_start and template[end - 1] == "-" else ""
        body = template[body_start:end - len(right)]
        kinds = {"#": "comment", "{": "print", "%": "tag"}
        piece = _Piece(kinds[kind], template[start:end + 2], line, body, left, right)
        pos = end + 2
        keyword = body.split(None, 1)[0] if body.strip() else ""
        if piece.kind == "tag" and keyword in ("raw", "verbatim"):
            close = _END_VERBATIM.search(template, pos)
            if close is None:
                raise _PebbleSyntaxError(f"'{{% {keyword} %}}' is never closed", piece)
            closing = close.group(0)
            content = template[pos:close.start()]
            trimmed = content.lstrip() if right else content
            trimmed = trimmed.rstrip() if closing.startswith("{%-") else trimmed
            yield _Piece("raw", trimmed, line, content, left,
                         "-" if closing.endswith("-%}") else "")
            pos = close.end()
            continue
        yield piece


def _text_piece(template: str, start: int, end: int) -> _Piece:
    text = template[start:end]
    return _Piece("text", text, template.count("\n", 0, start) + 1, text)


def _find_closer(template: str, pos: int, closer: str) -> int:
    depth, size = 0, len(template)
    while pos < size:
        char = template[pos]
        if char in "'\"":
            pos += 1
            while pos < size and template[pos] != char:
                pos += 2 if template[pos] == "\\" else 1
            if pos >= size:
                return -1
        elif depth == 0 and template.startswith(closer, pos):
            return pos
        elif char in "([{":
            depth += 1
        elif char in ")]}" and depth:
            depth -= 1
        pos += 1
    return -1


def _trim_whitespace(pieces: list[_Piece]) -> list[_Piece]:
    # Whitespace control is applied here, not by Jinja, as text may bypass Jinja (see texts).
    result = list(pieces)
    for index, piece in enumerate(result):
        if piece.kind == "text":
            continue
        if piece.left and index > 0 and result[index - 1].kind == "text":
            before = result[index - 1]
            result[index - 1] = replace(before, source=before.source.rstrip())
        if piece.right and index + 1 < len(result) and result[index + 1].kind == "text":
            after = result[index + 1]
            result[index + 1] = replace(after, source=after.source.lstrip())
    return result


def _line_breaks(text: str) -> int:
    return len(_LINE_BREAK.findall(text))


def _translate_template(template: str) -> _Translation:
    out: list[str] = []
    pieces: list[_Piece] = []
    expressions: list[str] = []
    texts: list[str] = []

    def expression(piece: _Piece, text: str) -> str:
        try:
            translated = _translate_expression(text)
        except _PebbleSyntaxError as exc:
            raise _PebbleSyntaxError(str(exc), piece) from None
        pieces.append(piece)
        expressions.append(translated)
        # Keep the line count, so Jinja's line numbers stay those of the original.
        return f"({_MARKER}({len(pieces) - 1}) or {translated})" + "\n" * _line_breaks(text)

    def verbatim(text: str, original: str) -> str:
        texts.append(text)
        breaks = "\n" * _line_breaks(original)
        return f"{{{{ {_TEXTS}[{len(texts) - 1}]{breaks} }}}}"

    for piece in _trim_whitespace(list(_scan(template))):
        if piece.kind == "text" and "\r" not in piece.source:
            out.append(piece.source)
            trimmed_lines = _line_breaks(piece.body) - _line_breaks(piece.source)
            if trimmed_lines:
                out.append("{#" + "\n" * trimmed_lines + "#}")
        elif piece.kind in ("text", "raw"):
            out.append(verbatim(piece.source, piece.body))
        elif piece.kind == "comment":
            out.append("{#" + "\n" * _line_breaks(piece.source) + "#}")
        elif piece.kind == "print":
            out.append(f"{{{{ {expression(piece, piece.body)} }}}}")
        else:
            out.append(f"{{% {_translate_tag(piece, expression)} %}}")
    return _Translation("".join(out), tuple(pieces), tuple(expressions), tuple(texts))


def _translate_tag(piece: _Piece, expression: Callable[[_Piece, str], str]) -> str:
    match = _TAG.match(piece.body)
    if match is None:
        return piece.body
    keyword, rest = match.groups()
    if keyword in ("if", "elseif", "elif"):
        return f"{'if' if keyword == 'if' else 'elif'} {expression(piece, rest)}"
    if keyword == "for":
        loop = _FOR.match(rest)
        if loop is None:
            raise _PebbleSyntaxError("expected '{% for item in items %}'", piece)
        return f"for {loop.group(1)} in _pebble_iter({expression(piece, loop.group(2))})"
    if keyword == "set":
        assignment = _SET.match(rest)
        if assignment is not None:
            return f"set {assignment.group(1)} = {expression(piece, assignment.group(2))}"
    return piece.body


def _single_expression(text: str) -> str | None:
    stripped = text.strip()
    if not (stripped.startswith("{{") and stripped.endswith("}}")):
        return None
    try:
        pieces = list(_scan(stripped))
    except _PebbleSyntaxError:
        return None
    if len(pieces) == 1 and pieces[0].kind == "print":
        return pieces[0].body
    return None


# --------------------------------------------------------------------------- Pebble expressions

_TOKEN = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op>\?\?\?|\?\?|\.\.|==|!=|<=|>=|[-+*/%~|.,:?()\[\]{}<>=])
    """,
    re.VERBOSE | re.DOTALL,
)

# Pebble's binary operators and their precedence (Pebble core plus Kestra's `??`, `???`, `in`).
_BINARY = {
    "or": 10, "and": 15, "is": 20, "is not": 20, "contains": 20, "in": 20, "not in": 20,
    "==": 30, "equals": 30, "!=": 30, "<": 30, ">": 30, "<=": 30, ">=": 30,
    "+": 40, "-": 40, "*": 60, "/": 60, "%": 60, "|": 100, "~": 110,
    "..": 120, "??": 120, "???": 120,
}
_UNARY_PRECEDENCE = 500
_WORD_OPERATORS = {"or", "and", "contains", "in", "equals"}
_LITERALS = {"true": "true", "false": "false", "null": "none", "none": "none"}
_LOOP_RENAMES = {"index": "index0", "revindex": "revindex0"}


class _Token(NamedTuple):
    kind: str  # "name", "number", "string", "op" or "end"
    text: str


def _tokenize(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if match is None:
            char = source[pos]
            if char in "'\"":
                raise _PebbleSyntaxError(f"a string opened with {char} is never closed")
            raise _PebbleSyntaxError(f"unexpected character {char!r}")
        kind = match.lastgroup or "op"
        if kind != "space":
            tokens.append(_Token(kind, match.group()))
        pos = match.end()
    tokens.append(_Token("end", ""))
    return tokens


def _translate_expression(source: str) -> str:
    """Translate one Pebble expression into an equivalent, fully parenthesised Jinja one."""
    if not source.strip():
        raise _PebbleSyntaxError("empty expression")
    return _Translator(_tokenize(source)).translate()


class _Translator:
    """A Pratt parser over Pebble's grammar that emits Jinja source as it goes."""

    def __init__(self, tokens: list[_Token]) -> None:
        self._tokens = tokens
        self._pos = 0

    def translate(self) -> str:
        result = self._expression(0)
        if self._peek().kind != "end":
            raise _PebbleSyntaxError(f"unexpected {self._shown(self._peek())}")
        return result

    def _peek(self, ahead: int = 0) -> _Token:
        return self._tokens[min(self._pos + ahead, len(self._tokens) - 1)]

    def _next(self) -> _Token:
        token = self._peek()
        self._pos += 1
        return token

    def _is_op(self, text: str, ahead: int = 0) -> bool:
        token = self._peek(ahead)
        return token.kind == "op" and token.text == text

    def _expect(self, text: str) -> None:
        if not self._is_op(text):
            raise _PebbleSyntaxError(f"expected '{text}' but found {self._shown(self._peek())}")
        self._pos += 1

    @staticmethod
    def _shown(token: _Token) -> str:
        return "the end of the expression" if token.kind == "end" else repr(token.text)

    def _binary(self) -> tuple[str, int] | None:
        token, following = self._peek(), self._peek(1)
        if token.kind == "op" and token.text in _BINARY:
            return token.text, 1
        if token.kind != "name":
            return None
        if token.text == "is":
            negated = following.kind == "name" and following.text == "not"
            return ("is not", 2) if negated else ("is", 1)
        if token.text == "not" and following.kind == "name" and following.text == "in":
            return "not in", 2
        if token.text in _WORD_OPERATORS:
            return token.text, 1
        return None

    def _expression(self, min_precedence: int) -> str:
        token = self._peek()
        if token.kind == "name" and token.text == "not":
            self._next()
            left = f"(not {self._expression(_UNARY_PRECEDENCE)})"
        elif token.kind == "op" and token.text in ("-", "+"):
            self._next()
            left = f"({token.text}{self._expression(_UNARY_PRECEDENCE)})"
        else:
            left = self._primary()
        while (operator := self._binary()) is not None:
            symbol, width = operator
            precedence = _BINARY[symbol]
            if precedence < min_precedence:
                break
            self._pos += width
            if symbol == "|":
                left = self._filter(left)
            elif symbol in ("is", "is not"):
                left = self._test(left, symbol)
            else:
                left = _combine(symbol, left, self._expression(precedence + 1))
        if min_precedence == 0 and self._is_op("?"):
            self._next()
            yes = self._expression(0)
            self._expect(":")
            no = self._expression(0)
            left = f"({yes} if {left} else {no})"
        return left

    def _primary(self) -> str:
        token = self._next()
        if token.kind == "number":
            return self._postfix(token.text, is_loop=False)
        if token.kind == "string":
            # Jinja turns a raw CR inside a literal into LF; as an escape it survives.
            return self._postfix(token.text.replace("\r", "\\r"), is_loop=False)
        if token.kind == "name":
            literal = _LITERALS.get(token.text.lower())
            if literal is not None:
                return literal
            if token.text in _BINARY or token.text in ("is", "not"):
                raise _PebbleSyntaxError(f"expected a value but found {token.text!r}")
            if self._is_op("("):
                self._next()
                return self._postfix(f"{token.text}({self._arguments()})", is_loop=False)
            return self._postfix(token.text, is_loop=token.text == "loop")
        if token.kind == "op" and token.text == "(":
            inner = self._expression(0)
            self._expect(")")
            return self._postfix(f"({inner})", is_loop=False)
        if token.kind == "op" and token.text == "[":
            items = self._sequence("]", self._item)
            return self._postfix(f"[{items}]", is_loop=False)
        if token.kind == "op" and token.text == "{":
            # Spaces inside the braces: a nested map must never read as `}}`.
            return self._postfix(f"{{ {self._sequence('}', self._pair)} }}", is_loop=False)
        raise _PebbleSyntaxError(f"expected a value but found {self._shown(token)}")

    def _postfix(self, expression: str, *, is_loop: bool) -> str:
        while True:
            if self._is_op("."):
                self._next()
                token = self._next()
                if token.kind == "number" and token.text.isdigit():
                    expression = f"{expression}[{token.text}]"
                elif token.kind == "name":
                    name = _LOOP_RENAMES.get(token.text, token.text) if is_loop else token.text
                    expression = f"{expression}.{name}"
                    if self._is_op("("):
                        self._next()
                        expression = f"{expression}({self._arguments()})"
                else:
                    raise _PebbleSyntaxError(
                        f"expected a name after '.' but found {self._shown(token)}")
            elif self._is_op("["):
                self._next()
                key = self._expression(0)
                self._expect("]")
                expression = f"{expression}[{key}]"
            else:
                return expression
            is_loop = False

    def _sequence(self, closer: str, item: Callable[[], str]) -> str:
        items: list[str] = []
        while not self._is_op(closer):
            items.append(item())
            if not self._is_op(","):
                break
            self._next()
        self._expect(closer)
        return ", ".join(items)

    def _item(self) -> str:
        return self._expression(0)

    def _pair(self) -> str:
        key = self._expression(0)
        self._expect(":")
        return f"{key}: {self._expression(0)}"

    def _argument(self) -> str:
        if self._peek().kind == "name" and self._is_op("=", 1):
            name = self._next().text
            self._next()
            return f"{name}={self._expression(0)}"
        return self._expression(0)

    def _arguments(self) -> str:
        return self._sequence(")", self._argument)

    def _filter(self, subject: str) -> str:
        token = self._next()
        if token.kind != "name":
            raise _PebbleSyntaxError(f"expected a filter name after '|' but found "
                                     f"{self._shown(token)}")
        if self._is_op("("):
            self._next()
            return f"({subject} | {token.text}({self._arguments()}))"
        return f"({subject} | {token.text})"

    def _test(self, subject: str, symbol: str) -> str:
        token = self._next()
        if token.kind != "name":
            raise _PebbleSyntaxError(f"expected a test name after 'is' but found "
                                     f"{self._shown(token)}")
        arguments = ""
        if self._is_op("("):
            self._next()
            arguments = f"({self._arguments()})"
        return f"({subject} {symbol} {token.text}{arguments})"


def _combine(symbol: str, left: str, right: str) -> str:
    if symbol == "??":
        return f"({left} if {left} is _pebble_present else {right})"
    if symbol == "???":
        return f"({left} if {left} is defined else {right})"
    if symbol == "contains":
        return f"_pebble_contains({left}, {right})"
    if symbol == "..":
        return f"_pebble_range({left}, {right})"
    if symbol == "~":
        return f"_pebble_concat({left}, {right})"
    return f"({left} {'==' if symbol == 'equals' else symbol} {right})"


# --------------------------------------------------------------------------- sandbox, undefined

_PATHS: ContextVar[dict[int, str] | None] = ContextVar("pebble_paths", default=None)
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")


def _root_paths(context: Mapping[str, Any]) -> dict[int, str]:
    # Containers of the context by identity, so a missing key can be named by its full path.
    return {id(v): str(k) for k, v in context.items() if isinstance(v, Mapping | list | tuple)}


def _child_path(parent: str | None, key: Any) -> str | None:
    if parent is None:
        return None
    if isinstance(key, str) and _IDENTIFIER.fullmatch(key):
        return f"{parent}.{key}"
    return f"{parent}[{key!r}]"


class _PathUndefined(jinja2.StrictUndefined):
    """Strict everywhere except attribute and item access, which chain and record the path.

    So ``outputs.x.vars.y ?? 'd'`` and ``| default`` work when ``outputs.x`` is missing, and
    using the value anywhere else fails with ``undefined name 'outputs.x.vars.y'``.
    """

    __slots__ = ("_path", "_root")

    def __init__(
        self,
        hint: str | None = None,
        obj: Any = missing,
        name: str | None = None,
        exc: type[jinja2.TemplateRuntimeError] = UndefinedError,
        path: str | None = None,
        root: str | None = None,
    ) -> None:
        super().__init__(hint, obj, name, exc)
        if path is None and obj is missing and isinstance(name, str):
            path = name
        self._path = path
        self._root = root or path

    @property
    def _undefined_message(self) -> str:
        if self._undefined_hint or self._path is None:
            return super()._undefined_message
        if self._root and self._root != self._path:
            return f"undefined name {self._path!r} ({self._root!r} is not defined)"
        return f"undefined name {self._path!r}"

    def __getattr__(self, name: str) -> Any:
        if name[:2] == "__":
            raise AttributeError(name)
        return self._child(name)

    def __getitem__(self, key: Any) -> Any:
        return self._child(key)

    def _child(self, key: Any) -> _PathUndefined:
        if self._undefined_exception is not UndefinedError:
            self._fail_with_undefined_error()
        path = _child_path(self._path, key)
        if path is None:  # an unknown parent: keep the message about the first missing link
            return self
        return _PathUndefined(obj=self, name=key, path=path, root=self._root)


def _fail_if_undefined(value: Any) -> None:
    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()


class _PebbleEnvironment(SandboxedEnvironment):
    """The sandbox, with Pebble's lookup: a map's keys win over Python attributes."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, jinja2.Undefined):
            return obj[attribute]
        if isinstance(obj, Mapping) and attribute in obj:
            return self._track(obj, attribute, obj[attribute])
        return self._track(obj, attribute, super().getattr(obj, attribute))

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, jinja2.Undefined):
            return obj[argument]
        return self._track(obj, argument, super().getitem(obj, argument))

    @staticmethod
    def _track(parent: Any, key: Any, value: Any) -> Any:
        paths = _PATHS.get()
        parent_path = paths.get(id(parent)) if paths is not None else None
        if isinstance(value, jinja2.Undefined):
            if value._undefined_exception is not UndefinedError:
                value._fail_with_undefined_error()  # unsafe access: never chain past it
            path = _child_path(parent_path, key)
            if path is None:
                return value
            return _PathUndefined(obj=parent, name=key, path=path)
        if paths is not None and parent_path is not None and isinstance(
                value, Mapping | list | tuple):
            paths.setdefault(id(value), _child_path(parent_path, key) or parent_path)
        return value


def _finalize(value: Any) -> Any:
    _fail_if_undefined(value)
    return _to_text(value)


def _to_text(value: Any) -> str:
    """Pebble's (Kestra's) printing: ``true``/``false``, null as nothing, containers as JSON."""
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, Mapping | list | tuple):
        return _dump_json(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _dump_json(value: Any) -> str:
    _fail_if_undefined(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def _json_default(value: Any) -> Any:
    _fail_if_undefined(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    raise TypeError(f"cannot write a {type(value).__name__} as JSON")


# --------------------------------------------------------------------------- Pebble library


class _Entry(NamedTuple):
    """One item of a map in ``{% for entry in map %}``, as Pebble gives it."""

    key: Any
    value: Any


def _pebble_iter(value: Any) -> Any:
    _fail_if_undefined(value)
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [_Entry(k, v) for k, v in value.items()]
    return value


def _pebble_range(start: Any, end: Any, step: Any = 1) -> list[int]:
    for value in (start, end, step):
        _fail_if_undefined(value)
    first, last, increment = int(start), int(end), int(step)
    if increment == 0:
        raise ValueError("range() step must not be 0")
    count = (last - first) // increment + 1
    if count > MAX_RANGE:
        raise ValueError(f"range() of {count} items is larger than the limit of {MAX_RANGE}")
    return list(range(first, last + (1 if increment > 0 else -1), increment))


def _pebble_contains(container: Any, item: Any) -> bool:
    _fail_if_undefined(container)
    _fail_if_undefined(item)
    if container is None:
        return False
    if isinstance(container, str):
        return _to_text(item) in container
    if isinstance(item, list | tuple) and not isinstance(container, Mapping):
        return all(element in container for element in item)
    return bool(item in container)


def _pebble_concat(left: Any, right: Any) -> str:
    _fail_if_undefined(left)
    _fail_if_undefined(right)
    return _to_text(left) + _to_text(right)


def _is_present(value: Any) -> bool:
    return not isinstance(value, jinja2.Undefined) and value is not None


def _is_null(value: Any) -> bool:
    _fail_if_undefined(value)
    return value is None


def _is_empty(value: Any) -> bool:
    _fail_if_undefined(value)
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, Mapping | list | tuple | set):
        return len(value) == 0
    return False


def _default(value: Any, default: Any = "") -> Any:
    """Pebble's ``default``: the fallback for undefined, null, blank text, empty containers."""
    if not isinstance(value, jinja2.Undefined) and not _is_empty(value):
        return value
    return default


def _keys(value: Any) -> list[Any]:
    _fail_if_undefined(value)
    if isinstance(value, Mapping):
        return list(value.keys())
    if isinstance(value, list | tuple):
        return list(range(len(value)))
    raise TypeError(f"keys needs a map or a list, got {type(value).__name__}")


def _values(value: Any) -> list[Any]:
    _fail_if_undefined(value)
    if isinstance(value, Mapping):
        return list(value.values())
    if isinstance(value, list | tuple):
        return list(value)
    raise TypeError(f"values needs a map or a list, got {type(value).__name__}")


def _length(value: Any) -> int:
    _fail_if_undefined(value)
    if value is None:
        return 0
    if isinstance(value, str | Mapping | list | tuple | set):
        return len(value)
    return len(_to_text(value))


def _join(value: Any, separator: str = "") -> str:
    _fail_if_undefined(value)
    if value is None:
        return ""
    return str(separator).join(_to_text(item) for item in value)


def _replace(value: Any, pairs: Any, replacement: Any = None, count: int = -1, *,
             regexp: bool = False) -> Any:
    """Kestra's ``replace({'old': 'new'}, regexp=false)``, also Jinja's ``replace(old, new)``."""
    _fail_if_undefined(value)
    if value is None:
        return None
    if not isinstance(pairs, Mapping):
        if replacement is None:
            raise TypeError("replace needs a map of {'old': 'new'} or two strings")
        return _to_text(value).replace(_to_text(pairs), _to_text(replacement), count)
    if isinstance(value, Mapping):
        return {k: _replace(v, pairs, regexp=regexp) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_replace(v, pairs, regexp=regexp) for v in value]
    text = _to_text(value)
    for old, new in pairs.items():
        if regexp:  # Java writes groups as $1; Python as \g<1>
            text = re.sub(_to_text(old), re.sub(r"\$(\d+)", r"\\g<\1>", _to_text(new)), text)
        else:
            text = text.replace(_to_text(old), _to_text(new))
    return text


def _split(value: Any, delimiter: str, limit: int | None = None) -> list[str]:
    """Pebble's ``split``: Java's ``String.split`` (the delimiter is a regular expression)."""
    _fail_if_undefined(value)
    text = _to_text(value)
    if limit is not None and limit > 0:
        return re.split(delimiter, text, maxsplit=limit - 1)
    parts = re.split(delimiter, text)
    if limit is None or limit == 0:
        while len(parts) > 1 and parts[-1] == "":
            parts.pop()
    return parts


def _slice(value: Any, fromIndex: int = 0, toIndex: int | None = None) -> Any:
    _fail_if_undefined(value)
    if isinstance(value, str | list | tuple):
        return value[fromIndex:toIndex]
    raise TypeError(f"slice needs a string or a list, got {type(value).__name__}")


def _merge(value: Any, other: Any) -> Any:
    _fail_if_undefined(value)
    _fail_if_undefined(other)
    if isinstance(value, Mapping) and isinstance(other, Mapping):
        return {**value, **other}
    if isinstance(value, list | tuple) and isinstance(other, list | tuple):
        return [*value, *other]
    raise TypeError("merge needs two maps or two lists")


def _capitalize(value: Any) -> str:
    text = _to_text(value) if not isinstance(value, jinja2.Undefined) else str(value)
    return text[:1].upper() + text[1:]


def _abbreviate(value: Any, length: int) -> str:
    text = _to_text(value) if not isinstance(value, jinja2.Undefined) else str(value)
    if len(text) <= length:
        return text
    return text[: max(length - 3, 0)] + "..."


def _slugify(value: Any) -> str:
    """Kestra's slugify: blanks to dashes, accents dropped, other symbols removed, lower case."""
    _fail_if_undefined(value)
    text = unicodedata.normalize("NFD", re.sub(r"\s", "-", _to_text(value)))
    text = re.sub(r"[^\w-]", "", text, flags=re.ASCII).replace("_", "-")
    return re.sub(r"-{2,}", "-", text).strip("-").lower()


def _number(value: Any, type: str | None = None) -> Any:
    _fail_if_undefined(value)
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return value
    text = _to_text(value).strip()
    kind = (type or "").upper()
    if kind in ("INT", "LONG", "BIGINTEGER"):
        return int(text)
    if kind in ("FLOAT", "DOUBLE", "BIGDECIMAL"):
        return float(text)
    try:
        return int(text)
    except ValueError:
        return float(text)


def _from_json(value: Any) -> Any:
    _fail_if_undefined(value)
    return None if value is None else json.loads(_to_text(value))


def _text_filter(operation: Callable[[str, str], Any]) -> Callable[[Any, Any], Any]:
    def apply(value: Any, argument: Any) -> Any:
        _fail_if_undefined(value)
        return operation(_to_text(value), _to_text(argument))

    return apply


def _hash(algorithm: str) -> Callable[[Any], str]:
    def apply(value: Any) -> str:
        _fail_if_undefined(value)
        return hashlib.new(algorithm, _to_text(value).encode()).hexdigest()

    return apply


def _base64encode(value: Any) -> str:
    _fail_if_undefined(value)
    return base64.b64encode(_to_text(value).encode()).decode("ascii")


def _base64decode(value: Any) -> str:
    _fail_if_undefined(value)
    return base64.b64decode(_to_text(value)).decode()


def _minimum(*values: Any) -> Any:
    return min(values[0] if len(values) == 1 else values)


def _maximum(*values: Any) -> Any:
    return max(values[0] if len(values) == 1 else values)


# --------------------------------------------------------------------------- dates

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_NAMED_FORMATS = {
    "iso": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX",
    "iso_sec": "yyyy-MM-dd'T'HH:mm:ssXXX",
    "sql": "yyyy-MM-dd HH:mm:ss.SSSSSS",
    "sql_seq": "yyyy-MM-dd HH:mm:ss",
    "iso_local_date": "yyyy-MM-dd",
    "iso_local_time": "HH:mm:ss",
    "iso_local_date_time": "yyyy-MM-dd'T'HH:mm:ss",
    "iso_offset_date_time": "yyyy-MM-dd'T'HH:mm:ssXXX",
}
_STRPTIME = {"y": "%Y", "d": "%d", "H": "%H", "h": "%I", "m": "%M", "s": "%S", "S": "%f",
             "a": "%p", "X": "%z", "x": "%z", "Z": "%z", "D": "%j"}


def _date(value: Any, format: str = "iso", timeZone: str | None = None,
          existingFormat: str | None = None, locale: str | None = None) -> str | None:
    """Kestra's ``date`` filter: Java ``DateTimeFormatter`` patterns or a named format."""
    _fail_if_undefined(value)
    if value is None:
        return None
    zone = _zone(timeZone) if timeZone is not None else None
    moment = _to_datetime(value, existingFormat)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone or UTC)
    elif zone is not None:
        moment = moment.astimezone(zone)
    return _format_date(moment, _NAMED_FORMATS.get(format, format))


def _zone(name: str) -> Any:
    if name.upper() in ("UTC", "Z", "GMT"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def _to_datetime(value: Any, existing_format: str | None) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, dt_time(12, 0))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        if existing_format is not None:
            return datetime.strptime(value, _strptime_format(existing_format))
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO-8601 date; "
                             "give its pattern as existingFormat") from None
    raise TypeError(f"date needs a date or an ISO-8601 string, got {type(value).__name__}")


def _date_pattern(pattern: str) -> Iterator[str | tuple[str, int]]:
    """Split a Java date pattern into literal text and ``(letter, repeat count)`` fields."""
    pos, size = 0, len(pattern)
    while pos < size:
        char = pattern[pos]
        if char == "'":
            if pattern.startswith("''", pos):
                yield "'"
                pos += 2
                continue
            literal, pos = [], pos + 1
            while True:
                if pos >= size:
                    raise ValueError(f"a quote is never closed in date pattern {pattern!r}")
                if pattern[pos] == "'":
                    if not pattern.startswith("''", pos):
                        break
                    literal.append("'")
                    pos += 2
                    continue
                literal.append(pattern[pos])
                pos += 1
            yield "".join(literal)
            pos += 1
        elif char.isascii() and char.isalpha():
            end = pos
            while end < size and pattern[end] == char:
                end += 1
            yield char, end - pos
            pos = end
        else:
            yield char
            pos += 1


def _format_date(moment: datetime, pattern: str) -> str:
    return "".join(part if isinstance(part, str) else _date_field(moment, *part)
                   for part in _date_pattern(pattern))


def _date_field(moment: datetime, letter: str, count: int) -> str:
    def padded(number: int) -> str:
        return f"{number:0{count}d}"

    if letter in "yu":
        return f"{moment.year % 100:02d}" if count == 2 else padded(moment.year)
    if letter in "ML":
        if count >= 3:
            return _MONTHS[moment.month - 1] if count >= 4 else _MONTHS[moment.month - 1][:3]
        return padded(moment.month)
    simple = {"d": moment.day, "D": moment.timetuple().tm_yday, "H": moment.hour,
              "k": moment.hour or 24, "h": moment.hour % 12 or 12, "K": moment.hour % 12,
              "m": moment.minute, "s": moment.second}
    if letter in simple:
        return padded(simple[letter])
    if letter == "S":
        return f"{moment.microsecond:06d}000"[:count]
    if letter == "n":
        return padded(moment.microsecond * 1000)
    if letter == "a":
        return "AM" if moment.hour < 12 else "PM"
    if letter == "E":
        day = _DAYS[moment.weekday()]
        return day if count >= 4 else day[:3]
    if letter in "XxZ":
        return _offset(moment.utcoffset() or timedelta(0), letter, count)
    if letter == "z":
        return moment.tzname() or ""
    if letter == "V":
        return str(getattr(moment.tzinfo, "key", moment.tzname() or ""))
    if letter == "G":
        return "AD"
    raise ValueError(f"unsupported letter {letter!r} in date pattern")


def _offset(offset: timedelta, letter: str, count: int) -> str:
    seconds = int(offset.total_seconds())
    sign = "+" if seconds >= 0 else "-"
    hours, minutes = divmod(abs(seconds) // 60, 60)
    if seconds == 0 and (letter == "X" or (letter == "Z" and count == 5)):
        return "Z"
    if letter == "Z":
        separator = ":" if count >= 4 else ""
        return f"{sign}{hours:02d}{separator}{minutes:02d}"
    if count == 1:
        return f"{sign}{hours:02d}" + (f"{minutes:02d}" if minutes else "")
    separator = ":" if count >= 3 else ""
    return f"{sign}{hours:02d}{separator}{minutes:02d}"


def _strptime_format(pattern: str) -> str:
    out: list[str] = []
    for part in _date_pattern(pattern):
        if isinstance(part, str):
            out.append(part.replace("%", "%%"))
            continue
        letter, count = part
        if letter == "y" and count == 2:
            out.append("%y")
        elif letter == "M":
            out.append("%B" if count >= 4 else "%b" if count == 3 else "%m")
        elif letter == "E":
            out.append("%A" if count >= 4 else "%a")
        elif letter in _STRPTIME:
            out.append(_STRPTIME[letter])
        else:
            raise ValueError(f"unsupported letter {letter!r} in existingFormat {pattern!r}")
    return "".join(out)


# --------------------------------------------------------------------------- registries

def _unsupported(name: str) -> Callable[..., NoReturn]:
    def fail(*_args: Any, **_kwargs: Any) -> NoReturn:
        raise TemplateError(f"{name}() is not available outside a Kestra server")

    return fail


_FILTERS: dict[str, Callable[..., Any]] = {
    "default": _default,
    "json": _dump_json,
    "toJson": _dump_json,
    "jsonEncode": _dump_json,
    "fromJson": _from_json,
    "date": _date,
    "keys": _keys,
    "values": _values,
    "length": _length,
    "join": _join,
    "replace": _replace,
    "split": _split,
    "slice": _slice,
    "merge": _merge,
    "capitalize": _capitalize,
    "abbreviate": _abbreviate,
    "slugify": _slugify,
    "number": _number,
    "rsort": lambda value: sorted(value, reverse=True),
    "base64encode": _base64encode,
    "base64decode": _base64decode,
    "sha256": _hash("sha256"),
    "sha512": _hash("sha512"),
    "startsWith": _text_filter(lambda text, prefix: text.startswith(prefix)),
    "endsWith": _text_filter(lambda text, suffix: text.endswith(suffix)),
    "substringBefore": _text_filter(lambda text, sep: text.partition(sep)[0]),
    "substringAfter": _text_filter(lambda text, sep: text.partition(sep)[2]),
    "substringBeforeLast": _text_filter(lambda text, sep: text.rpartition(sep)[0]
                                        if sep in text else text),
    "substringAfterLast": _text_filter(lambda text, sep: text.rpartition(sep)[2]
                                       if sep in text else ""),
}

_TESTS: dict[str, Callable[..., bool]] = {
    "_pebble_present": _is_present,
    "null": _is_null,
    "empty": _is_empty,
    "map": lambda value: isinstance(value, Mapping),
    "iterable": lambda value: isinstance(value, list | tuple | set),
}

_FUNCTIONS: dict[str, Any] = {
    "range": _pebble_range,
    "min": _minimum,
    "max": _maximum,
    "fromJson": _from_json,
    "json": _from_json,  # Kestra's deprecated name for fromJson
    "_pebble_iter": _pebble_iter,
    "_pebble_range": _pebble_range,
    "_pebble_contains": _pebble_contains,
    "_pebble_concat": _pebble_concat,
    "read": _unsupported("read"),
    "kv": _unsupported("kv"),
}
