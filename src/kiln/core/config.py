"""Loading YAML configuration into pydantic models, with errors a person can act on.

An error names the file, the line, the dotted field path and what to do about it, e.g.::

    plant.yaml:12: historian.max_batch_points: Input should be a valid integer
      (got 'lots'). Fix: give a whole number.

YAML is read with the safe loader only: configuration never constructs Python objects.

Paths: a field typed `ConfigFile`, `ConfigDir`, `MadeFile`, `MadeDir` or `FileOrDir` (and the
SQLite file of a `DatabaseUrl`) is anchored at the configuration file's folder when the file is loaded (the folder goes to validation in the
pydantic context, so a connector plugin's own path fields are anchored too). `load_config(...,
check_paths=True)` (what `kiln config check` does) also checks that each one is there, readable
and of the right kind, and reports a problem like any other, with file:line, field and fix.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ValidationError, ValidationInfo
from pydantic_core import PydanticCustomError

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
    "path_missing": "create it, or correct the path (a relative path starts at the "
    "configuration file's folder)",
    "path_kind": "give the path of the right kind, or correct it",
    "path_unreadable": "let the user Kiln runs as read it (chmod/chown), or correct the path",
    "path_not_creatable": "create the folder, or let the user Kiln runs as write to its parent",
}

# What validation is told when a configuration file is loaded (the pydantic context).
BASE_DIR = "kiln_config_dir"
CHECK_PATHS = "kiln_check_paths"

PathKind = Literal["file", "dir", "file_or_dir"]


@dataclass(frozen=True, slots=True)
class _PathRule:
    """A path field: what it must be, and whether Kiln makes it when it is absent."""

    kind: PathKind
    made: bool = False

    def __call__(self, value: Path, info: ValidationInfo) -> Path:
        base = info.context.get(BASE_DIR) if isinstance(info.context, dict) else None
        if base is not None and not value.is_absolute():
            value = Path(base) / value
        if paths_checked(info):
            self.check(value)
        return value

    def check(self, path: Path) -> None:
        noun = {"file": "file", "dir": "folder", "file_or_dir": "file or folder"}[self.kind]
        if not path.exists():
            if not self.made:
                raise PydanticCustomError(
                    "path_missing", "no such {noun}: {path}", {"noun": noun, "path": str(path)}
                )
            # Kiln makes it (and the folders above it) on first start: the nearest folder
            # that exists must be one Kiln can write into.
            parent = next((p for p in path.parents if p.exists()), None)
            if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
                raise PydanticCustomError(
                    "path_not_creatable",
                    "{path} does not exist and cannot be made: {parent} is not a writable folder",
                    {"path": str(path), "parent": str(parent)},
                )
            return
        if self.kind == "file" and not path.is_file():
            raise PydanticCustomError("path_kind", "{path} is not a file", {"path": str(path)})
        if self.kind == "dir" and not path.is_dir():
            raise PydanticCustomError("path_kind", "{path} is not a folder", {"path": str(path)})
        wanted = os.R_OK | (os.X_OK if path.is_dir() else 0)
        if not os.access(path, wanted):
            raise PydanticCustomError(
                "path_unreadable", "{path} cannot be read", {"path": str(path)}
            )


def paths_checked(info: ValidationInfo) -> bool:
    """True when this validation checks paths on disk (`kiln config check`): for a model's own
    checks that look at more than one path."""
    return isinstance(info.context, dict) and bool(info.context.get(CHECK_PATHS))


# Path field types for configuration models: anchored at the configuration file's folder.
ConfigFile = Annotated[Path, AfterValidator(_PathRule("file"))]
"""A file that must exist (a password file, a CA, a TLS certificate)."""
ConfigDir = Annotated[Path, AfterValidator(_PathRule("dir"))]
"""A folder that must exist."""
FileOrDir = Annotated[Path, AfterValidator(_PathRule("file_or_dir"))]
"""A file, or a folder of files (a trust list)."""
MadeFile = Annotated[Path, AfterValidator(_PathRule("file", made=True))]
"""A file Kiln creates when it is absent (a database, a generated certificate)."""
MadeDir = Annotated[Path, AfterValidator(_PathRule("dir", made=True))]
"""A folder Kiln creates when it is absent (the data folder, a rejected-certificates folder)."""


# sqlite:///relative.db, sqlite:////absolute.db, with a driver (sqlite+pysqlite) and a query.
_SQLITE_URL = re.compile(r"^(sqlite(?:\+\w+)?:///)([^?]*)(\?.*)?$")


def _anchor_database_url(value: str, info: ValidationInfo) -> str:
    """A SQLite URL's file is a path like any other: anchored, and checked as a file Kiln makes.
    Other URLs (a PostgreSQL server) are left as they are."""
    found = _SQLITE_URL.match(value)
    if found is None or found.group(2) in ("", ":memory:"):
        return value
    path = _PathRule("file", made=True)(Path(found.group(2)), info)
    return f"{found.group(1)}{path}{found.group(3) or ''}"


DatabaseUrl = Annotated[str, AfterValidator(_anchor_database_url)]
"""An SQLAlchemy URL; a SQLite file in it is anchored at the configuration file's folder."""


@dataclass(frozen=True, slots=True)
class SubModel:
    """Marks a field validated by a function that picks the model from the input (a plugin's
    own configuration): `resolve` gives that model for an input, so an error inside it can
    list the fields of the model that was used. Put it in the field's `Annotated` metadata."""

    resolve: Callable[[Any], type[BaseModel] | None]


def load_config(path: Path, model: type[M], *, check_paths: bool = False) -> M:
    """Read `path` as YAML and validate it as `model`; raise ConfigError with every problem.

    Relative paths in path fields are anchored at the file's folder; with `check_paths`, each
    path is checked too (exists, readable, file or folder as the field says)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read configuration: {err.strerror}") from None
    context = {BASE_DIR: path.resolve().parent, CHECK_PATHS: check_paths}
    return parse_config(text, model, source=str(path), context=context)


def parse_config(
    text: str,
    model: type[M],
    *,
    source: str = "<config>",
    context: dict[str, Any] | None = None,
) -> M:
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
        return model.model_validate(data, context=context)
    except ValidationError as err:
        lines = [_describe(e, root, data, source, model) for e in err.errors()]
        raise ConfigError(
            f"{len(lines)} problem(s) in {source}:\n" + "\n".join(f"  {x}" for x in lines)
        ) from None


def _describe(
    error: Any, root: yaml.Node | None, data: Any, source: str, model: type[BaseModel]
) -> str:
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
        allowed = _allowed_fields(model, loc[:-1], data)
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


def _allowed_fields(model: type[BaseModel], loc: Sequence[int | str], data: Any) -> list[str]:
    """Field names of the sub-model at `loc`, to suggest the right spelling. `data` (the input)
    is walked alongside, for fields whose model depends on it (`SubModel`)."""
    current: Any = model
    pending: SubModel | None = None
    for part in loc:
        data = _child(data, part)
        if isinstance(part, int):
            if pending is not None:  # a list of entries, each picking its own model
                current = pending.resolve(data) or current
                pending = None
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return []
        annotation = fields[part].annotation
        current = _model_of(annotation)
        pending = _sub_model(annotation)
        if pending is not None and isinstance(data, dict):
            current = pending.resolve(data) or current
            pending = None
        if current is None:
            return []
    fields = getattr(current, "model_fields", None)
    return sorted(fields) if fields else []


def _child(data: Any, part: int | str) -> Any:
    if isinstance(part, int):
        return data[part] if isinstance(data, list) and 0 <= part < len(data) else None
    return data.get(part) if isinstance(data, dict) else None


def _model_of(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _sub_model(annotation: Any) -> SubModel | None:
    for meta in getattr(annotation, "__metadata__", ()):
        if isinstance(meta, SubModel):
            return meta
    for arg in getattr(annotation, "__args__", ()):
        found = _sub_model(arg)
        if found is not None:
            return found
    return None
