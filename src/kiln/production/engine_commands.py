"""The commands the production engine answers on the bus (target `production`).

Reading: `oee`, `pareto`, `states`, `live`, `assets`, `reasons`, `records`, `orders`, `order`,
`order_events` (every order's events after a sequence number), `products`, `calendars`,
`shifts`. Changing: `assign` and `split` (operators' downtime reasons), `count` (units counted as events),
`order_create`, `order_action`, `product_put`, `product_delete`, `calendar_put`,
`calendar_delete`. Arguments are JSON; times are µs since the epoch. `within` (a list of asset
paths) limits an answer to what lies below one of them: the API passes the caller's scopes, so
a role scoped to one line never sees another line's figures in a site's sums.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from kiln.core.bus import Command, CommandError, CommandFailure
from kiln.core.values import path_has_prefix
from kiln.production import query
from kiln.production.calendar import CalendarDef, shifts_between
from kiln.production.intervals import Interval
from kiln.production.orders import OrderAction, OrderRefused, OrderState, Product, WorkOrder
from kiln.production.store import CountEvent, ReasonRecord, UnknownOrder
from kiln.production.taxonomy import Category, ReasonDef, reason_categories

if TYPE_CHECKING:
    from kiln.production.engine import ProductionEngine

MAX_RANGE_US = 400 * 86_400_000_000  # a year and a bit: any single question
MAX_SPLIT = 20


def _invalid(message: str) -> CommandError:
    return CommandError(CommandFailure.INVALID, message)


def _str(args: Mapping[str, Any], key: str) -> str:
    value = args.get(key)
    if not isinstance(value, str) or not value:
        raise _invalid(f"{key!r} must be a non-empty string")
    return value


def _opt_str(args: Mapping[str, Any], key: str, default: str | None = None) -> str | None:
    value = args.get(key, default)
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise _invalid(f"{key!r} must be a string")
    return value


def _int(args: Mapping[str, Any], key: str) -> int:
    value = args.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(f"{key!r} must be an integer (µs since the epoch)")
    return value


def _within(args: Mapping[str, Any]) -> list[str] | None:
    value = args.get("within")
    if value is None:
        return None
    if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise _invalid("'within' must be a list of asset paths")
    return value


def _window(args: Mapping[str, Any]) -> Interval:
    start, end = _int(args, "start_us"), _int(args, "end_us")
    if end <= start:
        raise _invalid("the range is empty: give a start before the end")
    if end - start > MAX_RANGE_US:
        raise _invalid("the range is longer than 400 days: ask in parts")
    return Interval(start, end)


def _tree(
    nodes: tuple[ReasonDef, ...], categories: Mapping[str, Category], prefix: str = ""
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for node in nodes:
        path = f"{prefix}{node.name}"
        category = categories.get(path)
        out.append(
            {
                "name": node.name,
                "path": path,
                "category": category.value if category else None,
                "description": node.description,
                "children": _tree(node.children, categories, path + "/"),
            }
        )
    return out


class EngineCommands:
    """The handler of target `production` for one `ProductionEngine`."""

    def __init__(self, engine: ProductionEngine) -> None:
        self.engine = engine
        self._handlers: dict[str, Callable[[Mapping[str, Any]], Awaitable[Mapping[str, Any]]]] = {
            "oee": self._oee,
            "pareto": self._pareto,
            "states": self._states,
            "live": self._live,
            "assets": self._assets,
            "reasons": self._reasons,
            "records": self._records,
            "assign": self._assign,
            "split": self._split,
            "count": self._count,
            "orders": self._orders,
            "order": self._order,
            "order_create": self._order_create,
            "order_action": self._order_action,
            "order_events": self._order_events,
            "products": self._products,
            "product_put": self._product_put,
            "product_delete": self._product_delete,
            "calendars": self._calendars,
            "calendar_put": self._calendar_put,
            "calendar_delete": self._calendar_delete,
            "shifts": self._shifts,
        }

    async def __call__(self, command: Command) -> Mapping[str, Any]:
        handler = self._handlers.get(command.name)
        if handler is None:
            raise _invalid(
                f"the production engine answers {', '.join(self._handlers)}, not {command.name!r}"
            )
        try:
            return await handler(command.args)
        except (LookupError, UnknownOrder) as err:
            raise CommandError(
                CommandFailure.NOT_FOUND, str(err.args[0] if err.args else err)
            ) from None
        except ValidationError as err:
            raise _invalid(_validation_message(err)) from None
        except ValueError as err:  # QueryError, OrderRefused, bad enum values
            raise _invalid(str(err)) from None

    def _run(self, fn: Callable[[], Any]) -> Awaitable[Any]:
        return asyncio.to_thread(fn)

    # -- figures ------------------------------------------------------------------------------

    async def _oee(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        e = self.engine
        asset, window = _str(args, "asset"), _window(args)
        by = _opt_str(args, "by", "none") or "none"
        ctx, now = e.context(), e.now_us()
        result: Mapping[str, Any] = await self._run(
            lambda: query.oee(e.store, ctx, asset, window, by, now, _within(args))
        )
        return result

    async def _pareto(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        e = self.engine
        asset, window = _str(args, "asset"), _window(args)
        group = _opt_str(args, "group", "reason") or "reason"
        ctx, now = e.context(), e.now_us()
        result: Mapping[str, Any] = await self._run(
            lambda: query.pareto(e.store, ctx, asset, window, group, now, _within(args))
        )
        return result

    async def _states(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        e = self.engine
        asset, window = _str(args, "asset"), _window(args)
        ctx, now = e.context(), e.now_us()
        result: Mapping[str, Any] = await self._run(
            lambda: query.states(e.store, ctx, asset, window, now, _within(args))
        )
        return result

    async def _live(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        e = self.engine
        path = _opt_str(args, "asset", "") or ""
        ctx, now = e.context(), e.now_us()
        assets = ctx.assets_under(path, _within(args))
        figures = await self._run(lambda: [query.live(e.store, ctx, a, now) for a in assets])
        return {"assets": [f for f in figures if f is not None], "time_us": now}

    async def _assets(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        within = _within(args)
        plans = self.engine.plans
        return {
            "assets": [
                {
                    "asset": a,
                    "type": p.type_name,
                    "line": p.line,
                    "micro_stop_s": p.model.micro_stop_s,
                    "signals": dict(p.signals),
                }
                for a, p in sorted(plans.items())
                if within is None or any(path_has_prefix(a, w) for w in within)
            ]
        }

    async def _reasons(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        asset = _str(args, "asset")
        plan = self.engine.plans.get(asset)
        if plan is None:
            raise LookupError(f"{asset!r} is not an asset with production data")
        return {
            "asset": asset,
            "categories": [c.value for c in Category],
            "tree": _tree(plan.model.reasons, reason_categories(plan.model.reasons)),
        }

    async def _records(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        e = self.engine
        asset, window = _str(args, "asset"), _window(args)
        within = _within(args)
        records = await self._run(lambda: e.store.reason_records(asset, window))
        return {
            "records": [
                _record_json(r)
                for r in records
                if within is None or any(path_has_prefix(r.asset, w) for w in within)
            ]
        }

    # -- downtime reasons ---------------------------------------------------------------------

    def _reason_of(self, asset: str, reason: str) -> Category:
        plan = self.engine.plans.get(asset)
        if plan is None:
            raise LookupError(f"{asset!r} is not an asset with production data")
        category = plan.reason_category(reason)
        if category is None:
            known = sorted(reason_categories(plan.model.reasons))
            raise _invalid(
                f"{reason!r} is not a reason of {asset} with a category; its reasons: "
                + (", ".join(known) or "none defined (add a reason tree to its type)")
            )
        return category

    async def _assign(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        e = self.engine
        asset, window = _str(args, "asset"), _window(args)
        reason = _str(args, "reason")
        category = self._reason_of(asset, reason)
        action: Literal["assign", "reassign"] = (
            "reassign" if args.get("action") == "reassign" else "assign"
        )
        if args.get("action") not in (None, "assign", "reassign"):
            raise _invalid("action must be assign or reassign")
        record = ReasonRecord(
            asset=asset,
            start_us=window.start_us,
            end_us=window.end_us,
            reason=reason,
            category=category,
            user=_opt_str(args, "user", "") or "",
            entered_us=e.now_us(),
            action=action,
            comment=_opt_str(args, "comment", "") or "",
        )
        ids = await self._run(lambda: e.store.add_reason_records([record]))
        e.mark_dirty(asset)
        return {"ids": ids}

    async def _split(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        """`pieces`: [{"end_us": .., "reason": .., "comment": ..}, ...] in time order, the last
        ending at `end_us`: the stop from `start_us` cut at each piece's end."""
        e = self.engine
        asset, window = _str(args, "asset"), _window(args)
        pieces = args.get("pieces")
        if not isinstance(pieces, list) or not 2 <= len(pieces) <= MAX_SPLIT:
            raise _invalid(f"'pieces' must list 2 to {MAX_SPLIT} parts of the stop")
        now = e.now_us()
        user = _opt_str(args, "user", "") or ""
        records: list[ReasonRecord] = []
        cursor = window.start_us
        for i, piece in enumerate(pieces):
            if not isinstance(piece, dict):
                raise _invalid(f"piece {i + 1} must be an object with end_us and reason")
            end = window.end_us if i == len(pieces) - 1 else _int(piece, "end_us")
            if not cursor < end <= window.end_us:
                raise _invalid(
                    f"piece {i + 1} ends at {end}: each piece must end after the previous one "
                    "and within the stop"
                )
            reason = _str(piece, "reason")
            records.append(
                ReasonRecord(
                    asset=asset,
                    start_us=cursor,
                    end_us=end,
                    reason=reason,
                    category=self._reason_of(asset, reason),
                    user=user,
                    entered_us=now,
                    action="split",
                    comment=_opt_str(piece, "comment", "") or "",
                )
            )
            cursor = end
        ids = await self._run(lambda: e.store.add_reason_records(records))
        e.mark_dirty(asset)
        return {"ids": ids}

    async def _count(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        """Units counted at an instant: {asset, good, scrap, time_us (default now), comment}."""
        e = self.engine
        asset = _str(args, "asset")
        plan = e.plans.get(asset)
        if plan is None:
            raise LookupError(f"{asset!r} is not an asset with production data")
        if not plan.model.count_events:
            raise _invalid(
                f"{asset} counts with its counter tags; count events are taken for asset types "
                "whose state model sets count_events: true"
            )
        numbers: dict[str, float] = {}
        for name in ("good", "scrap"):
            value = args.get(name, 0)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _invalid(f"{name!r} must be a number of units")
            numbers[name] = float(value)
        at = args.get("time_us")
        now = e.now_us()
        if at is not None and (isinstance(at, bool) or not isinstance(at, int)):
            raise _invalid("'time_us' must be an integer (µs since the epoch)")
        event = CountEvent(
            asset=asset,
            time_us=now if at is None else at,
            good=numbers["good"],
            scrap=numbers["scrap"],
            user=_opt_str(args, "user", "") or "",
            entered_us=now,
            comment=_opt_str(args, "comment", "") or "",
        )
        number = await self._run(lambda: e.store.add_count_event(event))
        e.mark_dirty(asset)
        return {"id": number, "asset": asset, "time_us": event.time_us}

    # -- orders and products ------------------------------------------------------------------

    async def _orders(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        e = self.engine
        line = _opt_str(args, "line")
        states_arg = args.get("states")
        states = [OrderState(s) for s in states_arg] if isinstance(states_arg, list) else None
        limit = args.get("limit", 500)
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise _invalid("'limit' must be an integer")
        within = _within(args)
        orders = await self._run(lambda: e.store.orders(line, states, limit))
        return {
            "orders": [
                o.model_dump(mode="json")
                for o in orders
                if within is None or any(path_has_prefix(o.line, w) for w in within)
            ]
        }

    async def _order(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        e = self.engine
        order_id = _str(args, "id")
        order = await self._run(lambda: e.store.order(order_id))
        if order is None:
            raise LookupError(f"there is no work order {order_id}")
        events = await self._run(lambda: e.store.order_events(order_id))
        progress = await self._progress(order)
        return {
            "order": order.model_dump(mode="json"),
            "events": [ev.model_dump(mode="json") for ev in events],
            "progress": progress,
        }

    async def _progress(self, order: WorkOrder) -> Mapping[str, Any] | None:
        """Good and scrap counted while the order ran, and its OEE."""
        e = self.engine
        runs = await self._run(lambda: e.store.order_runs(order.line, Interval(0, e.now_us() + 1)))
        mine = [r for r in runs if r.order_id == order.id]
        if not mine or not e.context().assets_under(order.line):
            return None
        window = Interval(mine[0].interval.start_us, mine[-1].interval.end_us)
        ctx, now = e.context(), e.now_us()
        result = await self._run(lambda: query.oee(e.store, ctx, order.line, window, "order", now))
        bucket = next((b for b in result["buckets"] if b["key"] == order.id), None)
        return bucket

    async def _order_create(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        e = self.engine
        now = e.now_us()
        data = dict(args.get("order") or {})
        data.setdefault("created_us", now)
        data.setdefault("updated_us", now)
        order = WorkOrder.model_validate(data)
        if order.product not in e.products:
            raise _invalid(
                f"work order {order.id} names product {order.product!r}, which is not known; "
                "add it first (products)"
            )
        created = await self._run(lambda: e.store.create_order(order))
        return {"order": created.model_dump(mode="json")}

    async def _order_action(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        e = self.engine
        order_id = _str(args, "id")
        action = OrderAction(_str(args, "action"))
        expected = args.get("expected_version")
        if expected is not None and (isinstance(expected, bool) or not isinstance(expected, int)):
            raise _invalid("'expected_version' must be an integer")
        time_us = args.get("time_us")
        at = e.now_us() if not isinstance(time_us, int) or isinstance(time_us, bool) else time_us
        user = _opt_str(args, "user", "") or ""
        comment = _opt_str(args, "comment", "") or ""
        order, event = await self._run(
            lambda: e.store.apply_order_action(
                order_id, action, at, user, comment, expected_version=expected
            )
        )
        for asset in e.context().assets_under(order.line):
            e.mark_dirty(asset)
        return {"order": order.model_dump(mode="json"), "event": event.model_dump(mode="json")}

    async def _order_events(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        """Every order's events after `after` (a sequence number), oldest first; with
        `progress`, each event that paused or completed an order carries the order and what
        it had counted by then (good, scrap)."""
        e = self.engine
        after = args.get("after", 0)
        limit = args.get("limit", 200)
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise _invalid("'after' must be a sequence number (an integer, 0 for all)")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise _invalid("'limit' must be between 1 and 1000")
        events = await self._run(lambda: e.store.order_events_after(after, limit))
        out: list[dict[str, Any]] = []
        for event in events:
            item: dict[str, Any] = event.model_dump(mode="json")
            if args.get("progress") and event.new_state in (
                OrderState.PAUSED,
                OrderState.COMPLETED,
            ):
                order = await self._run(functools.partial(e.store.order, event.order_id))
                if order is not None:
                    item["order"] = order.model_dump(mode="json")
                    progress = await self._progress(order)
                    counts = (progress or {}).get("counts", {})
                    item["good"] = counts.get("good")
                    item["scrap"] = counts.get("scrap")
            out.append(item)
        return {"events": out}

    async def _products(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"products": [p.model_dump(mode="json") for p in self.engine.products.values()]}

    async def _product_put(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        e = self.engine
        product = Product.model_validate(args.get("product") or {})
        await self._run(lambda: e.store.put_product(product))
        e.products[product.code] = product
        return {"product": product.model_dump(mode="json")}

    async def _product_delete(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        e = self.engine
        code = _str(args, "code")
        if not await self._run(lambda: e.store.delete_product(code)):
            raise LookupError(f"there is no product {code}")
        e.products.pop(code, None)
        return {"deleted": code}

    # -- calendars ----------------------------------------------------------------------------

    async def _calendars(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        within = _within(args)
        return {
            "calendars": [
                c.model_dump(mode="json")
                for site, c in sorted(self.engine.calendars.items())
                if within is None
                or any(path_has_prefix(site, w) or path_has_prefix(w, site) for w in within)
            ]
        }

    async def _calendar_put(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        e = self.engine
        calendar = CalendarDef.model_validate(args.get("calendar") or {})
        data = calendar.model_dump(mode="json")
        await self._run(lambda: e.store.put_calendar(calendar.site, data))
        e.calendars[calendar.site] = calendar
        e.mark_all_dirty()
        return {"calendar": data}

    async def _calendar_delete(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        e = self.engine
        site = _str(args, "site")
        if not await self._run(lambda: e.store.delete_calendar(site)):
            raise LookupError(
                f"no calendar of {site!r} was set through the API (a plant file's calendar "
                "is changed in the plant file)"
            )
        e.calendars.pop(site, None)
        for c in e.settings.calendars:
            if c.site == site:
                e.calendars[site] = c
        e.mark_all_dirty()
        return {"deleted": site}

    async def _shifts(self, args: Mapping[str, Any]) -> Mapping[str, Any]:
        site, window = _str(args, "site"), _window(args)
        calendar = self.engine.calendars.get(site)
        if calendar is None:
            raise LookupError(f"site {site!r} has no shift calendar")
        return {
            "site": site,
            "shifts": [
                {
                    "key": s.key,
                    "name": s.name,
                    "day": s.day.isoformat(),
                    "start_us": s.interval.start_us,
                    "end_us": s.interval.end_us,
                    "planned": [
                        {
                            "start_us": iv.start_us,
                            "end_us": iv.end_us,
                            "category": cat,
                            "name": name,
                        }
                        for iv, cat, name in s.planned
                    ],
                }
                for s in shifts_between(calendar, window)
            ],
        }


def _record_json(r: ReasonRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "asset": r.asset,
        "start_us": r.start_us,
        "end_us": r.end_us,
        "reason": r.reason,
        "category": r.category.value,
        "user": r.user,
        "entered_us": r.entered_us,
        "action": r.action,
        "comment": r.comment,
        "group_id": r.group_id,
    }


def _validation_message(err: ValidationError) -> str:
    parts = []
    for e in err.errors()[:5]:
        where = ".".join(str(p) for p in e["loc"]) or "value"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)


__all__ = ["EngineCommands", "OrderRefused"]
