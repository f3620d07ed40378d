"""The data warehouse: one small interface, an embedded backend and a MongoDB backend.

`get_warehouse()` picks the backend from settings: `MONGODB_URI` set → MongoDB via pymongo,
otherwise the embedded store under `DATA_DIR/warehouse`.
"""

from core.warehouse.base import UpsertResult, Warehouse, WarehouseError
from core.warehouse.factory import get_warehouse

__all__ = ["UpsertResult", "Warehouse", "WarehouseError", "get_warehouse"]
