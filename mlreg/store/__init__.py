"""mlreg.store: what the registry and tracking both stand on.

Settings (``StoreSettings``), the database (``database``: one engine per URI per process),
the tables and their Alembic migrations (``tables``, ``migrate``), and the rules for names,
keys and values (``validation``). Neither the registry nor tracking is imported here; this
``__init__`` imports nothing heavy, so ``mlreg.store.validation`` costs no SQLAlchemy.
"""

from mlreg.store.settings import StoreSettings

__all__ = ["StoreSettings"]
