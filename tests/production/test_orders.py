"""Work orders' state machine (every state x action) and products' ideal cycle times."""

from __future__ import annotations

import itertools

import pytest
from pydantic import ValidationError

from kiln.production.orders import (
    OrderAction,
    OrderRefused,
    OrderState,
    Product,
    WorkOrder,
    allowed_actions,
    next_state,
)

P, R, RUN, PA, C, X = (
    OrderState.PLANNED,
    OrderState.RELEASED,
    OrderState.RUNNING,
    OrderState.PAUSED,
    OrderState.COMPLETED,
    OrderState.CANCELLED,
)

# The table as issue 15 states it, written out here rather than read from the module: each
# (state, action) not listed must be refused.
EXPECTED = {
    (P, OrderAction.RELEASE): R,
    (P, OrderAction.CANCEL): X,
    (R, OrderAction.START): RUN,
    (R, OrderAction.CANCEL): X,
    (RUN, OrderAction.PAUSE): PA,
    (RUN, OrderAction.COMPLETE): C,
    (PA, OrderAction.RESUME): RUN,
    (PA, OrderAction.COMPLETE): C,
    (PA, OrderAction.CANCEL): X,
}


@pytest.mark.parametrize(
    ("state", "action"), list(itertools.product(OrderState, OrderAction)), ids=str
)
def test_every_state_and_action(state: OrderState, action: OrderAction) -> None:
    expected = EXPECTED.get((state, action))
    if expected is not None:
        assert next_state(state, action) is expected
        return
    with pytest.raises(OrderRefused) as refused:
        next_state(state, action)
    message = str(refused.value)
    assert action.value in message
    assert state.value in message
    allowed = [a for (s, a) in EXPECTED if s is state]
    for a in allowed:
        assert a.value in message
    if not allowed:
        assert "final" in message


def test_allowed_actions() -> None:
    assert allowed_actions(P) == (OrderAction.RELEASE, OrderAction.CANCEL)
    assert set(allowed_actions(PA)) == {
        OrderAction.RESUME,
        OrderAction.COMPLETE,
        OrderAction.CANCEL,
    }
    assert allowed_actions(C) == allowed_actions(X) == ()


def test_a_running_order_is_never_cancelled() -> None:
    with pytest.raises(OrderRefused, match="cannot cancel an order that is running"):
        next_state(RUN, OrderAction.CANCEL)


def test_order_fields_are_checked() -> None:
    base = {
        "id": "WO-1",
        "product": "cap",
        "line": "acme/p1/line1",
        "created_us": 1,
        "updated_us": 1,
    }
    order = WorkOrder(quantity=100, **base)
    assert order.state is P
    assert order.version == 1
    with pytest.raises(ValidationError):
        WorkOrder(quantity=0, **base)
    with pytest.raises(ValidationError):
        WorkOrder(quantity=5, **(base | {"id": "WO 1"}))
    with pytest.raises(ValidationError):
        WorkOrder(quantity=5, extra=1, **base)


def test_ideal_cycle_takes_the_nearest_entry() -> None:
    cap = Product(
        code="cap-32",
        name="Cap 32 mm",
        ideal_cycle_s=2.0,
        per_asset={"acme/p1/line1": 1.5, "acme/p1/line1/press": 1.2},
    )
    assert cap.ideal_cycle_for("acme/p1/line1/press") == 1.2  # its own entry
    assert cap.ideal_cycle_for("acme/p1/line1/press/head") == 1.2  # the nearest parent's
    assert cap.ideal_cycle_for("acme/p1/line1/filler") == 1.5  # the line's
    assert cap.ideal_cycle_for("acme/p1/line1") == 1.5
    assert cap.ideal_cycle_for("acme/p1/line10/press") == 2.0  # not below line1
    assert cap.ideal_cycle_for("acme/p2") == 2.0
    assert Product(code="x", name="x").ideal_cycle_for("acme/p1") is None


def test_product_fields_are_checked() -> None:
    assert Product(code="x", name="x").unit == "pcs"
    with pytest.raises(ValidationError):
        Product(code="x", name="x", ideal_cycle_s=0)
    with pytest.raises(ValidationError):
        Product(code="x", name="x", per_asset={"acme/p1": -1.0})
    with pytest.raises(ValidationError):
        Product(code="a/b", name="x")
