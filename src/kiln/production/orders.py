"""Products and work orders: what is made, how fast it could be made on each asset, and the
life of an order dispatched to a line, as a pure state machine.

An order moves through its states only by an action, and only along the table below; anything
else is refused with the actions its state allows, so an operator's tablet can say why:

    planned   --release-->  released  --start-->  running  --pause-->  paused
    running   --complete--> completed             paused   --resume--> running
    paused    --complete--> completed
    planned, released, paused  --cancel--> cancelled

A running order is never cancelled: it has produced, so it is completed (short, if need be) and
its counts stay attributed to it. Completed and cancelled are final.

Pure: no I/O; the production store keeps orders and their events, the engine carries them out.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat

from kiln.core.values import path_has_prefix

# A product code or order number: one path segment (`kiln.core.values`), so it fits in URLs
# and topics as it is.
CODE_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Product(_Frozen):
    """A product, with its ideal cycle time (seconds per unit) in general and per asset."""

    code: str = Field(pattern=CODE_PATTERN)
    name: str
    unit: str = Field(default="pcs", min_length=1, max_length=32)
    ideal_cycle_s: float | None = Field(default=None, gt=0)
    per_asset: dict[str, PositiveFloat] = Field(
        default_factory=dict, description="asset or line path -> ideal cycle time in s"
    )

    def ideal_cycle_for(self, asset_path: str) -> float | None:
        """The ideal cycle time on `asset_path`: the entry of the asset itself or of its
        nearest parent (a line's entry holds for its machines), else `ideal_cycle_s`."""
        # The longest matching key is the nearest: keys that match are the path's prefixes.
        matching = [p for p in self.per_asset if p and path_has_prefix(asset_path, p)]
        if not matching:
            return self.ideal_cycle_s
        return self.per_asset[max(matching, key=lambda p: len(p.rstrip("/")))]


class OrderState(StrEnum):
    PLANNED = "planned"
    RELEASED = "released"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class OrderAction(StrEnum):
    RELEASE = "release"
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    COMPLETE = "complete"
    CANCEL = "cancel"


TRANSITIONS: dict[tuple[OrderState, OrderAction], OrderState] = {
    (OrderState.PLANNED, OrderAction.RELEASE): OrderState.RELEASED,
    (OrderState.RELEASED, OrderAction.START): OrderState.RUNNING,
    (OrderState.RUNNING, OrderAction.PAUSE): OrderState.PAUSED,
    (OrderState.PAUSED, OrderAction.RESUME): OrderState.RUNNING,
    (OrderState.RUNNING, OrderAction.COMPLETE): OrderState.COMPLETED,
    (OrderState.PAUSED, OrderAction.COMPLETE): OrderState.COMPLETED,
    (OrderState.PLANNED, OrderAction.CANCEL): OrderState.CANCELLED,
    (OrderState.RELEASED, OrderAction.CANCEL): OrderState.CANCELLED,
    (OrderState.PAUSED, OrderAction.CANCEL): OrderState.CANCELLED,
}


class OrderRefused(ValueError):
    """An action the order's state, version or line does not allow; the message says why."""


class OrderConflict(OrderRefused):
    """The order changed since the caller read it (its version is not the one expected)."""


def allowed_actions(state: OrderState) -> tuple[OrderAction, ...]:
    """The actions an order in `state` accepts, in the table's order."""
    return tuple(action for (s, action) in TRANSITIONS if s is state)


def next_state(state: OrderState, action: OrderAction) -> OrderState:
    """The state `action` takes an order in `state` to; OrderRefused if it may not."""
    try:
        return TRANSITIONS[(state, action)]
    except KeyError:
        allowed = allowed_actions(state)
        then = (
            "it allows: " + ", ".join(a.value for a in allowed)
            if allowed
            else "it is final and allows no action"
        )
        raise OrderRefused(
            f"cannot {action.value} an order that is {state.value}; {then}"
        ) from None


class WorkOrder(_Frozen):
    """A work order: make `quantity` of `product` on `line` (an asset path)."""

    id: str = Field(pattern=CODE_PATTERN, description="the order number")
    product: str = Field(pattern=CODE_PATTERN)
    line: str = Field(min_length=1, max_length=512)
    quantity: float = Field(gt=0)
    state: OrderState = OrderState.PLANNED
    due_us: int | None = None
    created_us: int
    updated_us: int
    version: int = Field(default=1, ge=1, description="raised by one on every action")
    comment: str = ""


class OrderEvent(_Frozen):
    """One action carried out on an order: the audit trail, and what its running periods are
    computed from. `seq` is given by the store, in the order actions were applied."""

    seq: int
    order_id: str
    time_us: int
    action: OrderAction
    old_state: OrderState
    new_state: OrderState
    user: str
    comment: str = ""
