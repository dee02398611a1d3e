"""Parameters and conditions: Jinja2 in an immutable sandbox, rendered one string at a time.

Defence in depth against template injection and denial of service:

* ``ImmutableSandboxedEnvironment`` (no attribute writes, no unsafe attributes such as
  ``__class__``/``__globals__``/``mro``; the str.format CVEs (CVE-2016-10745,
  CVE-2019-10906) and the ``|attr`` bypass (CVE-2025-27516) are patched in jinja2 >= 3.1.6
  and additionally unreachable here because no call is allowed at all);
* an AST allow-list at compile time: expressions, ``if`` and filters only: no calls, no
  loops, macros, blocks, imports, includes, ``set`` or ``with``;
* no globals (``range``, ``lipsum``, ``cycler``, ``joiner``, ``namespace``, ``dict`` are
  gone), allow-listed filters only, StrictUndefined;
* size caps on template source, string repetition, exponents, ``%`` formatting and output.

A parameter that is exactly ``{{ expr }}`` evaluates to the expression's native value
(a list for ``for_each``, a number ...); any other string renders to a string. Values are
never spliced into JSON or shell text: each string of the parameters is rendered alone.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from jinja2 import StrictUndefined, Undefined, nodes
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from mantissa.errors import MantissaError

MAX_SOURCE_CHARS = 4096
MAX_OUTPUT_CHARS = 65536
MAX_REPEAT = 4096
MAX_EXPONENT = 64
MAX_INT_BITS = 256

ALLOWED_FILTERS = [
    "abs",
    "bool",
    "capitalize",
    "d",
    "default",
    "first",
    "float",
    "int",
    "join",
    "last",
    "length",
    "count",
    "list",
    "lower",
    "max",
    "min",
    "replace",
    "reverse",
    "round",
    "sort",
    "string",
    "title",
    "trim",
    "truncate",
    "unique",
    "upper",
    "urlencode",
    "tojson",
    "b64",
    "sha256",
    "split",
]

_ALLOWED_NODES: tuple[type[nodes.Node], ...] = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.If,
    nodes.Const,
    nodes.Name,
    nodes.Getattr,
    nodes.Getitem,
    nodes.Slice,
    nodes.Filter,
    nodes.Test,
    nodes.Compare,
    nodes.Operand,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.Neg,
    nodes.Pos,
    nodes.Concat,
    nodes.CondExpr,
    nodes.List,
    nodes.Tuple,
    nodes.Dict,
    nodes.Pair,
    nodes.Add,
    nodes.Sub,
    nodes.Mul,
    nodes.Div,
    nodes.FloorDiv,
    nodes.Mod,
    nodes.Pow,
    nodes.Keyword,
)
_ALLOWED_TESTS = {
    "defined",
    "undefined",
    "none",
    "number",
    "string",
    "mapping",
    "sequence",
    "in",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "true",
    "false",
    "boolean",
    "integer",
    "float",
    "lower",
    "upper",
    "odd",
    "even",
    "divisibleby",
}
_WHOLE = re.compile(r"^\s*\{\{(.*)\}\}\s*$", re.S)


class TemplateRejected(MantissaError):
    """A template uses something the sandbox does not allow, or failed to render."""

    code = "template_error"
    http_status = 400


def _capped(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_OUTPUT_CHARS:
        raise SecurityError(f"string longer than {MAX_OUTPUT_CHARS} characters")
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise SecurityError("integer too large")
    if isinstance(value, list | tuple) and len(value) > MAX_REPEAT:
        raise SecurityError(f"list longer than {MAX_REPEAT} items")
    return value


def _replace(s: Any, old: str, new: str, count: int | None = None) -> str:
    s = str(s)
    est = len(s) + (s.count(old) if old else len(s) + 1) * max(0, len(new) - len(old))
    if est > MAX_OUTPUT_CHARS:
        raise SecurityError("replace result too large")
    return s.replace(old, new) if count is None else s.replace(old, new, count)


def _b64(s: Any) -> str:
    import base64

    return base64.b64encode(str(s).encode()).decode()


def _sha256(s: Any) -> str:
    import hashlib

    return hashlib.sha256(str(s).encode()).hexdigest()


def _split(s: Any, sep: str | None = None, maxsplit: int = -1) -> list[str]:
    return _capped(str(s).split(sep, maxsplit))


class _Env(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%", "+", "//"})
    intercepted_unops = frozenset({"-"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
                raise SecurityError("exponent too large")
            return _capped(left**right)
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(n, int)
                    and n * max(len(seq), 1) > MAX_REPEAT * 16
                ):
                    raise SecurityError("repetition too large")
            return _capped(left * right)
        if operator == "%":
            if isinstance(left, str):
                # printf-style formatting can pad to any width ("%999999999s")
                raise SecurityError("the % string operator is not allowed; use ~ or filters")
            return left % right
        if operator == "+":
            return _capped(left + right)
        if operator == "//":
            return left // right
        return super().call_binop(context, operator, left, right)

    def call(self, *args: Any, **kwargs: Any) -> Any:
        raise SecurityError("calls are not allowed in playbook templates")


def _make_env() -> _Env:
    env = _Env(undefined=StrictUndefined, autoescape=False, finalize=_capped)
    env.globals.clear()
    keep = {k: env.filters[k] for k in ALLOWED_FILTERS if k in env.filters}
    keep.update(replace=_replace, b64=_b64, sha256=_sha256, split=_split)
    env.filters.clear()
    env.filters.update(keep)
    env.tests = {k: v for k, v in env.tests.items() if k in _ALLOWED_TESTS}
    return env


ENV = _make_env()


def _check_ast(source: str, where: str) -> None:
    problem = _ast_problem(source)
    if problem:
        raise TemplateRejected(f"{where}: {problem}")


@functools.lru_cache(maxsize=4096)
def _ast_problem(source: str) -> str | None:
    """Why ``source`` is refused, or None (cached: templates repeat across executions)."""
    try:
        _check_ast_uncached(source, "")
    except TemplateRejected as exc:
        return exc.message.removeprefix(": ")
    return None


def _check_ast_uncached(source: str, where: str) -> None:
    if len(source) > MAX_SOURCE_CHARS:
        raise TemplateRejected(f"{where}: template longer than {MAX_SOURCE_CHARS} characters")
    try:
        tree = ENV.parse(source)
    except TemplateError as exc:
        raise TemplateRejected(f"{where}: template syntax error: {exc}") from None
    except RecursionError:
        raise TemplateRejected(f"{where}: template nested too deeply") from None
    for node in tree.find_all(nodes.Node):
        if not isinstance(node, _ALLOWED_NODES):
            raise TemplateRejected(
                f"{where}: {type(node).__name__} is not allowed in templates "
                "(only expressions, if and filters)"
            )
        if isinstance(node, nodes.Filter) and node.name not in ENV.filters:
            raise TemplateRejected(f"{where}: filter {node.name!r} is not allowed")
        if isinstance(node, nodes.Test) and node.name not in ENV.tests:
            raise TemplateRejected(f"{where}: test {node.name!r} is not allowed")
        if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
            raise TemplateRejected(f"{where}: attribute {node.attr!r} is not allowed")
        if isinstance(node, nodes.Filter | nodes.Test) and (node.dyn_args or node.dyn_kwargs):
            raise TemplateRejected(f"{where}: *args/**kwargs are not allowed")


def is_template(value: str) -> bool:
    return "{{" in value or "{%" in value or "{#" in value


def check(value: Any, where: str) -> None:
    """Compile every template in ``value`` (import-time validation)."""
    if isinstance(value, str):
        if is_template(value):
            _check_ast(value, where)
            m = _WHOLE.match(value)
            if m and "{{" not in m.group(1) and "}}" not in m.group(1):
                _compile_expr(m.group(1), where)
            else:
                try:
                    ENV.from_string(value)
                except TemplateError as exc:
                    raise TemplateRejected(f"{where}: {exc}") from None
    elif isinstance(value, dict):
        for k, v in value.items():
            check(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            check(v, f"{where}[{i}]")


def check_expression(expr: str, where: str) -> None:
    """Compile a bare expression (``condition``, ``for_each``)."""
    if is_template(expr):
        check(expr, where)
        return
    _check_ast("{{ " + expr + " }}", where)
    _compile_expr(expr, where)


def _compile_expr(expr: str, where: str) -> Any:
    try:
        return _compiled_expr(expr)
    except RecursionError:
        raise TemplateRejected(f"{where}: expression nested too deeply") from None
    except TemplateError as exc:
        raise TemplateRejected(f"{where}: {exc}") from None


def _default(value: Any) -> Any:
    if isinstance(value, Undefined):
        str(value)  # StrictUndefined raises UndefinedError naming the missing name
    return str(value)


@functools.lru_cache(maxsize=4096)
def _compiled_expr(expr: str) -> Any:
    return ENV.compile_expression(expr, undefined_to_none=False)


@functools.lru_cache(maxsize=4096)
def _compiled_template(source: str) -> Any:
    return ENV.from_string(source)


def _jsonable(value: Any, where: str) -> Any:
    try:
        text = json.dumps(value, default=_default)
    except UndefinedError as exc:
        raise TemplateRejected(f"{where}: {exc.message}") from None
    except SecurityError as exc:
        raise TemplateRejected(f"{where}: blocked by the sandbox: {exc}") from None
    except (TypeError, ValueError, RecursionError) as exc:
        raise TemplateRejected(f"{where}: result is not JSON: {exc}") from None
    if len(text) > MAX_OUTPUT_CHARS:
        raise TemplateRejected(f"{where}: result larger than {MAX_OUTPUT_CHARS} characters")
    return json.loads(text)


def _run(fn: Any, where: str) -> Any:
    try:
        return fn()
    except UndefinedError as exc:
        raise TemplateRejected(f"{where}: {exc.message}") from None
    except SecurityError as exc:
        raise TemplateRejected(f"{where}: blocked by the sandbox: {exc}") from None
    except TemplateError as exc:
        raise TemplateRejected(f"{where}: {exc}") from None
    except (ArithmeticError, TypeError, ValueError, KeyError, IndexError, RecursionError) as exc:
        raise TemplateRejected(f"{where}: {type(exc).__name__}: {exc}") from None


def render_value(value: Any, ctx: dict[str, Any], where: str) -> Any:
    """Render every string inside ``value`` on its own; returns JSON-able data."""
    if isinstance(value, str):
        if not is_template(value):
            return value
        _check_ast(value, where)
        m = _WHOLE.match(value)
        if m and "{{" not in m.group(1) and "}}" not in m.group(1):
            fn = _compile_expr(m.group(1), where)
            return _jsonable(_run(lambda: fn(**ctx), where), where)
        tpl = _run(lambda: _compiled_template(value), where)

        def render() -> str:
            out: list[str] = []
            size = 0
            for chunk in tpl.generate(**ctx):
                size += len(chunk)
                if size > MAX_OUTPUT_CHARS:
                    raise SecurityError(f"output longer than {MAX_OUTPUT_CHARS} characters")
                out.append(chunk)
            return "".join(out)

        return _run(render, where)
    if isinstance(value, dict):
        return {k: render_value(v, ctx, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, ctx, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def evaluate(expr: str, ctx: dict[str, Any], where: str) -> Any:
    """Evaluate a bare expression or a ``{{ }}`` template to a native value."""
    if is_template(expr):
        out = render_value(expr, ctx, where)
        if isinstance(out, str):
            return out.strip().lower() not in ("", "false", "0", "none", "no")
        return out
    _check_ast("{{ " + expr + " }}", where)
    fn = _compile_expr(expr, where)
    return _jsonable(_run(lambda: fn(**ctx), where), where)
