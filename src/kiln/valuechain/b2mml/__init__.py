"""B2MML (ISA-95 / IEC 62264) import and export for the value chain: material definitions with
their bills of materials, material lots and sublots, operations schedules and operations
performance, each validated against MESA International's schemas, which ship in
`kiln/valuechain/b2mml_schemas` (docs/valuechain.md, "B2MML").

The Business To Manufacturing Markup Language (B2MML) is used courtesy of MESA International.

`export_*` returns UTF-8 bytes that validate; `import_*` refuses what is unsafe or invalid with
a `B2mmlError` naming the element and the complaint, and returns Kiln's objects. The schemas are
built at the first document, not on import, and once: building them takes seconds
(`document.schema`).
"""

from kiln.valuechain.b2mml.document import B2mmlError
from kiln.valuechain.b2mml.materials import (
    MaterialLots,
    export_material_definitions,
    export_material_lots,
    import_material_definitions,
    import_material_lots,
    split_parts,
)
from kiln.valuechain.b2mml.operations import (
    MaterialMovement,
    MaterialUse,
    OperationsPerformanceDoc,
    OperationsScheduleDoc,
    OrderPerformance,
    ScheduledOrder,
    WorkOrderLike,
    export_operations_performance,
    export_operations_schedule,
    import_operations_performance,
    import_operations_schedule,
    order_performance,
)

__all__ = [
    "B2mmlError",
    "MaterialLots",
    "MaterialMovement",
    "MaterialUse",
    "OperationsPerformanceDoc",
    "OperationsScheduleDoc",
    "OrderPerformance",
    "ScheduledOrder",
    "WorkOrderLike",
    "export_material_definitions",
    "export_material_lots",
    "export_operations_performance",
    "export_operations_schedule",
    "import_material_definitions",
    "import_material_lots",
    "import_operations_performance",
    "import_operations_schedule",
    "order_performance",
    "split_parts",
]
