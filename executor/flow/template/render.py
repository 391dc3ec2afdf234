"""The :class:`Renderer`: compile (with caching) and render templates, and name what failed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jinja2
from jinja2.environment import TemplateExpression

from executor.errors import TemplateError
from executor.flow.secrets import Secrets
from executor.flow.template.dates import zone
from executor.flow.template.expression import translate_expression
from executor.flow.template.filters import FILTERS
from executor.flow.template.functions import FUNCTIONS, TESTS
from executor.flow.template.messages import RENDER_ERRORS, describe, excerpt, located, sentence
from executor.flow.template.printing import _dump_json, date_text, fail_if_undefined, to_text
from executor.flow.template.registry import TemplateCall, TemplateFunctions
from executor.flow.template.sandbox import PATHS, PebbleEnvironment, _PathUndefined, root_paths
from executor.flow.template.scan import PebbleSyntaxError, Piece, single_expression
from executor.flow.template.translate import MARKER, TEXTS, Translation, translate_template

_CACHE_SIZE = 2048
_MAX_RENDER_DEPTH = 20


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


def kestra_truthy(value: Any) -> bool:
    """Kestra's ``If``/``Fail`` truthiness: only ``false``, ``0``, ``-0``, blank and null are false.

    Anything else is true, ``"False"``, ``"no"`` and ``"0.0"`` included (TruthUtils, trimmed).
    """
    if value is None:
        return False
    text = to_text(value) if not isinstance(value, str) else value
    return text.strip() not in {"false", "0", "-0", ""}


class Renderer:
    """Render templates against a context, Pebble-style, sandboxed.

    Args:
        secrets: where ``secret('NAME')`` looks; no secrets at all when ``None``.
        clock: what ``now()`` reads; the current UTC time when ``None``.
    """

    def __init__(
        self,
        secrets: Secrets | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        functions: TemplateFunctions | None = None,
    ) -> None:
        self._secrets = secrets if secrets is not None else Secrets()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._env = _environment(secret=self._secret, now=self._now)
        self._templates: dict[str, _Compiled] = {}
        self._expressions: dict[str, TemplateExpression] = {}
        self._env.globals.update(
            render=self._with_variables(self._render_function),
            renderOnce=self._with_variables(self._render_once),
            printContext=self._with_variables(self._print_context),
            fetchContext=self._with_variables(self._fetch_context),
        )
        for name, function in (functions or TemplateFunctions()).items():
            self._env.globals[name] = self._with_variables(function)

    @property
    def names(self) -> tuple[frozenset[str], frozenset[str]]:
        """The function and filter names templates may use (what ``validate`` checks)."""
        return frozenset(self._env.globals), frozenset(self._env.filters)

    @staticmethod
    def _with_variables(function: Callable[..., Any]) -> Callable[..., Any]:
        """``function(call, *args)`` as a template function that gets the template's variables."""

        @jinja2.pass_context
        def call(context: jinja2.runtime.Context, *args: Any, **kwargs: Any) -> Any:
            for value in (*args, *kwargs.values()):
                fail_if_undefined(value)
            variables = {
                k: v
                for k, v in context.get_all().items()
                if not k.startswith("_pebble") and k not in context.environment.globals
            }
            return function(TemplateCall(variables), *args, **kwargs)

        call.__name__ = getattr(function, "__name__", "function")
        return call

    def _render_function(self, call: TemplateCall, template: Any, recursive: bool = True) -> str:
        """Kestra's ``render(text)``: the text rendered again, until no expression is left."""
        text = to_text(template)
        for _ in range(_MAX_RENDER_DEPTH):
            rendered = self.render(text, call.variables, where="render()")
            if not recursive or rendered == text or "{{" not in rendered:
                return rendered
            text = rendered
        raise TemplateError(f"render() still finds expressions after {_MAX_RENDER_DEPTH} passes")

    def _render_once(self, call: TemplateCall, template: Any) -> str:
        return self._render_function(call, template, recursive=False)

    def _fetch_context(self, call: TemplateCall) -> dict[str, Any]:
        return {k: v for k, v in call.variables.items() if not k.startswith("_")}

    def _print_context(self, call: TemplateCall) -> str:
        """Kestra's ``printContext()``: the variables as JSON (secrets masked)."""
        return self._secrets.mask(_dump_json(self._fetch_context(call)))

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
        variables[MARKER] = tracker.at
        variables[TEXTS] = compiled.translation.texts
        token = PATHS.set(root_paths(context))
        try:
            return compiled.template.render(variables)
        except RENDER_ERRORS as exc:
            piece = compiled.piece(tracker.current)
            # `from None`: the original error may quote a secret value.
            raise self._error(
                describe(exc) + located(piece, compiled.multiline), where=where
            ) from None
        finally:
            PATHS.reset(token)

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
            return {
                self.render_value(k, context, where=where): self.render_value(
                    v, context, where=where
                )
                for k, v in value.items()
            }
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
        body = single_expression(expression_template)
        if body is None:
            return self.render(expression_template, context, where=where)
        shown = excerpt(expression_template.strip())
        expression = self._compile_expression(body, shown, where)
        token = PATHS.set(root_paths(context))
        try:
            value = expression(dict(context))
            fail_if_undefined(value)
            return value
        except RENDER_ERRORS as exc:
            raise self._error(f"{describe(exc)} in {shown}", where=where) from None
        finally:
            PATHS.reset(token)

    def _compile_expression(self, body: str, shown: str, where: str) -> TemplateExpression:
        expression = self._expressions.get(body)
        if expression is not None:
            return expression
        try:
            expression = self._env.compile_expression(
                translate_expression(body), undefined_to_none=False
            )
        except PebbleSyntaxError as exc:
            raise self._error(f"syntax error in {shown}: {exc}", where=where) from None
        except jinja2.TemplateSyntaxError as exc:
            raise self._error(f"{sentence(exc.message)} in {shown}", where=where) from None
        _remember(self._expressions, body, expression)
        return expression

    def _compile(self, template: str, where: str) -> _Compiled:
        compiled = self._templates.get(template)
        if compiled is not None:
            return compiled
        multiline = "\n" in template.strip()
        try:
            translation = translate_template(template)
        except PebbleSyntaxError as exc:
            raise self._error(
                f"syntax error{located(exc.piece, multiline)}: {exc}", where=where
            ) from None
        try:
            jinja_template = self._env.from_string(translation.source)
        except jinja2.TemplateSyntaxError as exc:
            raise self._explain_compile_error(exc, translation, multiline, where) from None
        compiled = _Compiled(jinja_template, translation, multiline)
        _remember(self._templates, template, compiled)
        return compiled

    def _explain_compile_error(
        self, exc: jinja2.TemplateSyntaxError, translation: Translation, multiline: bool, where: str
    ) -> TemplateError:
        # Jinja reports a line of the translated text; find the expression it chokes on.
        for piece, expression in zip(translation.pieces, translation.expressions, strict=True):
            try:
                self._env.compile_expression(expression)
            except jinja2.TemplateSyntaxError as inner:
                return self._error(
                    f"{sentence(inner.message)}{located(piece, multiline)}", where=where
                )
        line = f" (line {exc.lineno})" if multiline else ""
        return self._error(f"syntax error{line}: {sentence(exc.message)}", where=where)

    def _error(self, message: str, *, where: str) -> TemplateError:
        # An error can quote a value (`invalid literal for int(): '<the secret>'`).
        return TemplateError(self._secrets.mask(message), where=where)

    def _secret(self, name: Any) -> str:
        fail_if_undefined(name)
        if not isinstance(name, str):
            raise TemplateError(f"secret() needs a name, got {to_text(name)!r}")
        return self._secrets.get(name)

    def _now(self, timeZone: str | None = None) -> str:
        moment = self._clock()
        if timeZone is not None:
            moment = moment.astimezone(zone(timeZone))
        return date_text(moment)


def _environment(**functions: Callable[..., Any]) -> PebbleEnvironment:
    """A sandbox with Pebble's library only (no Jinja globals) plus ``functions``."""
    env = PebbleEnvironment(
        undefined=_PathUndefined,
        finalize=to_text,  # which also refuses an undefined value
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters.update(FILTERS)
    env.tests.update(TESTS)
    env.globals.clear()
    env.globals.update(FUNCTIONS)
    env.globals.update(functions)
    return env


@dataclass(frozen=True)
class _Compiled:
    template: jinja2.Template
    translation: Translation
    multiline: bool

    def piece(self, index: int) -> Piece | None:
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


def _remember(cache: dict[str, Any], key: str, value: Any) -> None:
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    cache[key] = value
