"""The commands the alarm engine answers on the bus (target `alarms`).

The API, in this process or another, only talks to the engine through these. Operator actions
name the user (the API has authenticated and authorised them for the alarm's asset); every
reply comes after the engine's commit. Failures are `CommandError`s: NOT_FOUND for an unknown
alarm, INVALID for bad arguments or an action the state machine refuses (the message says why).

* `list` {asset?, priorities?, states?} -> {"alarms": [...], "now_us", "counts"}
* `ack` {ids, note?, user} -> {"results": [{"id", "ok", "error"}]}
* `shelve` {id, duration_s?, one_shot?, note?, user}, `unshelve` {id, note?, user},
  `out_of_service` {id, on, reason?, user}, `reset` {id, note?, user},
  `comment` {id, comment, user} -> {"alarm": {...}}
* `journal` {start_us?, end_us?, asset?, alarm_id?, priorities?, events?, states?,
  before_seq?, after_seq?, limit?, ascending?} -> {"entries": [...]}
* `kpis` {start_us, end_us, asset?, positions?} -> the KPIs' JSON
* `definitions` {asset?} -> {"definitions": [...], "alarms": [ids]}
* `define` {asset, definition, user} / `undefine` {asset, name} -> {"alarms": n}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from kiln.alarms.compile import AlarmConfigError
from kiln.alarms.definitions import AlarmDef, Priority
from kiln.alarms.errors import UnknownAlarm
from kiln.alarms.kpis import alarm_kpis
from kiln.alarms.records import AlarmRecord
from kiln.alarms.states import Event, State
from kiln.alarms.store import JournalQuery, StoredDefinition
from kiln.core.bus import Command, CommandError, CommandFailure
from kiln.core.values import path_has_prefix

if TYPE_CHECKING:
    from kiln.alarms.engine import AlarmEngine

MAX_JOURNAL = 10_000
MAX_ACK = 1_000
_DEF = TypeAdapter[AlarmDef](AlarmDef)

# The `states` filter of `list`: what each name selects.
STATE_FILTERS: dict[str, Callable[[AlarmRecord], bool]] = {
    "active": lambda r: r.state.process in (State.UNACKNOWLEDGED, State.ACKNOWLEDGED),
    "unacknowledged": lambda r: (
        r.state.process
        in (State.UNACKNOWLEDGED, State.RTN_UNACKNOWLEDGED, State.LATCHED_UNACKNOWLEDGED)
    ),
    "latched": lambda r: (
        r.state.process in (State.LATCHED_UNACKNOWLEDGED, State.LATCHED_ACKNOWLEDGED)
    ),
    "shelved": lambda r: r.state.shelving.value != "unshelved",
    "suppressed": lambda r: r.state.suppressed,
    "out_of_service": lambda r: r.state.out_of_service,
    "normal": lambda r: r.state.shown is State.NORMAL,
    "all": lambda r: True,
}


def _not_normal(rec: AlarmRecord) -> bool:
    s = rec.state
    return (
        s.process is not State.NORMAL
        or s.shelving.value != "unshelved"
        or s.suppressed
        or s.out_of_service
    )


def _invalid(message: str) -> CommandError:
    return CommandError(CommandFailure.INVALID, message)


def _str(args: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = args.get(key, default)
    if not isinstance(value, str):
        raise _invalid(f"{key!r} must be a string")
    return value


def _opt_int(args: Mapping[str, Any], key: str) -> int | None:
    value = args.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(f"{key!r} must be an integer")
    return value


def _opt_str(args: Mapping[str, Any], key: str) -> str | None:
    value = args.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _invalid(f"{key!r} must be a string")
    return value


def _names(args: Mapping[str, Any], key: str) -> list[str]:
    value = args.get(key) or []
    if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise _invalid(f"{key!r} must be a list of strings")
    return value


class EngineCommands:
    """The handler of target `alarms` for one `AlarmEngine`."""

    def __init__(self, engine: AlarmEngine) -> None:
        self.engine = engine

    async def __call__(self, command: Command) -> Mapping[str, Any]:
        handler = getattr(self, f"_{command.name}", None)
        if handler is None or command.name not in _COMMANDS:
            raise _invalid(f"the alarm engine answers {', '.join(_COMMANDS)}, not {command.name!r}")
        try:
            result: Mapping[str, Any] = await handler(command.args)
        except UnknownAlarm as err:
            raise CommandError(CommandFailure.NOT_FOUND, f"no alarm {err.args[0]!r}") from None
        except ValueError as err:  # ActionRefused, AlarmConfigError, bad enum values
            raise _invalid(str(err)) from None
        return result

    # -- reading -------------------------------------------------------------------------

    async def _list(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        asset = _opt_str(args, "asset")
        priorities = {Priority(p) for p in _names(args, "priorities")}
        states = _names(args, "states")
        unknown = [s for s in states if s not in STATE_FILTERS]
        if unknown:
            raise _invalid(f"unknown state filter(s) {unknown}: use {', '.join(STATE_FILTERS)}")
        chosen = [STATE_FILTERS[s] for s in states]
        now = self.engine.now_us()
        out: list[dict[str, Any]] = []
        counts = dict.fromkeys(
            ("active", "unacknowledged", "shelved", "suppressed", "out_of_service"), 0
        )
        by_priority = {p.value: 0 for p in Priority}
        for rec in self.engine.listing():
            if asset is not None and not path_has_prefix(rec.asset, asset):
                continue
            if priorities and rec.priority not in priorities:
                continue
            if not (any(f(rec) for f in chosen) if chosen else _not_normal(rec)):
                continue
            out.append(rec.to_json(now))
            for name in counts:
                if STATE_FILTERS[name](rec):
                    counts[name] += 1
            if STATE_FILTERS["unacknowledged"](rec):
                by_priority[rec.priority.value] += 1
        return {"alarms": out, "now_us": now, "counts": counts | {"by_priority": by_priority}}

    async def _journal(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        limit = _opt_int(args, "limit") or 1000
        if not 0 < limit <= MAX_JOURNAL:
            raise _invalid(f"limit must be between 1 and {MAX_JOURNAL}")
        query = JournalQuery(
            start_us=_opt_int(args, "start_us"),
            end_us=_opt_int(args, "end_us"),
            asset=_opt_str(args, "asset"),
            alarm_id=_opt_str(args, "alarm_id"),
            priorities=tuple(Priority(p) for p in _names(args, "priorities")),
            events=tuple(_names(args, "events")),
            states=tuple(State(s) for s in _names(args, "states")),
            before_seq=_opt_int(args, "before_seq"),
            after_seq=_opt_int(args, "after_seq"),
            limit=limit,
            ascending=bool(args.get("ascending", False)),
        )
        entries = await self.engine.read_journal(query)
        return {"entries": [e.to_json() for e in entries]}

    async def _kpis(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        start, end = _opt_int(args, "start_us"), _opt_int(args, "end_us")
        if start is None or end is None or end <= start:
            raise _invalid("kpis need start_us < end_us")
        positions = _opt_int(args, "positions") or 1
        if positions < 1:
            raise _invalid("positions must be 1 or more")
        asset = _opt_str(args, "asset")
        entries = await self.engine.entries_for_kpis(start, end, asset)
        records = [
            r
            for r in self.engine.listing()
            if asset is None or path_has_prefix(r.asset, str(asset))
        ]
        kpis = alarm_kpis(
            entries,
            records,
            start_us=start,
            end_us=end,
            now_us=self.engine.now_us(),
            positions=positions,
            subtree=asset,
        )
        return kpis.to_json()

    async def _definitions(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        asset = _opt_str(args, "asset")
        stored = await self.engine.stored_definitions()
        return {
            "definitions": [
                {
                    "asset": s.asset,
                    "definition": s.definition.model_dump(mode="json"),
                    "updated_by": s.updated_by,
                    "updated_us": s.updated_us,
                }
                for s in stored
                if asset is None or path_has_prefix(s.asset, str(asset))
            ],
            "alarms": [
                spec.id
                for spec in self.engine.specs.values()
                if asset is None or path_has_prefix(spec.asset, str(asset))
            ],
        }

    # -- operator actions ----------------------------------------------------------------

    async def _ack(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        ids = _names(args, "ids")
        if not ids or len(ids) > MAX_ACK:
            raise _invalid(f"ack takes 1 to {MAX_ACK} alarm ids")
        user, note = _str(args, "user"), _str(args, "note", "") if args.get("note") else ""
        results: list[dict[str, Any]] = []
        for alarm_id in ids:
            try:
                rec = await self.engine.act(alarm_id, Event.ACKNOWLEDGE, user=user, comment=note)
            except UnknownAlarm:
                results.append({"id": alarm_id, "ok": False, "error": "no such alarm"})
            except ValueError as err:
                results.append({"id": alarm_id, "ok": False, "error": str(err)})
            else:
                now = self.engine.now_us()
                results.append(
                    {"id": alarm_id, "ok": True, "error": None, "alarm": rec.to_json(now)}
                )
        return {"results": results}

    async def _one(self, args: Mapping[str, Any], event: Event, **kw: Any) -> Mapping[str, Any]:
        rec = await self.engine.act(_str(args, "id"), event, user=_str(args, "user"), **kw)
        return {"alarm": rec.to_json(self.engine.now_us())}

    async def _shelve(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        note = _str(args, "note", "") if args.get("note") else ""
        if args.get("one_shot"):
            return await self._one(args, Event.ONE_SHOT_SHELVE, comment=note)
        duration = args.get("duration_s")
        if isinstance(duration, bool) or not isinstance(duration, int | float):
            raise _invalid("a timed shelve needs duration_s (seconds), or one_shot: true")
        return await self._one(args, Event.TIMED_SHELVE, comment=note, shelve_s=float(duration))

    async def _unshelve(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        note = _str(args, "note", "") if args.get("note") else ""
        return await self._one(args, Event.UNSHELVE, comment=note)

    async def _reset(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        note = _str(args, "note", "") if args.get("note") else ""
        return await self._one(args, Event.RESET, comment=note)

    async def _out_of_service(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        on = args.get("on")
        if not isinstance(on, bool):
            raise _invalid("out_of_service needs on: true or false")
        reason = _str(args, "reason", "") if args.get("reason") else ""
        if on:
            return await self._one(args, Event.OUT_OF_SERVICE_ON, comment=reason, oos_reason=reason)
        return await self._one(args, Event.OUT_OF_SERVICE_OFF, comment=reason)

    async def _comment(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        text = _str(args, "comment").strip()
        if not text:
            raise _invalid("a comment needs some text")
        rec = await self.engine.comment(_str(args, "id"), user=_str(args, "user"), comment=text)
        return {"alarm": rec.to_json(self.engine.now_us())}

    # -- definitions ---------------------------------------------------------------------

    async def _define(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        asset = _str(args, "asset")
        try:
            definition = _DEF.validate_python(args.get("definition"))
        except ValidationError as err:
            raise _invalid(_validation_message(err)) from None
        stored = StoredDefinition(asset, definition, _str(args, "user"), self.engine.now_us())
        try:
            count = await self.engine.define(stored)
        except AlarmConfigError as err:
            raise _invalid(str(err)) from None
        return {"alarms": count}

    async def _undefine(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        asset, name = _str(args, "asset"), _str(args, "name")
        if not await self.engine.undefine(asset, name):
            raise CommandError(
                CommandFailure.NOT_FOUND, f"no alarm {name!r} defined through the API on {asset}"
            )
        return {"alarms": len(self.engine.specs)}


_COMMANDS = (
    "list",
    "ack",
    "shelve",
    "unshelve",
    "out_of_service",
    "reset",
    "comment",
    "journal",
    "kpis",
    "definitions",
    "define",
    "undefine",
)


def _validation_message(err: ValidationError) -> str:
    """The first errors with their field paths, as the plant file's errors name them."""
    parts = []
    for e in err.errors()[:5]:
        where = ".".join(str(p) for p in e["loc"])
        parts.append(f"{where}: {e['msg']}" if where else e["msg"])
    return "; ".join(parts)
