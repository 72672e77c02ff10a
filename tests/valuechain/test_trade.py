"""Sales and purchase orders: every (state, action) cell of both machines against tables written
out here independently, shipments and receipts (partial, full, over the limit, within
tolerance), open quantities for planning, and the validation of orders and organisations."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest
from pydantic import ValidationError

from kiln.valuechain.mrp import OrderKind
from kiln.valuechain.partners import (
    Contact,
    Organisation,
    OrganisationKind,
    PartnerError,
    index_organisations,
)
from kiln.valuechain.trade import (
    GoodsReceipt,
    PurchaseAction,
    PurchaseLine,
    PurchaseOrder,
    PurchaseState,
    SalesAction,
    SalesLine,
    SalesOrder,
    SalesState,
    TradeRefused,
    act_purchase,
    act_sales,
    open_purchase_quantities,
    open_quantity,
    open_sales_demand,
    open_supply,
    purchase_allowed_actions,
    purchase_next_state,
    receive,
    sales_allowed_actions,
    sales_demands,
    sales_next_state,
    ship,
)

D1 = dt.date(2026, 3, 2)
D2 = dt.date(2026, 3, 9)

S = SalesState
SA = SalesAction
P = PurchaseState
PA = PurchaseAction

# The machines as the module docstring draws them, written out cell by cell.
SALES_EXPECTED = {
    (S.DRAFT, SA.CONFIRM): S.CONFIRMED,
    (S.DRAFT, SA.CANCEL): S.CANCELLED,
    (S.CONFIRMED, SA.START_PRODUCTION): S.IN_PRODUCTION,
    (S.CONFIRMED, SA.SHIP): S.SHIPPED,
    (S.CONFIRMED, SA.CLOSE): S.CLOSED,
    (S.CONFIRMED, SA.CANCEL): S.CANCELLED,
    (S.IN_PRODUCTION, SA.SHIP): S.SHIPPED,
    (S.IN_PRODUCTION, SA.CLOSE): S.CLOSED,
    (S.IN_PRODUCTION, SA.CANCEL): S.CANCELLED,
    (S.SHIPPED, SA.CLOSE): S.CLOSED,
}
PURCHASE_EXPECTED = {
    (P.DRAFT, PA.SEND): P.SENT,
    (P.DRAFT, PA.CANCEL): P.CANCELLED,
    (P.SENT, PA.CONFIRM): P.CONFIRMED,
    (P.SENT, PA.RECEIVE_PART): P.PARTIALLY_RECEIVED,
    (P.SENT, PA.RECEIVE_ALL): P.RECEIVED,
    (P.SENT, PA.CANCEL): P.CANCELLED,
    (P.CONFIRMED, PA.RECEIVE_PART): P.PARTIALLY_RECEIVED,
    (P.CONFIRMED, PA.RECEIVE_ALL): P.RECEIVED,
    (P.CONFIRMED, PA.CANCEL): P.CANCELLED,
    (P.PARTIALLY_RECEIVED, PA.RECEIVE_PART): P.PARTIALLY_RECEIVED,
    (P.PARTIALLY_RECEIVED, PA.RECEIVE_ALL): P.RECEIVED,
    (P.PARTIALLY_RECEIVED, PA.CLOSE): P.CLOSED,
    (P.RECEIVED, PA.CLOSE): P.CLOSED,
}


def _so(state: SalesState = S.CONFIRMED, *lines: SalesLine) -> SalesOrder:
    if not lines:
        lines = (
            SalesLine(line_no=1, material="bottle", quantity=Decimal(100), due=D1),
            SalesLine(line_no=2, material="cap", quantity=Decimal("2.5"), due=D2, promised=D1),
        )
    return SalesOrder(id="SO-1", customer="acme", lines=lines, state=state)


def _po(state: PurchaseState = P.CONFIRMED) -> PurchaseOrder:
    return PurchaseOrder(
        id="PO-1",
        supplier="resins",
        state=state,
        lines=(
            PurchaseLine(line_no=1, material="pet", quantity=Decimal(100), promised=D1),
            PurchaseLine(line_no=2, material="dye", quantity=Decimal("0.5"), promised=D2),
        ),
    )


def _receipt(line_no: int, quantity: str, lot: str, po: str = "PO-1") -> GoodsReceipt:
    return GoodsReceipt(po_id=po, line_no=line_no, quantity=Decimal(quantity), date=D1, lot_id=lot)


# -- every cell --------------------------------------------------------------------------------


@pytest.mark.parametrize(("state", "action"), list(itertools.product(SalesState, SalesAction)))
def test_sales_cell(state: SalesState, action: SalesAction) -> None:
    expected = SALES_EXPECTED.get((state, action))
    if expected is not None:
        assert sales_next_state(state, action) is expected
        assert action in sales_allowed_actions(state)
        return
    with pytest.raises(TradeRefused) as refused:
        sales_next_state(state, action)
    message = str(refused.value)
    assert f"cannot {action.value} a sales order that is {state.value}" in message
    allowed = [a for (s, a) in SALES_EXPECTED if s is state]
    if allowed:
        assert "it allows: " + ", ".join(a.value for a in allowed) in message
    else:
        assert "final" in message


@pytest.mark.parametrize(
    ("state", "action"), list(itertools.product(PurchaseState, PurchaseAction))
)
def test_purchase_cell(state: PurchaseState, action: PurchaseAction) -> None:
    expected = PURCHASE_EXPECTED.get((state, action))
    if expected is not None:
        assert purchase_next_state(state, action) is expected
        assert action in purchase_allowed_actions(state)
        return
    with pytest.raises(TradeRefused) as refused:
        purchase_next_state(state, action)
    message = str(refused.value)
    assert f"cannot {action.value} a purchase order that is {state.value}" in message
    allowed = [a for (s, a) in PURCHASE_EXPECTED if s is state]
    if allowed:
        assert "it allows: " + ", ".join(a.value for a in allowed) in message
    else:
        assert "final" in message


def test_final_states_allow_nothing() -> None:
    assert sales_allowed_actions(S.CLOSED) == sales_allowed_actions(S.CANCELLED) == ()
    assert purchase_allowed_actions(P.CLOSED) == purchase_allowed_actions(P.CANCELLED) == ()


# -- sales: actions and shipments --------------------------------------------------------------


def test_sales_actions_return_new_orders() -> None:
    draft = _so(S.DRAFT)
    confirmed = act_sales(draft, SA.CONFIRM)
    assert (draft.state, confirmed.state) == (S.DRAFT, S.CONFIRMED)
    assert act_sales(confirmed, SA.START_PRODUCTION).state is S.IN_PRODUCTION
    assert act_sales(confirmed, SA.CANCEL).state is S.CANCELLED
    with pytest.raises(ValidationError):
        confirmed.state = S.CLOSED


def test_partial_then_full_shipment() -> None:
    so = act_sales(_so(), SA.START_PRODUCTION)
    so = ship(so, 1, Decimal(40), D1, "SH-1")
    assert so.state is S.IN_PRODUCTION
    assert (so.line(1).shipped, open_quantity(so.line(1))) == (Decimal(40), Decimal(60))
    so = ship(so, 1, Decimal(60), D1, "SH-2")
    assert so.state is S.IN_PRODUCTION  # line 2 is still open
    so = ship(so, 2, Decimal("2.5"), D2, "SH-3")
    assert so.state is S.SHIPPED
    assert [s.id for s in so.line(1).shipments] == ["SH-1", "SH-2"]
    assert act_sales(so, SA.CLOSE).state is S.CLOSED


def test_over_shipment_refused_with_the_reason() -> None:
    so = ship(_so(), 1, Decimal(70), D1, "SH-1")
    with pytest.raises(TradeRefused) as refused:
        ship(so, 1, Decimal(31), D1, "SH-2")
    assert str(refused.value) == (
        "cannot ship 31 on line 1 of 'SO-1': it ordered 100 and has shipped 70, so 30 is open"
    )
    # Exact decimals: 2.5 ordered, 2.4 shipped leaves 0.1, and 0.1000000001 more is refused.
    so = ship(so, 2, Decimal("2.4"), D1, "SH-3")
    with pytest.raises(TradeRefused, match=r"0\.1 is open"):
        ship(so, 2, Decimal("0.100000001"), D1, "SH-4")
    assert ship(so, 2, Decimal("0.1"), D1, "SH-4").line(2).open == 0


def test_shipment_refusals() -> None:
    with pytest.raises(TradeRefused, match="it is draft; only confirmed or in-production"):
        ship(_so(S.DRAFT), 1, Decimal(1), D1, "SH-1")
    with pytest.raises(TradeRefused, match="has no line 3; its lines: 1, 2"):
        ship(_so(), 3, Decimal(1), D1, "SH-1")
    so = ship(_so(), 1, Decimal(1), D1, "SH-1")
    with pytest.raises(TradeRefused, match="shipment 'SH-1' is already recorded"):
        ship(so, 2, Decimal(1), D1, "SH-1")
    with pytest.raises(ValidationError):
        ship(so, 1, Decimal(0), D1, "SH-2")


def test_ship_cancel_and_close_guards() -> None:
    with pytest.raises(TradeRefused, match=r"line 1 \(100 open\), line 2 \(2.5 open\)"):
        act_sales(_so(), SA.SHIP)
    with pytest.raises(TradeRefused, match="nothing has shipped against it; cancel it"):
        act_sales(_so(), SA.CLOSE)
    part = ship(_so(), 1, Decimal(10), D1, "SH-1")
    with pytest.raises(TradeRefused, match="goods have shipped against it; close it"):
        act_sales(part, SA.CANCEL)
    assert act_sales(part, SA.CLOSE).state is S.CLOSED  # closed short


# -- purchase: receipts ------------------------------------------------------------------------


def test_partial_then_full_receipt() -> None:
    po = receive(_po(), _receipt(1, "60", "L1"))
    assert po.state is P.PARTIALLY_RECEIVED
    assert (po.line(1).received, open_quantity(po.line(1))) == (Decimal(60), Decimal(40))
    po = receive(po, _receipt(1, "40", "L2"))
    assert po.state is P.PARTIALLY_RECEIVED  # line 2 not yet
    po = receive(po, _receipt(2, "0.5", "L3"))
    assert po.state is P.RECEIVED
    assert [r.lot_id for r in po.line(1).receipts] == ["L1", "L2"]
    assert act_purchase(po, PA.CLOSE).state is P.CLOSED


def test_receipt_before_confirmation_and_in_one_go() -> None:
    po = act_purchase(_po(P.DRAFT), PA.SEND)
    po = receive(po, _receipt(1, "100", "L1"))
    assert po.state is P.PARTIALLY_RECEIVED
    whole = receive(receive(_po(P.SENT), _receipt(2, "0.5", "L1")), _receipt(1, "100", "L2"))
    assert whole.state is P.RECEIVED


def test_over_receipt_refused_with_the_reason() -> None:
    po = receive(_po(), _receipt(1, "90", "L1"))
    with pytest.raises(TradeRefused) as refused:
        receive(po, _receipt(1, "11", "L2"))
    assert str(refused.value) == (
        "cannot receive 11 on line 1 of 'PO-1': it ordered 100 and has received 90;"
        " that would be 101"
    )


def test_tolerance_percent() -> None:
    po = receive(_po(), _receipt(1, "90", "L1"))
    # 5 % of 100 is 5: up to 105 in all is accepted, 105.000000001 is not.
    within = receive(po, _receipt(1, "15", "L2"), tolerance_percent=Decimal(5))
    assert within.line(1).received == Decimal(105)
    assert open_quantity(within.line(1)) == 0
    with pytest.raises(TradeRefused, match="plus the 5% tolerance"):
        receive(po, _receipt(1, "15.000000001", "L2"), tolerance_percent=Decimal(5))
    # 2.5 % of 0.5 is 0.0125: exactly at the limit passes.
    po2 = receive(_po(), _receipt(2, "0.5125", "L3"), tolerance_percent=Decimal("2.5"))
    assert po2.line(2).received == Decimal("0.5125")
    with pytest.raises(ValueError, match="between 0 and 100"):
        receive(_po(), _receipt(1, "1", "L4"), tolerance_percent=Decimal(-1))


def test_receipt_refusals() -> None:
    with pytest.raises(TradeRefused, match="cannot receive_part a purchase order that is draft"):
        receive(_po(P.DRAFT), _receipt(1, "1", "L1"))
    done = receive(receive(_po(), _receipt(1, "100", "L1")), _receipt(2, "0.5", "L2"))
    with pytest.raises(TradeRefused, match="that is received; it allows: close"):
        receive(done, _receipt(1, "1", "L3"), tolerance_percent=Decimal(10))
    with pytest.raises(TradeRefused, match="receipt is for purchase order 'PO-2', not 'PO-1'"):
        receive(_po(), _receipt(1, "1", "L1", po="PO-2"))
    with pytest.raises(TradeRefused, match="has no line 9; its lines: 1, 2"):
        receive(_po(), _receipt(9, "1", "L1"))
    po = receive(_po(), _receipt(1, "1", "L1"))
    with pytest.raises(TradeRefused, match="lot 'L1' is already received"):
        receive(po, _receipt(2, "0.1", "L1"))
    with pytest.raises(TradeRefused, match="follows from a goods receipt"):
        act_purchase(_po(), PA.RECEIVE_ALL)
    with pytest.raises(TradeRefused, match="cannot cancel a purchase order that is partially"):
        act_purchase(po, PA.CANCEL)
    assert act_purchase(po, PA.CLOSE).state is P.CLOSED  # closed short


# -- open quantities ---------------------------------------------------------------------------


def test_open_purchase_quantities() -> None:
    po1 = receive(_po(), _receipt(1, "30", "L1"))
    po2 = PurchaseOrder(
        id="PO-2",
        supplier="resins",
        state=P.SENT,
        lines=(PurchaseLine(line_no=1, material="pet", quantity=Decimal(20), promised=D1),),
    )
    draft = _po(P.DRAFT).model_copy(update={"id": "PO-3"})
    cancelled = _po(P.CANCELLED).model_copy(update={"id": "PO-4"})
    received = receive(receive(_po(), _receipt(1, "100", "X1")), _receipt(2, "0.5", "X2"))
    orders = [po1, po2, draft, cancelled, received]
    assert open_purchase_quantities(orders) == {
        ("pet", D1): Decimal(90),  # 70 open on PO-1 and 20 on PO-2
        ("dye", D2): Decimal("0.5"),
    }
    supply = open_supply(orders)
    assert [(s.id, s.material, s.quantity, s.due) for s in supply] == [
        ("PO-1/1", "pet", Decimal(70), D1),
        ("PO-1/2", "dye", Decimal("0.5"), D2),
        ("PO-2/1", "pet", Decimal(20), D1),
    ]
    assert {s.kind for s in supply} == {OrderKind.PURCHASE_ORDER}
    # A line over-received within tolerance is open by zero, not by a negative amount.
    over = receive(_po(), _receipt(1, "102", "L9"), tolerance_percent=Decimal(5))
    assert open_purchase_quantities([over]) == {("dye", D2): Decimal("0.5")}


def test_open_sales_demand() -> None:
    so1 = ship(_so(), 1, Decimal(25), D1, "SH-1")
    so2 = SalesOrder(
        id="SO-2",
        customer="acme",
        state=S.IN_PRODUCTION,
        lines=(SalesLine(line_no=1, material="bottle", quantity=Decimal(5), due=D1),),
    )
    quote = _so(S.DRAFT).model_copy(update={"id": "SO-3"})
    closed = _so(S.CLOSED).model_copy(update={"id": "SO-4"})
    orders = [so1, so2, quote, closed]
    assert open_sales_demand(orders) == {
        ("bottle", D1): Decimal(80),
        ("cap", D2): Decimal("2.5"),
    }
    assert [(d.id, d.material, d.quantity, d.due) for d in sales_demands(orders)] == [
        ("SO-1/1", "bottle", Decimal(75), D1),
        ("SO-1/2", "cap", Decimal("2.5"), D2),
        ("SO-2/1", "bottle", Decimal(5), D1),
    ]


# -- validation --------------------------------------------------------------------------------


def test_order_validation() -> None:
    line = SalesLine(line_no=1, material="bottle", quantity=Decimal(1), due=D1)
    with pytest.raises(ValidationError, match="line 1 twice"):
        SalesOrder(id="SO-1", customer="acme", lines=(line, line))
    with pytest.raises(ValidationError, match="at least 1 item"):
        SalesOrder(id="SO-1", customer="acme", lines=())
    with pytest.raises(ValidationError, match="not a float"):
        SalesLine(line_no=1, material="bottle", quantity=1.5, due=D1)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="greater than zero"):
        SalesLine(line_no=1, material="bottle", quantity=Decimal(0), due=D1)
    with pytest.raises(ValidationError, match="should match pattern"):
        SalesOrder(id="SO 1", customer="acme", lines=(line,))
    with pytest.raises(ValidationError, match="extra"):
        SalesLine(line_no=1, material="b", quantity=Decimal(1), due=D1, colour="red")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="line 1 ships 2, more than its 1 ordered"):
        SalesLine(
            line_no=1,
            material="bottle",
            quantity=Decimal(1),
            due=D1,
            shipments=({"id": "SH-1", "quantity": Decimal(2), "date": D1},),  # type: ignore[arg-type]
        )
    with pytest.raises(ValidationError, match="holds a receipt for 'PO-9' line 1"):
        PurchaseOrder(
            id="PO-1",
            supplier="resins",
            lines=(
                PurchaseLine(
                    line_no=1,
                    material="pet",
                    quantity=Decimal(1),
                    promised=D1,
                    receipts=(_receipt(1, "1", "L1", po="PO-9"),),
                ),
            ),
        )


def test_organisation_validation() -> None:
    org = Organisation(
        code="acme",
        name="  Acme Bottling  ",
        kind=OrganisationKind.CUSTOMER,
        tenant="acme-partner",
        contacts=(
            Contact(name="Ana", email="ana@acme.example", phone="+49 30 1234-56", role="buyer"),
            Contact(name="Bo"),
        ),
        address="1 Quay Street\nPort Town",
    )
    assert org.name == "Acme Bottling"
    with pytest.raises(ValidationError, match="email"):
        Contact(name="Ana", email="ana.acme.example")
    with pytest.raises(ValidationError, match="phone"):
        Contact(name="Ana", phone="call me")
    with pytest.raises(ValidationError, match="name"):
        Contact(name="")
    with pytest.raises(ValidationError, match="tenant"):
        Organisation(code="x", name="X", kind="supplier", tenant="Big Tenant")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="kind"):
        Organisation(code="x", name="X", kind="reseller", tenant="t")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="lists contact 'ana' twice"):
        Organisation(
            code="x",
            name="X",
            kind=OrganisationKind.SUPPLIER,
            tenant="t",
            contacts=(Contact(name="Ana"), Contact(name="ana")),
        )
    ours = Organisation(code="us", name="Us", kind=OrganisationKind.ENTERPRISE, tenant="default")
    assert index_organisations((ours, org)) == {"us": ours, "acme": org}
    twin = ours.model_copy(update={"code": "us2"})
    with pytest.raises(PartnerError) as refused:
        index_organisations((ours, org, org, twin))
    assert str(refused.value) == (
        "organisation code 'acme' is used twice;"
        " tenant 'default' has two enterprises: 'us' and 'us2'"
    )
