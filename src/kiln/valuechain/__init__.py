"""The value chain: organisations, materials and bills of materials, sales and purchase orders,
material planning, lots and their genealogy, partners, B2MML (docs/valuechain.md).

This package module is the value chain's surface for the other packages (the layer rule in
pyproject's import-linter contracts). It stays light: importing it loads no store or client.
"""

from kiln.valuechain.lots import Transaction
from kiln.valuechain.master import Bom, Material
from kiln.valuechain.partners import Organisation
from kiln.valuechain.trade import Day, PurchaseOrder, SalesOrder

__all__ = ["Bom", "Day", "Material", "Organisation", "PurchaseOrder", "SalesOrder", "Transaction"]
