"""What virtual factory to build: its size, rate, shift pattern and how often things go wrong.

A `FactorySpec` is embedded in the plant configuration under `sim:`; the same spec and seed
always give the same plant and the same signals.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kiln.production.shifts import ShiftPattern
from kiln.sim.catalog import CNC_TAG_COUNT, CONVEYOR_TAG_COUNT, FILLER_TAG_COUNT

_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$"

MAX_TAGS = 1_000_000
# Night shifts run slower unless a pace is given per shift: fewer people on the floor.
NIGHT_PACE = 0.85
# Share of the tags that `for_tag_count` puts on machining lines, as in the default plant.
_MACHINING_SHARE = 2 / 3


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _is_night(hour: int) -> bool:
    return hour >= 20 or hour < 5


class ShiftSpec(ShiftPattern):
    """The plant's shift pattern (`kiln.production.shifts`), and how fast each shift runs."""

    pace: tuple[float, ...] | None = Field(
        default=None,
        description="speed factor per shift; by default 1.0, and 0.85 for night shifts",
    )

    @model_validator(mode="after")
    def _paces_fit(self) -> Self:
        if self.pace is not None:
            if len(self.pace) != len(self.starts):
                raise ValueError(
                    f"pace has {len(self.pace)} entries but there are {len(self.starts)} shifts; "
                    "give one speed factor per shift"
                )
            if any(not 0.0 < p <= 2.0 for p in self.pace):
                raise ValueError(f"pace factors must be in (0, 2], got {list(self.pace)}")
        return self

    @property
    def paces(self) -> tuple[float, ...]:
        if self.pace is not None:
            return self.pace
        return tuple(NIGHT_PACE if _is_night(h) else 1.0 for h in self.starts)


class FaultRates(_Frozen):
    """How often things go wrong, in events per hour per machine (of the kind named).

    Faults of running machines are counted per running hour. Tool breakage is more likely on a
    worn tool: from a quarter of the rate on a new tool to 1.75 times it on a worn-out one.
    """

    overheat_per_hour: float = Field(
        default=0.1, ge=0.0, description="CNC cooling failures; the spindle then overheats"
    )
    tool_breakage_per_hour: float = Field(default=0.1, ge=0.0, description="CNC tool breakage")
    jam_per_hour: float = Field(default=0.5, ge=0.0, description="filler and conveyor jams")
    material_shortage_per_hour: float = Field(
        default=0.2, ge=0.0, description="filler runs out of product or containers"
    )
    sensor_failure_per_hour: float = Field(
        default=0.1, ge=0.0, description="CNC temperature sensor drop-outs (bad quality)"
    )
    fill_drift_per_hour: float = Field(
        default=0.5, ge=0.0, description="filler fill weight drifts off target until corrected"
    )
    micro_stop_per_hour: float = Field(
        default=3.0, ge=0.0, description="short waits of any machine (idle, reason waiting)"
    )


class FactorySpec(_Frozen):
    """Size, rate and behaviour of the virtual factory. Deterministic for a seed."""

    seed: int = 42
    enterprise: str = Field(default="acme", pattern=_NAME)
    site: str = Field(default="plant1", pattern=_NAME)
    machining_lines: int = Field(default=1, ge=0)
    machines_per_line: int = Field(default=4, ge=1, le=10_000)
    packaging_lines: int = Field(default=1, ge=0)
    fillers_per_line: int = Field(default=2, ge=1, le=10_000)
    rate_hz: float = Field(default=1.0, gt=0.0, le=100.0, description="frames per second")
    shifts: ShiftSpec = Field(default_factory=ShiftSpec)
    faults: FaultRates = Field(default_factory=FaultRates)
    fill_target_g: float = Field(default=500.0, gt=0.0)
    fill_sigma_g: float = Field(default=1.5, gt=0.0, description="fill weight standard deviation")
    fill_tolerance_g: float = Field(
        default=5.0, gt=0.0, description="the check weigher rejects fills further off target"
    )

    @field_validator("shifts", mode="before")
    @classmethod
    def _shift_hours(cls, value: Any) -> Any:
        # `shifts: [6, 14, 22]` is the common case in YAML; accept it as the start hours.
        if isinstance(value, list | tuple):
            return {"starts": value}
        return value

    @model_validator(mode="after")
    def _size(self) -> Self:
        if self.machining_lines + self.packaging_lines == 0:
            raise ValueError("the factory has no lines: set machining_lines or packaging_lines")
        if self.tag_count > MAX_TAGS:
            raise ValueError(
                f"this factory would have {self.tag_count} tags; the limit is {MAX_TAGS}"
            )
        return self

    @property
    def machining_line_tags(self) -> int:
        return self.machines_per_line * CNC_TAG_COUNT

    @property
    def packaging_line_tags(self) -> int:
        return self.fillers_per_line * FILLER_TAG_COUNT + CONVEYOR_TAG_COUNT

    @property
    def tag_count(self) -> int:
        return (
            self.machining_lines * self.machining_line_tags
            + self.packaging_lines * self.packaging_line_tags
        )

    @classmethod
    def for_tag_count(cls, n: int, **kw: Any) -> FactorySpec:
        """A spec with about `n` tags (about 2/3 on machining lines), other fields from `kw`."""
        if n < 1:
            raise ValueError(f"tag count must be at least 1, got {n}")
        if n > MAX_TAGS:
            raise ValueError(f"tag count {n} is above the limit of {MAX_TAGS}")
        fixed = {"machining_lines", "packaging_lines"} & kw.keys()
        if fixed:
            raise TypeError(f"for_tag_count chooses {sorted(fixed)} itself; do not pass them")
        probe = cls(**kw)
        per_m, per_p = probe.machining_line_tags, probe.packaging_line_tags
        m0 = round(n * _MACHINING_SHARE / per_m)

        def error(mp: tuple[int, int]) -> int:
            return abs(mp[0] * per_m + mp[1] * per_p - n)

        mixed = [(m, round((n - m * per_m) / per_p)) for m in range(max(m0 - 2, 0), m0 + 3)]
        mixed = [(m, p) for m, p in mixed if p >= 0 and m + p > 0]
        # Small counts may fit one kind of line better than the 2:1 mix.
        single = [(max(round(n / per_m), 1), 0), (0, max(round(n / per_p), 1))]
        best = min(mixed, key=error) if mixed else single[0]
        if error(best) > 0.02 * n:
            best = min([best, *single], key=error)
        return cls(**kw, machining_lines=best[0], packaging_lines=best[1])
