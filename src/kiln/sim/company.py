"""The virtual factory's company: who it sells to and buys from, what its products are made of,
and where its stock is kept, as the value chain engine's documents (plain JSON).

Two products are made on the factory's lines (`kiln.sim.orders`): bottled juice on the
packaging lines and machined brackets on the machining lines. Juice takes a two-level bill of
materials: a bottle, a cap and a litre of juice mix (made here, in batches), the mix made of
orange concentrate and sugar. A bracket is cut from steel bar. Everything bought comes in packs
(a pallet of bottles, a tote of concentrate); a pack is also the lot multiple planning orders
in, so every delivery is a whole number of them.

Stock is kept in one warehouse at the site and at one line-side location per line, at the
line's asset path: production's bookings take a line's components from there first
(`kiln.valuechain.production_link`).

Pure: no I/O. The numbers are a demo's, sized so that what the lines make in a ~30-minute
order visibly moves stock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any

from kiln.sim.orders import SimLine, lines
from kiln.sim.spec import FactorySpec

# The product codes are production's (`kiln.sim.orders.products`); the rest are bought or mixed.
JUICE, MIX, BOTTLE, CAP, CONC, SUGAR = (
    "JUICE-1L",
    "JUICE-MIX",
    "BOTTLE",
    "CAP",
    "ORANGE-CONC",
    "SUGAR",
)
BRACKET, STEEL = "BRACKET-A", "STEEL-BAR"
FINISHED = (JUICE, BRACKET)
ENTERPRISE_TENANT = "default"
WAREHOUSE = "WH"

# Juice mix is batched in whole tanks of this many litres (its bill's output quantity).
MIX_BATCH_STEP = Decimal(1000)

_CUSTOMERS = (
    ("FRESHMART", "FreshMart Supermarkets", "freshmart", JUICE, "orders@freshmart.example"),
    ("CITYGROCER", "City Grocer Co-op", "citygrocer", JUICE, "buying@citygrocer.example"),
    ("MACHINEBUILD", "MachineBuild AG", "machinebuild", BRACKET, "purchasing@machinebuild.example"),
)
_SUPPLIERS = (
    ("GLASSPACK", "GlassPack Containers", "glasspack", "sales@glasspack.example"),
    ("CITRUSCO", "Citrus Cooperative", "citrusco", "export@citrusco.example"),
    ("STEELCO", "SteelCo Bar Mill", "steelco", "orders@steelco.example"),
)


def _material(
    code: str, name: str, kind: str, unit: str, decimals: int, **rest: Any
) -> dict[str, Any]:
    return {"code": code, "name": name, "kind": kind, "unit": unit, "decimals": decimals, **rest}


# What each bought material comes in: a delivery is one pack, and planning orders whole packs.
PACKS: dict[str, Decimal] = {
    BOTTLE: Decimal(10000),
    CAP: Decimal(20000),
    CONC: Decimal(1000),
    SUGAR: Decimal(1000),
    STEEL: Decimal(60),
}

MATERIALS: tuple[dict[str, Any], ...] = (
    _material(JUICE, "Orange juice 1 l", "finished", "bottles", 0,
              manufacturing_lead_days=1, lot_multiple="1200"),
    _material(BRACKET, "Bracket, machined", "finished", "pcs", 0,
              manufacturing_lead_days=1, lot_multiple="60"),
    _material(MIX, "Orange juice mix", "made", "l", 1, manufacturing_lead_days=1,
              lot_multiple="1000", safety_stock="2000"),
    _material(BOTTLE, "PET bottle 1 l", "purchased", "pcs", 0, supplier="GLASSPACK",
              purchasing_lead_days=1, supplier_lead_days=3, safety_stock="20000",
              lot_min="20000", lot_multiple="10000"),
    _material(CAP, "Screw cap 38 mm", "purchased", "pcs", 0, supplier="GLASSPACK",
              purchasing_lead_days=1, supplier_lead_days=2, safety_stock="20000",
              lot_multiple="20000"),
    _material(CONC, "Orange concentrate 65 Brix", "purchased", "kg", 2, supplier="CITRUSCO",
              purchasing_lead_days=1, supplier_lead_days=5, safety_lead_days=1,
              safety_stock="2000", lot_multiple="1000"),
    _material(SUGAR, "Sugar, granulated", "raw", "kg", 1, supplier="CITRUSCO",
              purchasing_lead_days=1, supplier_lead_days=4, safety_stock="1000",
              lot_multiple="1000"),
    _material(STEEL, "Steel bar 20 mm, S235", "purchased", "m", 2, supplier="STEELCO",
              purchasing_lead_days=1, supplier_lead_days=4, safety_stock="60",
              lot_multiple="60"),
)  # fmt: skip

BOMS: tuple[dict[str, Any], ...] = (
    {
        "parent": JUICE,
        "lines": [
            {"component": BOTTLE, "quantity": "1"},
            {"component": CAP, "quantity": "1"},
            {"component": MIX, "quantity": "1", "scrap_percent": "1"},
        ],
    },
    {
        # One tank: 1000 l of mix from concentrate and sugar (and water, which is not booked).
        "parent": MIX,
        "output_quantity": "1000",
        "lines": [
            {"component": CONC, "quantity": "160"},
            {"component": SUGAR, "quantity": "40"},
        ],
    },
    {"parent": BRACKET, "lines": [{"component": STEEL, "quantity": "0.25", "scrap_percent": "2"}]},
)


def _per_unit(parent: str, component: str) -> Decimal:
    """How much of `component` one unit of `parent` takes, scrap included."""
    for bom in BOMS:
        if bom["parent"] != parent:
            continue
        output = Decimal(bom.get("output_quantity", "1"))
        for line in bom["lines"]:
            if line["component"] == component:
                scrap = Decimal(line.get("scrap_percent", "0"))
                return Decimal(line["quantity"]) / output / (1 - scrap / 100)
    raise KeyError(f"{parent} takes no {component}")


def components(product: str) -> tuple[str, ...]:
    """The first-level components of `product`, as its bill lists them."""
    for bom in BOMS:
        if bom["parent"] == product:
            return tuple(line["component"] for line in bom["lines"])
    return ()


def need(product: str, component: str, quantity: Decimal, decimals: int) -> Decimal:
    """`component` for `quantity` of `product`, rounded up to the component's unit."""
    step = Decimal(1).scaleb(-decimals)
    return (quantity * _per_unit(product, component)).quantize(step, rounding=ROUND_CEILING)


DECIMALS = {m["code"]: int(m["decimals"]) for m in MATERIALS}
UNITS = {m["code"]: str(m["unit"]) for m in MATERIALS}


@dataclass(frozen=True, slots=True)
class DemoCompany:
    """The company around one factory: its organisations, locations and lines."""

    enterprise: dict[str, Any]
    customers: tuple[dict[str, Any], ...]
    suppliers: tuple[dict[str, Any], ...]
    locations: tuple[dict[str, Any], ...]
    lines: tuple[SimLine, ...]
    line_sides: dict[str, str]  # line path -> its line-side location's code

    @property
    def organisations(self) -> tuple[dict[str, Any], ...]:
        return (self.enterprise, *self.customers, *self.suppliers)

    def packaging(self) -> list[SimLine]:
        return [line for line in self.lines if line.product == JUICE]

    def customers_of(self, product: str) -> list[str]:
        """The customers that buy `product`."""
        return [c["code"] for c, spec in zip(self.customers, _CUSTOMERS, strict=True)
                if spec[3] == product]  # fmt: skip

    def mix_batch(self) -> Decimal:
        """One mixing batch: enough for the largest packaging order, in whole tanks."""
        most = max((line.quantity for line in self.packaging()), default=0.0)
        litres = need(JUICE, MIX, Decimal(str(most)), DECIMALS[MIX])
        steps = (litres / MIX_BATCH_STEP).to_integral_value(rounding=ROUND_CEILING)
        return max(steps, Decimal(1)) * MIX_BATCH_STEP


def _code(line: SimLine) -> str:
    area, name = line.path.rsplit("/", 2)[-2:]
    return f"LS-{area[:4].upper()}-{name}"


def demo_company(spec: FactorySpec) -> DemoCompany:
    site = f"{spec.enterprise}/{spec.site}"
    made = lines(spec)
    sides = {line.path: _code(line) for line in made}
    locations = (
        {"code": WAREHOUSE, "name": "Main warehouse", "asset_path": site, "kind": "warehouse"},
        *(
            {"code": code, "name": f"Line side {path.rsplit('/', 2)[-2]} {path.rsplit('/', 1)[-1]}",
             "asset_path": path, "kind": "line_side"}
            for path, code in sides.items()
        ),
    )  # fmt: skip
    return DemoCompany(
        enterprise={
            "code": spec.enterprise,
            "name": f"{spec.enterprise.capitalize()} Foods & Parts",
            "kind": "enterprise",
            "tenant": ENTERPRISE_TENANT,
        },
        customers=tuple(
            {"code": code, "name": name, "kind": "customer", "tenant": tenant,
             "contacts": [{"name": "Order desk", "email": email, "role": "buyer"}]}
            for code, name, tenant, _product, email in _CUSTOMERS
        ),
        suppliers=tuple(
            {"code": code, "name": name, "kind": "supplier", "tenant": tenant,
             "contacts": [{"name": "Sales office", "email": email, "role": "sales"}]}
            for code, name, tenant, email in _SUPPLIERS
        ),
        locations=locations,
        lines=tuple(made),
        line_sides=sides,
    )  # fmt: skip


def due(today: dt.date, days: int) -> str:
    return (today + dt.timedelta(days=days)).isoformat()
