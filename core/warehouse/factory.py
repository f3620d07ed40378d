"""`get_warehouse()`: the configured backend (`MONGODB_URI` → MongoDB, else embedded)."""

from __future__ import annotations

from core.warehouse.base import Warehouse


def get_warehouse() -> Warehouse:
    """Open the configured warehouse (no connection is made before this call)."""
    from core.settings import get_settings

    settings = get_settings()
    if settings.MONGODB_URI:
        from core.warehouse.mongo import MongoWarehouse

        return MongoWarehouse(settings.MONGODB_URI, settings.MONGODB_DATABASE)
    from core.warehouse.embedded import EmbeddedWarehouse

    return EmbeddedWarehouse(settings.warehouse_dir)
