"""Alert store: SQLAlchemy 2 models, Alembic migrations and the repository (SQLite or PostgreSQL)."""

# Tables outside tables.py register on the shared metadata when the package loads (the schema check sees them).
from alerts.store import away as _away  # noqa: E402, F401
from alerts.store import checkins as _checkins  # noqa: E402, F401
from alerts.store import gateway_accounts as _gateway_accounts  # noqa: E402, F401
from alerts.store import guardians as _guardians  # noqa: E402, F401
from alerts.store import handover as _handover  # noqa: E402, F401
from alerts.store import learned as _learned  # noqa: E402, F401
