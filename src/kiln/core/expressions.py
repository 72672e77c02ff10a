"""Restricted expressions over named values: checking, the names they read, and evaluation.

Alarm conditions (`suppress_when`, expression alarms) and production rules (machine-state
conditions such as `speed > 0 and not fault`) are written in one small language: Python's
expression syntax cut down to arithmetic, comparisons, and/or/not, names and constants. No
calls, attributes, subscripts or comprehensions, so evaluating one can compute and compare but
never reach anything. Expressions are never `eval()`ed: `Condition` walks the parsed tree.

This lives in the kernel so that every domain checks and evaluates the same language.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from pydantic import AfterValidator

Value = float | int | str  # a name's value as a condition sees it

# What an expression may contain: arithmetic, comparisons, boolean logic, names and constants.
# No calls, attributes, subscripts or comprehensions, so evaluating one can do nothing else.
EXPRESSION_NODES: tuple[type[ast.AST], ...] = (
    ast.Expression,
    ast.BinOp,
    ast.UnaryOp,
    ast.BoolOp,
    ast.Compare,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.FloorDiv,
    ast.Mod,
    ast.Pow,
    ast.UAdd,
    ast.USub,
    ast.Not,
    ast.And,
    ast.Or,
    ast.Eq,
    ast.NotEq,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
)


def check_expression(text: str) -> str:
    """Return `text` if it parses as a restricted expression, else raise ValueError saying why."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"expression {text!r} does not parse: {exc.msg}") from None
    for node in ast.walk(tree):
        if not isinstance(node, EXPRESSION_NODES):
            raise ValueError(
                f"expression {text!r} uses {type(node).__name__}: only arithmetic, comparisons, "
                "and/or/not, tag names and constants are allowed (no calls or attributes)"
            )
        if isinstance(node, ast.Constant) and not isinstance(node.value, int | float | str):
            raise ValueError(
                f"expression {text!r} has constant {node.value!r}: use numbers, "
                "strings, True or False"
            )
    return text


Expression = Annotated[str, AfterValidator(check_expression)]


def expression_names(text: str) -> list[str]:
    """The names an expression reads, each once, breadth first through its tree (a fixed order,
    not always the reading order)."""
    tree = ast.parse(text.strip(), mode="eval")
    names = [node.id for node in ast.walk(tree) if isinstance(node, ast.Name)]
    return list(dict.fromkeys(names))


def state_code(value: Value) -> int | None:
    """The integer code a value stands for, if it is one (1, 1.0, True; not 1.5 or text)."""
    if isinstance(value, str):
        return None
    number = float(value)
    return int(number) if number.is_integer() else None


_ARITHMETIC: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    # In floats, so that a large exponent overflows (an error: unknown) instead of building a
    # huge integer.
    ast.Pow: lambda a, b: float(a) ** float(b),
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


class _Unknown(Exception):
    """The expression has no value for these inputs (text in arithmetic, division by zero...)."""


class Condition:
    """A restricted expression over tags, evaluated by walking its tree.

    `tags` maps each name the expression reads to its tag path (every name must be there);
    `states` maps a state tag's path to its code -> state name table. A name reads its tag's
    latest value (held until the next). Compared with text, a state tag's code is replaced by
    its state name, so `state == "fault"` holds when the code maps to "fault"; compared with a
    number it stays the code.
    """

    def __init__(
        self, text: str, tags: Mapping[str, str], states: Mapping[str, Mapping[int, str]]
    ) -> None:
        self.text = text
        self._tree = ast.parse(text.strip(), mode="eval").body
        self._names = expression_names(text)
        self._path = {name: tags[name] for name in self._names}
        self._states = {n: states[p] for n, p in self._path.items() if p in states}
        self.paths = frozenset(self._path.values())

    def evaluate(self, latest: Mapping[str, tuple[Value, bool]]) -> bool | None:
        """`latest` maps a tag path to (value, is_bad). True or False; None (unknown) while a
        name has no value yet or a Bad-quality one, or when the expression cannot be computed
        for these values."""
        values: dict[str, Value] = {}
        for name, path in self._path.items():
            got = latest.get(path)
            if got is None or got[1]:
                return None
            values[name] = got[0]
        try:
            return bool(self._eval(self._tree, values))
        except (_Unknown, ArithmeticError, TypeError, ValueError):
            return None

    def _eval(self, node: ast.expr, values: Mapping[str, Value]) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return values[node.id]
        if isinstance(node, ast.UnaryOp):
            operand = self._eval(node.operand, values)
            if isinstance(node.op, ast.Not):
                return not operand
            number = _numeric(operand)
            return -number if isinstance(node.op, ast.USub) else +number
        if isinstance(node, ast.BinOp):
            left = _numeric(self._eval(node.left, values))
            right = _numeric(self._eval(node.right, values))
            return _ARITHMETIC[type(node.op)](left, right)
        if isinstance(node, ast.BoolOp):
            result: Any = None
            for item in node.values:
                result = self._eval(item, values)
                if isinstance(node.op, ast.And) != bool(result):
                    return result  # and: first false; or: first true (Python's rule)
            return result
        if isinstance(node, ast.Compare):
            first = self._operand(node.left, values)
            for op, right_node in zip(node.ops, node.comparators, strict=True):
                second = self._operand(right_node, values)
                a, b = _as_names(first, second), _as_names(second, first)
                if not _COMPARE[type(op)](a, b):
                    return False
                first = second
            return True
        raise _Unknown(type(node).__name__)  # check_expression lets nothing else through

    def _operand(
        self, node: ast.expr, values: Mapping[str, Value]
    ) -> tuple[Any, Mapping[int, str] | None]:
        names = self._states.get(node.id) if isinstance(node, ast.Name) else None
        return self._eval(node, values), names


def _numeric(value: Any) -> int | float:
    """Arithmetic only on numbers: text in arithmetic is unknown, not a repeated string."""
    if not isinstance(value, int | float):
        raise _Unknown("arithmetic on text")
    return value


def _as_names(
    side: tuple[Any, Mapping[int, str] | None], other: tuple[Any, Mapping[int, str] | None]
) -> Any:
    """A state tag's code as its name when compared with text; otherwise the value itself."""
    value, names = side
    if names is not None and isinstance(other[0], str) and not isinstance(value, str):
        code = state_code(value)
        if code is not None and code in names:
            return names[code]
    return value


__all__ = [
    "EXPRESSION_NODES",
    "Condition",
    "Expression",
    "Value",
    "check_expression",
    "expression_names",
    "state_code",
]
