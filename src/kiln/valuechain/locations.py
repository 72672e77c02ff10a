"""Inventory locations: where stock is kept, tied to the ISA-95 equipment hierarchy.

A location stands at an **asset path** of the hierarchy (an enterprise, site, area, line, cell
or asset: `acme/plant1/stores`, `acme/plant1/packing/line2`) and may name a storage **zone**
and a **bin** within it (`A`, `03-2`), which the hierarchy does not model. Its **kind** says
what the stock there is for: a warehouse, a storage zone inside one, line side (stock at a line
waiting to be consumed), quarantine (held stock), shipping or receiving.

Locations form a tree through `parent`: a storage zone inside a warehouse, bins inside a zone.
A child stands at its parent's asset path or below it, since stock kept inside a warehouse of
one site cannot be at another site. Parents are known, and the tree has no cycle.

`location_problems` checks locations as a whole, and against the hierarchy's known asset paths
when they are given; `LocationTree` answers children, subtrees, ancestors, and which locations
stand under an asset path.

Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kiln.core.errors import InvalidPathError
from kiln.core.values import path_has_prefix, validate_path
from kiln.valuechain.master import CODE_PATTERN

# A zone or bin: a short label of letters, digits and the separators people use in bin names,
# with no space at either end (a spreadsheet cell's stray space must not make another bin).
LABEL_PATTERN = r"^[A-Za-z0-9_](?:[A-Za-z0-9_.\-/ ]{0,30}[A-Za-z0-9_.\-/])?$"
_ENTERPRISE = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LocationKind(StrEnum):
    WAREHOUSE = "warehouse"
    STORAGE_ZONE = "storage_zone"
    LINE_SIDE = "line_side"
    QUARANTINE = "quarantine"
    SHIPPING = "shipping"
    RECEIVING = "receiving"


class Location(_Frozen):
    """A place stock is kept: an asset of the hierarchy, and a zone and bin within it."""

    code: str = Field(pattern=CODE_PATTERN)
    name: str = Field(default="", max_length=128)
    asset_path: str = Field(min_length=1, max_length=512)
    kind: LocationKind
    zone: str | None = Field(default=None, pattern=LABEL_PATTERN)
    bin: str | None = Field(default=None, pattern=LABEL_PATTERN)
    parent: str | None = Field(default=None, pattern=CODE_PATTERN)

    @field_validator("asset_path")
    @classmethod
    def _path(cls, path: str) -> str:
        # As the asset model has it (`AssetDef`): an enterprise is one segment, the rest paths.
        if "/" not in path:
            if re.fullmatch(_ENTERPRISE, path) is None:
                raise ValueError(f"asset path {path!r} is no enterprise name nor path")
            return path
        try:
            return validate_path(path)
        except InvalidPathError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.bin is not None and self.zone is None:
            raise ValueError(f"location {self.code}: a bin is given without its zone")
        if self.parent == self.code:
            raise ValueError(f"location {self.code} is its own parent")
        return self


@dataclass(frozen=True, slots=True)
class LocationProblem:
    """Why a location does not fit the others or the hierarchy; `field` is the one at fault."""

    code: str
    field: str
    reason: str

    def __str__(self) -> str:
        return f"location {self.code}: {self.reason}"


class LocationError(ValueError):
    """Locations that do not fit together or the hierarchy; `problems` holds every reason."""

    def __init__(self, problems: Iterable[LocationProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


def location_problems(
    locations: Iterable[Location], known_paths: Iterable[str] | None = None
) -> list[LocationProblem]:
    """Every way `locations` fail as a whole: a code given twice, an unknown parent, a child
    outside its parent's asset path, a cycle of parents (reported once, at the location of
    the cycle with the smallest code); with `known_paths`, an asset path the hierarchy lacks."""
    locations = list(locations)
    known = None if known_paths is None else frozenset(known_paths)
    problems: list[LocationProblem] = []
    by_code: dict[str, Location] = {}
    for loc in locations:
        if loc.code in by_code:
            problems.append(LocationProblem(loc.code, "code", f"{loc.code} is given twice"))
        else:
            by_code[loc.code] = loc
    for loc in locations:
        if known is not None and loc.asset_path not in known:
            problems.append(
                LocationProblem(
                    loc.code,
                    "asset_path",
                    f"asset path {loc.asset_path} is not in the asset hierarchy"
                    + _nearest_hint(loc.asset_path, known),
                )
            )
        if loc.parent is None:
            continue
        parent = by_code.get(loc.parent)
        if parent is None:
            problems.append(
                LocationProblem(loc.code, "parent", f"parent {loc.parent} is no known location")
            )
        elif not path_has_prefix(loc.asset_path, parent.asset_path):
            problems.append(
                LocationProblem(
                    loc.code,
                    "asset_path",
                    f"asset path {loc.asset_path} is not at or below {parent.asset_path}, the "
                    f"asset path of its parent {parent.code}",
                )
            )
    for cycle in _parent_cycles(by_code):
        problems.append(
            LocationProblem(
                cycle[0], "parent", "parents form a cycle: " + " -> ".join((*cycle, cycle[0]))
            )
        )
    return problems


def check_locations(
    locations: Iterable[Location], known_paths: Iterable[str] | None = None
) -> None:
    """Raise LocationError with every problem `location_problems` finds, if it finds any."""
    problems = location_problems(locations, known_paths)
    if problems:
        raise LocationError(problems)


def _nearest_hint(path: str, known: frozenset[str]) -> str:
    head = path
    while "/" in head:
        head = head.rpartition("/")[0]
        if head in known:
            return f" (its nearest known ancestor is {head})"
    return ""


def _parent_cycles(by_code: Mapping[str, Location]) -> list[tuple[str, ...]]:
    """Each cycle of parent links once, starting at its smallest code."""
    cycles: list[tuple[str, ...]] = []
    done: set[str] = set()
    for start in sorted(by_code):
        chain: list[str] = []
        at: str | None = start
        while at is not None and at in by_code and at not in done and at not in chain:
            chain.append(at)
            at = by_code[at].parent
        if at is not None and at in chain:
            cycle = chain[chain.index(at) :]
            first = cycle.index(min(cycle))
            cycles.append((*cycle[first:], *cycle[:first]))
        done.update(chain)
    return cycles


class LocationTree:
    """Locations checked as a whole (LocationError if they fail), with the tree's questions.
    Children and subtrees come in code order."""

    def __init__(
        self, locations: Iterable[Location], known_paths: Iterable[str] | None = None
    ) -> None:
        locations = tuple(locations)
        check_locations(locations, known_paths)
        self._by_code = {loc.code: loc for loc in locations}
        children: dict[str | None, list[str]] = {}
        for code in sorted(self._by_code):
            children.setdefault(self._by_code[code].parent, []).append(code)
        self._children = {k: tuple(v) for k, v in children.items()}

    def __len__(self) -> int:
        return len(self._by_code)

    def __iter__(self) -> Iterator[Location]:
        return iter(self._by_code.values())

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def get(self, code: str) -> Location:
        try:
            return self._by_code[code]
        except KeyError:
            raise KeyError(f"unknown location {code}") from None

    def roots(self) -> tuple[Location, ...]:
        """The locations without a parent."""
        return tuple(self._by_code[c] for c in self._children.get(None, ()))

    def children(self, code: str) -> tuple[Location, ...]:
        """The locations whose parent is `code`."""
        self.get(code)
        return tuple(self._by_code[c] for c in self._children.get(code, ()))

    def subtree(self, code: str) -> tuple[Location, ...]:
        """`code` and every location below it, depth first, each before its children."""
        out: list[Location] = []
        stack = [code]
        while stack:
            at = stack.pop()
            out.append(self.get(at))
            stack.extend(reversed(self._children.get(at, ())))
        return tuple(out)

    def ancestors(self, code: str) -> tuple[Location, ...]:
        """The parent of `code`, its parent, ... up to a root."""
        out: list[Location] = []
        parent = self.get(code).parent
        while parent is not None:
            loc = self._by_code[parent]
            out.append(loc)
            parent = loc.parent
        return tuple(out)

    def under(self, asset_path: str) -> tuple[Location, ...]:
        """The locations that stand at `asset_path` or below it (segment-wise), in code order."""
        return tuple(
            loc
            for code, loc in sorted(self._by_code.items())
            if path_has_prefix(loc.asset_path, asset_path)
        )

    def at_asset(self, path: str) -> tuple[Location, ...]:
        """The locations that stand on the asset nearest above `path` that has any: those of
        the asset itself, else of its parent, and so on up; empty if no ancestor has one."""
        head: str | None = path
        while head is not None:
            here = tuple(
                loc for code, loc in sorted(self._by_code.items()) if loc.asset_path == head
            )
            if here:
                return here
            head = head.rpartition("/")[0] if "/" in head else None
        return ()
