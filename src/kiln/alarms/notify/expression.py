"""Evaluating a switch block's expression over one alarm's fields.

The text was checked at load by `kiln.core.expressions.check_expression` (arithmetic,
comparisons, and/or/not, names and constants only); this walks the same tree and nothing else,
so an expression can compute and compare but never call or reach anything.

It is not `kiln.core.expressions.Condition`, on purpose: a switch reads an alarm's fields, not
tags, and a failure must be told (SwitchError naming the field) rather than read as unknown;
its `and`/`or` give booleans and it compares text with text, with no state-name mapping.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from kiln.core.expressions import check_expression

NAMES = ("priority", "asset", "name", "condition", "value", "event")

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


class SwitchError(ValueError):
    """The expression could not be evaluated for this alarm (an unknown name, a type clash)."""


@lru_cache(maxsize=256)
def _parse(text: str) -> ast.expr:
    return ast.parse(check_expression(text).strip(), mode="eval").body


def evaluate(text: str, fields: Mapping[str, Any]) -> bool:
    """Whether `text` holds for `fields`. Raises SwitchError saying what went wrong."""
    try:
        return bool(_eval(_parse(text), fields))
    except SwitchError:
        raise
    except (TypeError, ZeroDivisionError, ValueError, OverflowError) as err:
        raise SwitchError(f"switch expression {text!r} failed for {dict(fields)}: {err}") from None


def _eval(node: ast.expr, fields: Mapping[str, Any]) -> Any:
    match node:
        case ast.Constant(value=value):
            return value
        case ast.Name(id=name):
            if name not in fields:
                raise SwitchError(
                    f"switch expression names {name!r}; use one of {', '.join(NAMES)}"
                )
            return fields[name]
        case ast.BoolOp(op=ast.And(), values=values):
            return all(_eval(v, fields) for v in values)
        case ast.BoolOp(op=ast.Or(), values=values):
            return any(_eval(v, fields) for v in values)
        case ast.UnaryOp(op=ast.Not(), operand=operand):
            return not _eval(operand, fields)
        case ast.UnaryOp(op=ast.USub(), operand=operand):
            return -_eval(operand, fields)
        case ast.UnaryOp(op=ast.UAdd(), operand=operand):
            return +_eval(operand, fields)
        case ast.BinOp(left=left, op=op, right=right):
            return _BINARY[type(op)](_eval(left, fields), _eval(right, fields))
        case ast.Compare(left=left, ops=ops, comparators=comparators):
            current = _eval(left, fields)
            for cmp, right_node in zip(ops, comparators, strict=True):
                right = _eval(right_node, fields)
                if not _COMPARE[type(cmp)](current, right):
                    return False
                current = right
            return True
    raise SwitchError(f"switch expressions cannot use {type(node).__name__}")
