"""Plain MQTT with JSON payloads: topic filters mapped to namespace paths. Pure: no sockets.

A mapping says which topics to take (an MQTT filter with `+` and `#`), where in the namespace
each lands (a template whose `{1}`, `{2}`, ... are the `+` segments in order and `{#}` what `#`
matched), and where in the JSON payload the value, its timestamp and its quality are:

    topic: factory/+/+/telemetry
    path: acme/plant1/{1}/{2}/temperature
    value: $.temp            # also $.readings[0].v, or $ for a bare JSON number
    timestamp: $.ts          # optional: epoch milliseconds or ISO 8601; else receive time
    quality: $.q             # optional: good/bad/uncertain, a Kiln quality name or StatusCode

Filters follow MQTT 3.1.1 section 4.7 (`#` last and alone in its level, `+` alone in its
level); topics starting with `$` never match a filter starting with a wildcard (4.7.2).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kiln.core.quality import Quality, parse_quality
from kiln.core.values import TagValue, validate_path


class MalformedMessage(ValueError):
    """A message that does not fit its mapping; the message says what was expected."""


_JSON_PATH = re.compile(r"\$((?:\.[A-Za-z_][A-Za-z0-9_-]*|\[\d+\]|\[\"[^\"]+\"\])*)")
_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\[\"([^\"]+)\"\]")
_PLACEHOLDER = re.compile(r"\{(\d+|#)\}")


def parse_json_path(text: str) -> tuple[str | int, ...]:
    """`$.a.b[0]["c d"]` as steps ("a", "b", 0, "c d"); ValueError for anything else."""
    m = _JSON_PATH.fullmatch(text.strip())
    if m is None:
        raise ValueError(
            f"{text!r} is not a JSON path: use $ for the whole payload, $.field, $.a.b, "
            '$.list[0] or $["odd key"]'
        )
    return tuple(
        name if name else (int(index) if index else quoted)
        for name, index, quoted in _STEP.findall(m.group(1))
    )


def extract(doc: Any, steps: Sequence[str | int]) -> Any:
    """The value at `steps` in `doc`; KeyError naming the first missing step."""
    here = doc
    for i, step in enumerate(steps):
        found, here = _step(here, step)
        if not found:
            shown = "$" + "".join(
                f"[{s}]" if isinstance(s, int) else f".{s}" for s in steps[: i + 1]
            )
            raise KeyError(shown)
    return here


def _step(here: Any, step: str | int) -> tuple[bool, Any]:
    if isinstance(step, int):
        if isinstance(here, list) and step < len(here):
            return True, here[step]
    elif isinstance(here, dict) and step in here:
        return True, here[step]
    return False, None


class TopicMapping(BaseModel):
    """One subscription and how its messages become values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str = Field(description="MQTT topic filter, with + and # wildcards")
    path: str = Field(description="namespace path template: {1}, {2} for +, {#} for #")
    value: str = Field(default="$", description="JSON path of the value")
    timestamp: str | None = Field(default=None, description="JSON path of the source time")
    quality: str | None = Field(default=None, description="JSON path of the quality")
    unit: str = Field(default="", max_length=32, description="engineering unit of the values")
    description: str = Field(default="", max_length=500, description="what the values are")

    @field_validator("topic")
    @classmethod
    def _filter(cls, v: str) -> str:
        check_filter(v)
        return v

    @field_validator("value", "timestamp", "quality")
    @classmethod
    def _json_path(cls, v: str | None) -> str | None:
        if v is not None:
            parse_json_path(v)
        return v

    @field_validator("path")
    @classmethod
    def _template(cls, v: str) -> str:
        # Placeholders filled with a sample segment must give a valid namespace path.
        validate_path(_PLACEHOLDER.sub("x", v))
        return v


def check_filter(topic: str) -> None:
    """ValueError unless `topic` is a valid MQTT topic filter (MQTT 3.1.1, 4.7.1)."""
    if not topic or "\0" in topic:
        raise ValueError("a topic filter must be a non-empty string")
    levels = topic.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise ValueError(f"{topic!r}: '#' must be a whole level and the last one")
        if "+" in level and level != "+":
            raise ValueError(f"{topic!r}: '+' must be a whole level")


@dataclass(frozen=True, slots=True)
class CompiledMapping:
    mapping: TopicMapping
    levels: tuple[str, ...]
    value: tuple[str | int, ...]
    timestamp: tuple[str | int, ...] | None
    quality: tuple[str | int, ...] | None
    wildcards: int  # how many `+` levels

    @classmethod
    def of(cls, m: TopicMapping) -> CompiledMapping:
        wanted = {int(p) for p in _PLACEHOLDER.findall(m.path) if p != "#"}
        levels = tuple(m.topic.split("/"))
        plus = levels.count("+")
        if wanted and max(wanted) > plus:
            raise ValueError(
                f"path {m.path!r} uses {{{max(wanted)}}} but topic {m.topic!r} has only "
                f"{plus} '+' level(s)"
            )
        if "{#}" in m.path and levels[-1] != "#":
            raise ValueError(f"path {m.path!r} uses {{#}} but topic {m.topic!r} has no '#'")
        return cls(
            m,
            levels,
            parse_json_path(m.value),
            None if m.timestamp is None else parse_json_path(m.timestamp),
            None if m.quality is None else parse_json_path(m.quality),
            plus,
        )

    def match(self, topic: str) -> str | None:
        """The namespace path for `topic`, or None when the filter does not match it."""
        parts = topic.split("/")
        if topic.startswith("$") and self.levels[0] in ("+", "#"):
            return None  # 4.7.2: $-topics are not matched by a leading wildcard
        captured: list[str] = []
        rest: str | None = None
        for i, level in enumerate(self.levels):
            if level == "#":
                rest = "/".join(parts[i:])
                break
            if i >= len(parts):
                return None
            if level == "+":
                captured.append(parts[i])
            elif level != parts[i]:
                return None
        else:
            if len(parts) != len(self.levels):
                return None

        def fill(m: re.Match[str]) -> str:
            key = m.group(1)
            return rest or "" if key == "#" else captured[int(key) - 1]

        return _PLACEHOLDER.sub(fill, self.mapping.path)


def decode(
    compiled: Sequence[CompiledMapping], topic: str, payload: bytes, receive_us: int
) -> list[TagValue]:
    """Every value that `topic` and `payload` give; MalformedMessage when a matching mapping
    cannot find its value (the other mappings' values are still returned when any is found)."""
    matching = [(c, path) for c in compiled if (path := c.match(topic)) is not None]
    if not matching:
        return []
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise MalformedMessage(f"{topic}: not JSON ({err})") from None
    out: list[TagValue] = []
    problems: list[str] = []
    for c, path in matching:
        try:
            out.append(_value(c, path, doc, receive_us))
        except (KeyError, ValueError) as err:
            problems.append(f"{topic} -> {path}: {err}")
    if problems and not out:
        raise MalformedMessage("; ".join(problems))
    return out


def _value(c: CompiledMapping, path: str, doc: Any, receive_us: int) -> TagValue:
    try:
        path = validate_path(path)
    except ValueError as err:
        raise ValueError(f"topic gives an invalid path: {err}") from None
    value = extract(doc, c.value)
    if not isinstance(value, bool | int | float | str):
        raise ValueError(f"value at {c.mapping.value} is {type(value).__name__}, not a scalar")
    ts = receive_us if c.timestamp is None else _time_us(extract(doc, c.timestamp))
    quality = Quality.GOOD if c.quality is None else _quality(extract(doc, c.quality))
    return TagValue(path, value, ts, quality)


def _time_us(raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueError("a timestamp cannot be true/false")
    if isinstance(raw, int | float):
        # Epoch milliseconds, as in Kiln's HTTP ingest; seconds are too easy to mistake.
        if not 1e11 <= raw < 1e14:
            raise ValueError(f"timestamp {raw} is not epoch milliseconds")
        return round(raw * 1000)
    if isinstance(raw, str):
        try:
            dt = datetime.fromisoformat(raw)
        except ValueError:
            raise ValueError(f"timestamp {raw!r} is not ISO 8601") from None
        if dt.tzinfo is None:
            raise ValueError(f"timestamp {raw!r} has no time zone")
        return round(dt.timestamp() * 1_000_000)
    raise ValueError(f"timestamp is {type(raw).__name__}, not a number or text")


def _quality(raw: Any) -> int:
    if isinstance(raw, bool):  # a device's "ok" flag
        return Quality.GOOD if raw else Quality.BAD
    if isinstance(raw, int | str):
        return parse_quality(raw)
    raise ValueError(f"quality {raw!r} is not a name or a StatusCode")
