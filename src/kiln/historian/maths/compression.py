"""Per-tag compression: exception reporting and swinging door, as the PI System does them.

Both are streaming: feed a tag's points in time order to `offer`, store what it returns, and
call `flush` at the end (or when the tag must be made durable): the point it held back is then
stored too. Points of a quality other than Good, and any change of quality, are always kept.

- **Exception** (deadband and maximum time, as at a data source): a point is kept when it moved
  more than `deviation` from the last kept one, or `max_time_us` has passed since it. The point
  received just before such an exception is kept as well, so the stepped reconstruction (the
  last kept value until the next kept point) is never further than `deviation` from any point
  dropped, and the trend into the exception starts where it really did.
- **Swinging door** (deviation and maximum time): between the last kept point A and the held
  point S, every dropped point lies within `deviation` of the straight line from A to S; a new
  point that would break this for any dropped point makes S kept and the door start again from
  it. So the linear reconstruction is never further than `deviation` from a dropped point.
  (The textbook algorithm only narrows the door's slopes; checking the line to the new point
  against them is what makes the bound hold for every point, not only on average.)

Counters and states should not be compressed: compression is off (`none`) unless configured.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from pydantic import Field

from kiln.core.compression import CompressionSpec

# (ts µs, value, quality)
Point = tuple[int, float, int]

_GOOD_BELOW = 1 << 30  # OPC UA severity Good


@dataclass(slots=True)
class CompressionStats:
    offered: int = 0
    kept: int = 0

    @property
    def ratio(self) -> float:
        """Points offered per point kept (1.0: nothing dropped)."""
        return self.offered / self.kept if self.kept else 1.0


def compressor(spec: CompressionSpec) -> Compressor:
    if spec.method == "exception":
        return ExceptionFilter(deviation=spec.deviation, max_time_us=spec.max_time_us)
    if spec.method == "swinging_door":
        return SwingingDoor(deviation=spec.deviation, max_time_us=spec.max_time_us)
    return Passthrough()


@dataclass(slots=True)
class Compressor:
    stats: CompressionStats = field(default_factory=CompressionStats)

    def offer(self, point: Point) -> list[Point]:
        raise NotImplementedError

    def flush(self) -> list[Point]:
        return []

    @property
    def held(self) -> Point | None:
        """The newest point, offered but not yet kept or dropped."""
        return None

    def run(self, points: list[Point]) -> list[Point]:
        """Compress a whole series (tests, backfills): offer each point, then flush."""
        kept: list[Point] = []
        for p in points:
            kept.extend(self.offer(p))
        kept.extend(self.flush())
        return kept

    def _keep(self, *points: Point) -> list[Point]:
        self.stats.kept += len(points)
        return list(points)


@dataclass(slots=True)
class Passthrough(Compressor):
    def offer(self, point: Point) -> list[Point]:
        self.stats.offered += 1
        return self._keep(point)


def _good(p: Point) -> bool:
    return p[2] < _GOOD_BELOW and not math.isnan(p[1])


@dataclass(slots=True)
class ExceptionFilter(Compressor):
    deviation: float = 0.0
    max_time_us: int = 600_000_000
    _last: Point | None = None  # the last point kept
    _held: Point | None = None  # the last point received and not kept

    def offer(self, point: Point) -> list[Point]:
        self.stats.offered += 1
        last, held = self._last, self._held
        if last is None or point[2] != last[2] or not _good(point) or point[0] <= last[0]:
            self._held, self._last = None, point
            return self._keep(held, point) if held is not None else self._keep(point)
        if abs(point[1] - last[1]) > self.deviation:
            # An exception: the value before it goes too, so the trend into it is true.
            self._held, self._last = None, point
            return self._keep(held, point) if held is not None else self._keep(point)
        if point[0] - last[0] >= self.max_time_us:
            self._held, self._last = None, point  # a heartbeat: the value held still
            return self._keep(point)
        self._held = point
        return []

    def flush(self) -> list[Point]:
        held, self._held = self._held, None
        if held is None:
            return []
        self._last = held
        return self._keep(held)

    @property
    def held(self) -> Point | None:
        return self._held


@dataclass(slots=True)
class SwingingDoor(Compressor):
    deviation: float = 0.0
    max_time_us: int = 600_000_000
    _anchor: Point | None = None  # A: the last point kept
    _held: Point | None = None  # S: the newest point, kept only when the door closes
    _low: float = -math.inf  # the door: slopes from A that pass within `deviation` of every
    _high: float = math.inf  # point dropped since A

    def offer(self, point: Point) -> list[Point]:
        self.stats.offered += 1
        anchor, held = self._anchor, self._held
        newest = held if held is not None else anchor
        if (
            anchor is None
            or newest is None
            or not _good(point)
            or not _good(anchor)
            or point[2] != anchor[2]
            or point[0] <= newest[0]  # not after the newest: no slope to it
        ):
            # Start (again) at this point: a new tag, a Bad value, or a change of quality.
            out = [held] if held is not None else []
            self._restart(point)
            return self._keep(*out, point)
        if held is None:
            self._held = point
            return []
        dt_held = held[0] - anchor[0]
        low = max(self._low, (held[1] - self.deviation - anchor[1]) / dt_held)
        high = min(self._high, (held[1] + self.deviation - anchor[1]) / dt_held)
        slope = (point[1] - anchor[1]) / (point[0] - anchor[0])
        # Strictly inside: a point exactly on the door's edge closes it, as in the published
        # examples the tests check against.
        if low < slope < high and point[0] - anchor[0] < self.max_time_us:
            self._low, self._high, self._held = low, high, point  # S is dropped
            return []
        # The line from A to the new point would miss a dropped point (or A is too old):
        # S is kept and becomes the new A.
        self._anchor, self._held = held, point
        self._low, self._high = -math.inf, math.inf
        return self._keep(held)

    def flush(self) -> list[Point]:
        held, self._held = self._held, None
        if held is None:
            return []
        self._restart(held)
        return self._keep(held)

    @property
    def held(self) -> Point | None:
        return self._held

    def _restart(self, point: Point) -> None:
        self._anchor, self._held = point, None
        self._low, self._high = -math.inf, math.inf


class CompressionRule(CompressionSpec):
    """Compression for one tag (its full path) or for every tag of a namespace subtree."""

    prefix: str = Field(description="a tag path, or the path of a subtree of the namespace")


def rules_resolver(
    rules: Sequence[CompressionRule], typed: Mapping[str, CompressionSpec] | None = None
) -> Callable[[str], CompressionSpec | None]:
    """path -> how the tag is compressed, or None: a rule naming the tag's own path first, then
    its asset type's tag definition (`typed`: path -> spec), then the most specific subtree rule
    (segment-wise)."""
    by_prefix = {r.prefix.strip("/"): r for r in rules}
    typed = typed or {}

    def resolve(path: str) -> CompressionSpec | None:
        found: CompressionSpec | None = by_prefix.get(path) or typed.get(path)
        if found is None:
            parts = path.split("/")
            for n in range(len(parts) - 1, 0, -1):
                found = by_prefix.get("/".join(parts[:n]))
                if found is not None:
                    break
        return found if found is not None and found.method != "none" else None

    return resolve
