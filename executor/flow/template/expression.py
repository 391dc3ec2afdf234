"""Translate one Pebble expression into an equivalent, fully parenthesised Jinja one.

Pebble's grammar and operator precedence differ from Jinja's, so the expression is parsed here
and re-emitted; the operators Jinja lacks become calls of the ``_pebble_*`` helpers of
:mod:`executor.flow.template.functions`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

from executor.flow.template.scan import PebbleSyntaxError

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
    "or": 10,
    "and": 15,
    "is": 20,
    "is not": 20,
    "contains": 20,
    "in": 20,
    "not in": 20,
    "isIn": 20,  # Kestra's `x isIn ['a', 'b']`
    "==": 30,
    "equals": 30,
    "!=": 30,
    "<": 30,
    ">": 30,
    "<=": 30,
    ">=": 30,
    "+": 40,
    "-": 40,
    "*": 60,
    "/": 60,
    "%": 60,
    "|": 100,
    "~": 110,
    "..": 120,
    "??": 120,
    "???": 120,
}
_UNARY_PRECEDENCE = 500
_WORD_OPERATORS = {"or", "and", "contains", "in", "equals", "isIn"}
_LITERALS = {"true": "true", "false": "false", "null": "none", "none": "none"}
_LOOP_RENAMES = {"index": "index0", "revindex": "revindex0"}


class _Token(NamedTuple):
    kind: str  # "name", "number", "string", "op" or "end"
    text: str


def translate_expression(source: str) -> str:
    """Translate one Pebble expression; raise :class:`PebbleSyntaxError` if it is invalid."""
    if not source.strip():
        raise PebbleSyntaxError("empty expression")
    return _Translator(_tokenize(source)).translate()


def _tokenize(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if match is None:
            char = source[pos]
            if char in "'\"":
                raise PebbleSyntaxError(f"a string opened with {char} is never closed")
            raise PebbleSyntaxError(f"unexpected character {char!r}")
        kind = match.lastgroup or "op"
        if kind != "space":
            tokens.append(_Token(kind, match.group()))
        pos = match.end()
    tokens.append(_Token("end", ""))
    return tokens


class _Translator:
    """A Pratt parser over Pebble's grammar that emits Jinja source as it goes."""

    def __init__(self, tokens: list[_Token]) -> None:
        self._tokens = tokens
        self._pos = 0

    def translate(self) -> str:
        result = self._expression(0)
        if self._peek().kind != "end":
            raise PebbleSyntaxError(f"unexpected {self._shown(self._peek())}")
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
            raise PebbleSyntaxError(f"expected '{text}' but found {self._shown(self._peek())}")
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
        left = self._unary()
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

    def _unary(self) -> str:
        token = self._peek()
        if token.kind == "name" and token.text == "not":
            self._next()
            return f"(not {self._expression(_UNARY_PRECEDENCE)})"
        if token.kind == "op" and token.text in ("-", "+"):
            self._next()
            return f"({token.text}{self._expression(_UNARY_PRECEDENCE)})"
        return self._primary()

    def _primary(self) -> str:
        token = self._next()
        if token.kind == "number":
            return self._postfix(token.text, is_loop=False)
        if token.kind == "string":
            # Jinja turns a raw CR inside a literal into LF; as an escape it survives.
            return self._postfix(token.text.replace("\r", "\\r"), is_loop=False)
        if token.kind == "name":
            return self._name(token.text)
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
        raise PebbleSyntaxError(f"expected a value but found {self._shown(token)}")

    def _name(self, name: str) -> str:
        literal = _LITERALS.get(name.lower())
        if literal is not None:
            return literal
        callable_word = name == "isIn" and self._is_op("(")  # also Kestra's isIn(x, list)
        if (name in _BINARY or name in ("is", "not")) and not callable_word:
            raise PebbleSyntaxError(f"expected a value but found {name!r}")
        if self._is_op("("):
            self._next()
            return self._postfix(f"{name}({self._arguments()})", is_loop=False)
        return self._postfix(name, is_loop=name == "loop")

    def _postfix(self, expression: str, *, is_loop: bool) -> str:
        while True:
            if self._is_op("."):
                self._next()
                expression = self._member(expression, is_loop=is_loop)
            elif self._is_op("["):
                self._next()
                key = self._expression(0)
                self._expect("]")
                expression = f"{expression}[{key}]"
            else:
                return expression
            is_loop = False

    def _member(self, expression: str, *, is_loop: bool) -> str:
        token = self._next()
        if token.kind == "number" and token.text.isdigit():
            return f"{expression}[{token.text}]"
        if token.kind != "name":
            raise PebbleSyntaxError(f"expected a name after '.' but found {self._shown(token)}")
        name = _LOOP_RENAMES.get(token.text, token.text) if is_loop else token.text
        if self._is_op("("):
            self._next()
            return f"{expression}.{name}({self._arguments()})"
        return f"{expression}.{name}"

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
            raise PebbleSyntaxError(
                f"expected a filter name after '|' but found {self._shown(token)}"
            )
        if self._is_op("("):
            self._next()
            return f"({subject} | {token.text}({self._arguments()}))"
        return f"({subject} | {token.text})"

    def _test(self, subject: str, symbol: str) -> str:
        token = self._next()
        if token.kind != "name":
            raise PebbleSyntaxError(
                f"expected a test name after 'is' but found {self._shown(token)}"
            )
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
    if symbol == "isIn":
        return f"isIn({left}, {right})"
    return f"({left} {'==' if symbol == 'equals' else symbol} {right})"
