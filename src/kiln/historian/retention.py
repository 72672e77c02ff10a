"""How long raw points are kept, per tag or namespace subtree, and how much disk they may use.

    historian:
      retention:
        - {prefix: acme, raw_days: 365}
        - {prefix: acme/plant1/line1/vibration, raw_days: 30}
      disk_limit_bytes: 50_000_000_000   # warn at 90 %, then drop the oldest points

The most specific rule covering a tag wins; a tag no rule covers is kept forever (until the
disk limit). Whatever the rules say, the newest point of every tag is kept: report by exception
means a tag that has not changed for longer than its retention still has that value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pydantic import BaseModel, ConfigDict, Field

DAY_US = 86_400_000_000


class RetentionRule(BaseModel):
    """Raw points of the tags at or under `prefix` older than `raw_days` are deleted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prefix: str = Field(description="a tag path, or the path of a subtree of the namespace")
    raw_days: float = Field(gt=0, le=36_500, description="days of raw points to keep")


def retention_resolver(rules: Sequence[RetentionRule]) -> Callable[[str], float | None]:
    """path -> the days of the most specific rule covering it (segment-wise), or None."""
    by_prefix = {r.prefix.strip("/"): r.raw_days for r in rules}

    def resolve(path: str) -> float | None:
        parts = path.split("/")
        for n in range(len(parts), 0, -1):
            days = by_prefix.get("/".join(parts[:n]))
            if days is not None:
                return days
        return None

    return resolve
