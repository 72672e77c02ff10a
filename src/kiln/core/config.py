"""Loading YAML configuration into pydantic models, with errors a person can act on.

An error names the file, the line, the dotted field path and what to do about it, e.g.::

    plant.yaml:12: historian.max_batch_points: Input should be a valid integer
      (got 'lots'). Fix: give a whole number.

YAML is read with the safe loader only: configuration never constructs Python objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from kiln.core.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

_FIXES = {
    "missing": "add it",
    "int_type": "give a whole number",
    "int_parsing": "give a whole number",
    "float_type": "give a number",
    "float_parsing": "give a number",
    "bool_type": "use true or false",
    "bool_parsing": "use true or false",
    "string_type": "give a text value (quote it if it looks like a number, or is yes/no/on/off)",
    "list_type": "give a list (YAML '- item' lines)",
    "tuple_type": "give a list (YAML '- item' lines)",
    "dict_type": "give a mapping (YAML 'key: value' lines)",
    "model_type": "give a mapping (YAML 'key: value' lines)",
    "greater_than": "raise the value",
    "greater_than_equal": "raise the value",
    "less_than": "lower the value",
    "less_than_equal": "lower the value",
    "string_pattern_mismatch": "use letters, digits, '_', '-' and '.' only",
}


def load_config(path: Path, model: type[M]) -> M:
    """Read `path` as YAML and validate it as `model`; raise ConfigError with every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read configuration: {err.strerror}") from None
    return parse_config(text, model, source=str(path))


def parse_config(text: str, model: type[M], *, source: str = "<config>") -> M:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections (key: value)")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        lines = [_describe(e, root, source, model) for e in err.errors()]
        raise ConfigError(
            f"{len(lines)} problem(s) in {source}:\n" + "\n".join(f"  {x}" for x in lines)
        ) from None


def _describe(error: Any, root: yaml.Node | None, source: str, model: type[BaseModel]) -> str:
    loc: tuple[int | str, ...] = tuple(error["loc"])
    field = _dotted(loc) or "(top level)"
    line = _line_of(root, loc)
    where = f"{source}:{line}" if line else source
    kind = error["type"]
    msg = error["msg"]
    if (
        "input" in error
        and kind not in ("missing", "extra_forbidden")
        and not isinstance(error["input"], dict | list)
    ):
        msg += f" (got {error['input']!r})"
    if kind == "extra_forbidden":
        allowed = _allowed_fields(model, loc[:-1])
        fix = f"remove '{loc[-1]}' or correct its spelling" + (
            f"; allowed here: {', '.join(allowed)}" if allowed else ""
        )
        return f"{where}: {field}: unknown field. Fix: {fix}."
    if kind == "missing":
        return f"{where}: {field}: required field is missing. Fix: add '{loc[-1]}:'."
    hint = _FIXES.get(kind)
    return f"{where}: {field}: {msg}." + (f" Fix: {hint}." if hint else "")


def _dotted(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_of(node: yaml.Node | None, loc: Sequence[int | str]) -> int | None:
    """Line (1-based) of the deepest YAML node that `loc` reaches."""
    if node is None:
        return None
    best = node.start_mark.line + 1
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for key, value in node.value:
                if getattr(key, "value", None) == part:
                    child = value
                    best = key.start_mark.line + 1
                    break
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(node.value)
        ):
            child = node.value[part]
            best = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return best


def _allowed_fields(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """Field names of the sub-model at `loc`, to suggest the right spelling."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return []
        current = _model_of(fields[part].annotation)
        if current is None:
            return []
    fields = getattr(current, "model_fields", None)
    return sorted(fields) if fields else []


def _model_of(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None
