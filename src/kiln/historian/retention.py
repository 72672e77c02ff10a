"""How long raw points are kept, per tag or namespace subtree, and how much disk they may use.

    historian:
      retention:
        - {prefix: acme, raw_days: 365, rollup_days: 3650}
        - {prefix: acme/plant1/line1/vibration, raw_days: 30}
      disk_limit_bytes: 50_000_000_000   # warn at 90 %, then drop the oldest points

The most specific rule covering a tag wins; a tag no rule covers is kept forever (until the
disk limit), and so are the rollups of a rule without `rollup_days`. Rollups are never
deleted before the raw points they summarize, so a query finds one or the other. Whatever the rules say, the newest point of every tag is kept: report by exception
means a tag that has not changed for longer than its retention still has that value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pydantic import BaseModel, ConfigDict, Field, model_validator

DAY_US = 86_400_000_000


class RetentionRule(BaseModel):
    """Raw points (rollup rows) of the tags at or under `prefix` older than `raw_days`
    (`rollup_days`) are deleted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prefix: str = Field(description="a tag path, or the path of a subtree of the namespace")
    raw_days: float | None = Field(
        default=None, gt=0, le=36_500, description="days of raw points to keep (default: all)"
    )
    rollup_days: float | None = Field(
        default=None, gt=0, le=36_500, description="days of rollup rows to keep (default: all)"
    )

    @model_validator(mode="after")
    def _something(self) -> RetentionRule:
        if self.raw_days is None and self.rollup_days is None:
            raise ValueError(f"retention rule for {self.prefix!r} sets neither raw_days nor "
                             "rollup_days")  # fmt: skip
        return self


def retention_resolver(
    rules: Sequence[RetentionRule], *, rollups: bool = False
) -> Callable[[str], float | None]:
    """path -> the raw days (with `rollups`, the rollup days) of the most specific rule
    covering it (segment-wise); None: keep all."""
    by_prefix = {r.prefix.strip("/"): r for r in rules}

    def resolve(path: str) -> float | None:
        parts = path.split("/")
        for n in range(len(parts), 0, -1):
            rule = by_prefix.get("/".join(parts[:n]))
            if rule is not None:
                if not rollups:
                    return rule.raw_days
                if rule.rollup_days is None or rule.raw_days is None:
                    return None  # kept for ever, as raw points that are kept for ever
                return max(rule.rollup_days, rule.raw_days)
        return None

    return resolve
