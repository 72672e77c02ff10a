"""OEE per ISO 22400-2: the time model of a work unit and the KPIs computed on it. Pure.

`OeeFigures` holds what was measured over one period of one work unit (asset, line, ...): the
time elements and the counts. The KPIs are properties computed from them, never stored, so a
roll-up (`a + b`: two shifts, two machines, a week) sums times and counts and computes the KPIs
of the sums. Averaging percentages would weigh a 2-hour shift like an 8-hour one.

The time model (ISO 22400-2, "time model for work units"; element names and abbreviations are
the standard's, clause numbers not checked against its text):

    reference (calendar) time                                          TEEP's base, not ISO
    └─ planned operation time POT       (shifts; the rest is not scheduled)
       ├─ planned down time PDOT        (breaks, meals, planned maintenance, ...)
       ├─ not charged                   (blocked, starved: caused by a neighbour; Kiln's, not ISO)
       └─ planned busy time PBT = POT - PDOT - not charged
          ├─ actual unit down time ADOT (not executing orders although available)
          ├─ actual unit delay time ADET (malfunctions, minor stops during an order)
          ├─ actual unit setup time AUST
          ├─ actual production time APT (producing: value-adding time only)
          └─ unaccounted                (PBT minus the four above; zero when all is classified)

The KPIs (ISO 22400-2 KPI definitions "Availability", "Effectiveness", "Quality ratio",
"OEE index"):

    availability   A = APT / PBT
    effectiveness  P = PRT x PQ / APT   (PRT: planned run time per unit; PQ: produced quantity)
    quality ratio  Q = GQ / PQ          (GQ: good quantity)
    OEE            = A x P x Q
    TEEP           = OEE x PBT / calendar time   (not in ISO 22400: the usual TPM extension)

PRT differs per product, so what is held is `ideal_run_time_us`, the sum of PRT x PQ over what
was produced: the time the produced quantity takes at the planned rate. It sums across
products, which PRT itself does not.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

ISO_22400_2 = "ISO 22400-2:2014"


@dataclass(frozen=True, slots=True)
class OeeFigures:
    """Time elements (µs) and counts of one period; the KPIs are computed from them.

    A KPI whose denominator is zero is None (no data), except OEE and TEEP, which are 0 when
    time was planned and nothing was produced: a machine down all shift has an OEE of 0.
    """

    calendar_time_us: int = 0
    planned_operation_time_us: int = 0  # POT
    planned_down_time_us: int = 0  # PDOT, planned maintenance included
    planned_maintenance_time_us: int = 0  # the part of PDOT that is planned maintenance
    not_charged_time_us: int = 0  # blocked or starved: not this unit's loss (taxonomy)
    actual_unit_down_time_us: int = 0  # ADOT
    actual_unit_delay_time_us: int = 0  # ADET
    actual_unit_setup_time_us: int = 0  # AUST
    actual_production_time_us: int = 0  # APT
    ideal_run_time_us: float = 0.0  # sum of PRT x PQ
    produced_quantity: int = 0  # PQ
    good_quantity: int = 0  # GQ

    def __post_init__(self) -> None:
        for name in _NAMES:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} is {getattr(self, name)}: it cannot be negative")
        if self.planned_maintenance_time_us > self.planned_down_time_us:
            raise ValueError(
                f"planned maintenance ({self.planned_maintenance_time_us} µs) exceeds planned "
                f"down time ({self.planned_down_time_us} µs): PDOT includes planned "
                "maintenance, add it there"
            )
        if self.planned_down_time_us + self.not_charged_time_us > self.planned_operation_time_us:
            raise ValueError(
                f"planned down time ({self.planned_down_time_us} µs) and time not charged "
                f"({self.not_charged_time_us} µs) exceed planned operation time "
                f"({self.planned_operation_time_us} µs): breaks and planned stops lie within "
                "the shifts"
            )
        if self.planned_operation_time_us > self.calendar_time_us:
            raise ValueError(
                f"planned operation time ({self.planned_operation_time_us} µs) exceeds the "
                f"calendar time ({self.calendar_time_us} µs) of the period"
            )
        if self.accounted_time_us > self.planned_busy_time_us:
            # The guard against counting an instant twice (point85/OEE-Designer#9): with it,
            # availability stays within 0..1. Resolve overlapping stop records first
            # (kiln.production.intervals.resolve_overlaps).
            raise ValueError(
                f"ADOT + ADET + AUST + APT = {self.accounted_time_us} µs exceeds planned busy "
                f"time PBT = {self.planned_busy_time_us} µs: some time is counted twice or lies "
                "outside the planned busy time; resolve overlapping records and clip them to it"
            )
        if self.good_quantity > self.produced_quantity:
            raise ValueError(
                f"good quantity {self.good_quantity} exceeds produced quantity "
                f"{self.produced_quantity}: the produced quantity counts good and scrap"
            )

    @classmethod
    def unchecked(cls, values: tuple[Any, ...]) -> OeeFigures:
        """Figures from values in field order, without `__post_init__`'s checks: for values
        already checked (`valid_columns`) or that keep them by construction (sums)."""
        out = object.__new__(cls)
        for name, value in zip(_NAMES, values, strict=True):
            object.__setattr__(out, name, value)
        return out

    @staticmethod
    def valid_columns(*columns: Any) -> Any:
        """`__post_init__`'s checks on whole NumPy columns (field order): True where a row
        passes every one."""
        (cal, pot, pdot, pm, nc, adot, adet, aust, apt, irt, pq, gq) = columns
        ok = (cal >= 0) & (pot >= 0) & (pdot >= 0) & (pm >= 0) & (nc >= 0) & (adot >= 0)
        ok &= (adet >= 0) & (aust >= 0) & (apt >= 0) & (irt >= 0) & (pq >= 0) & (gq >= 0)
        ok &= (pm <= pdot) & (pdot + nc <= pot) & (pot <= cal)
        ok &= adot + adet + aust + apt <= pot - pdot - nc
        ok &= gq <= pq
        return ok

    # -- derived time elements -------------------------------------------------------------

    @property
    def planned_busy_time_us(self) -> int:
        """PBT = POT - PDOT (- the time blocked or starved, which is not this unit's)."""
        return self.planned_operation_time_us - self.planned_down_time_us - self.not_charged_time_us

    @property
    def accounted_time_us(self) -> int:
        return (
            self.actual_unit_down_time_us
            + self.actual_unit_delay_time_us
            + self.actual_unit_setup_time_us
            + self.actual_production_time_us
        )

    @property
    def unaccounted_time_us(self) -> int:
        """Planned busy time in no class: an availability loss with no reason yet."""
        return self.planned_busy_time_us - self.accounted_time_us

    @property
    def scrap_quantity(self) -> int:
        return self.produced_quantity - self.good_quantity

    # -- KPIs ------------------------------------------------------------------------------

    @property
    def availability(self) -> float | None:
        """APT / PBT."""
        pbt = self.planned_busy_time_us
        return self.actual_production_time_us / pbt if pbt else None

    @property
    def performance(self) -> float | None:
        """Effectiveness, PRT x PQ / APT. Above 1 means the planned rate is set too slow."""
        apt = self.actual_production_time_us
        return self.ideal_run_time_us / apt if apt else None

    @property
    def quality(self) -> float | None:
        """Quality ratio, GQ / PQ."""
        pq = self.produced_quantity
        return self.good_quantity / pq if pq else None

    @property
    def oee(self) -> float | None:
        """A x P x Q, which reduces to (PRT x PQ) x (GQ / PQ) / PBT: defined whenever PBT is,
        and 0 when nothing was produced."""
        pbt = self.planned_busy_time_us
        if not pbt:
            return None
        if not self.produced_quantity:
            return 0.0
        return self.ideal_run_time_us * self.good_quantity / self.produced_quantity / pbt

    @property
    def teep(self) -> float | None:
        """OEE x PBT / calendar time: the same good output measured against all the time."""
        cal = self.calendar_time_us
        if not cal:
            return None
        if not self.produced_quantity:
            return 0.0
        return self.ideal_run_time_us * self.good_quantity / self.produced_quantity / cal

    # -- roll-up and drill-down ------------------------------------------------------------

    def __add__(self, other: OeeFigures) -> OeeFigures:
        """The figures of both periods (or units) together: times and counts summed."""
        if not isinstance(other, OeeFigures):
            return NotImplemented
        # Unchecked: every invariant `__post_init__` checks is a linear inequality (a sum of
        # elements at most another element, nothing negative), so the sum of figures that
        # hold them holds them too; checking again was a fifth of a year's recompute.
        return OeeFigures.unchecked(tuple(getattr(self, n) + getattr(other, n) for n in _NAMES))

    def to_json(self) -> dict[str, Any]:
        """Every KPI with its formula and the numbers it was computed from, then all the time
        elements and counts, so a figure on a dashboard can be opened down to its inputs."""
        pbt: dict[str, float] = {"planned_busy_time_us": self.planned_busy_time_us}
        apt: dict[str, float] = {"actual_production_time_us": self.actual_production_time_us}
        irt = {"ideal_run_time_us": self.ideal_run_time_us}
        pq: dict[str, float] = {"produced_quantity": self.produced_quantity}
        gq: dict[str, float] = {"good_quantity": self.good_quantity}
        cal: dict[str, float] = {"calendar_time_us": self.calendar_time_us}
        kpis: dict[str, tuple[float | None, str, dict[str, float]]] = {
            "availability": (self.availability, "APT / PBT", apt | pbt),
            "performance": (self.performance, "PRT x PQ / APT", irt | apt),
            "quality": (self.quality, "GQ / PQ", gq | pq),
            "oee": (self.oee, "availability x performance x quality", apt | pbt | irt | gq | pq),
            "teep": (self.teep, "OEE x PBT / calendar time", pbt | irt | gq | pq | cal),
        }
        out: dict[str, Any] = {
            name: {"value": value, "formula": formula, "inputs": inputs}
            for name, (value, formula, inputs) in kpis.items()
        }
        out["time_elements_us"] = {
            "calendar_time": self.calendar_time_us,
            "planned_operation_time": self.planned_operation_time_us,
            "planned_down_time": self.planned_down_time_us,
            "planned_maintenance_time": self.planned_maintenance_time_us,
            "not_charged_time": self.not_charged_time_us,
            "planned_busy_time": self.planned_busy_time_us,
            "actual_unit_down_time": self.actual_unit_down_time_us,
            "actual_unit_delay_time": self.actual_unit_delay_time_us,
            "actual_unit_setup_time": self.actual_unit_setup_time_us,
            "actual_production_time": self.actual_production_time_us,
            "unaccounted_time": self.unaccounted_time_us,
            "ideal_run_time": self.ideal_run_time_us,
        }
        out["counts"] = {
            "produced": self.produced_quantity,
            "good": self.good_quantity,
            "scrap": self.scrap_quantity,
        }
        out["standard"] = ISO_22400_2
        return out


# The fields in order, looked up once: `dataclasses.fields` on every sum was a fifth of a
# year's recompute.
_NAMES: tuple[str, ...] = tuple(f.name for f in fields(OeeFigures))
