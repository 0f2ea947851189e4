"""Initial schema: registry, alerts, events, notifications, link uses, append-only audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-24 05:33:41.907971
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply."""
    op.create_table(
        "alerts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("community_id", sa.String(length=64), nullable=True),
        sa.Column("resident_id", sa.String(length=64), nullable=True),
        sa.Column("device", sa.String(length=64), nullable=True),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("life_safety", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("open_key", sa.String(length=200), nullable=True),
        sa.Column("raised_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_ms", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("explanation_zh", sa.Text(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("cleared_ms", sa.BigInteger(), nullable=True),
        sa.Column("owner_id", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("ack_ms", sa.BigInteger(), nullable=True),
        sa.Column("en_route_ms", sa.BigInteger(), nullable=True),
        sa.Column("on_site_ms", sa.BigInteger(), nullable=True),
        sa.Column("resolved_ms", sa.BigInteger(), nullable=True),
        sa.Column("time_to_ack_ms", sa.BigInteger(), nullable=True),
        sa.Column("time_to_on_site_ms", sa.BigInteger(), nullable=True),
        sa.Column("time_to_resolve_ms", sa.BigInteger(), nullable=True),
        sa.Column("policy", sa.JSON(), nullable=False),
        sa.Column("remind_due_ms", sa.BigInteger(), nullable=True),
        sa.Column("escalate_due_ms", sa.BigInteger(), nullable=True),
        sa.Column("escalation_step", sa.Integer(), nullable=False),
        sa.Column("on_site_due_ms", sa.BigInteger(), nullable=True),
        sa.Column("next_due_ms", sa.BigInteger(), nullable=True),
        sa.Column("notified", sa.JSON(), nullable=False),
        sa.Column("last_notified_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("open_key", name=op.f("uq_alerts_open_key")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alerts_community_id"), ["community_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alerts_next_due_ms"), ["next_due_ms"], unique=False)
        batch_op.create_index(batch_op.f("ix_alerts_raised_ms"), ["raised_ms"], unique=False)
        batch_op.create_index(batch_op.f("ix_alerts_resident_id"), ["resident_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alerts_site"), ["site"], unique=False)
        batch_op.create_index(batch_op.f("ix_alerts_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_alerts_type"), ["type"], unique=False)

    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("time_ms", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_entity", ["entity", "entity_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_log_time_ms"), ["time_ms"], unique=False)

    op.create_table(
        "districts",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_districts")),
    )
    op.create_table(
        "workers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("lang", sa.String(length=8), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
    )
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_workers_role"), ["role"], unique=False)
        batch_op.create_index(batch_op.f("ix_workers_scope"), ["scope"], unique=False)

    op.create_table(
        "alert_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("alert_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("time_ms", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], name=op.f("fk_alert_events_alert_id_alerts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_events")),
    )
    with op.batch_alter_table("alert_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_events_alert_id"), ["alert_id"], unique=False)

    op.create_table(
        "link_uses",
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("alert_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("worker_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("used_ms", sa.BigInteger(), nullable=False),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], name=op.f("fk_link_uses_alert_id_alerts")),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_link_uses")),
    )
    with op.batch_alter_table("link_uses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_link_uses_alert_id"), ["alert_id"], unique=False)

    op.create_table(
        "notifications",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("alert_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("worker_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("due_ms", sa.BigInteger(), nullable=True),
        sa.Column("sent_ms", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], name=op.f("fk_notifications_alert_id_alerts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notifications_alert_id"), ["alert_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_notifications_due_ms"), ["due_ms"], unique=False)
        batch_op.create_index("ix_notifications_queue", ["status", "due_ms"], unique=False)
        batch_op.create_index(batch_op.f("ix_notifications_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_notifications_worker_id"), ["worker_id"], unique=False)

    op.create_table(
        "streets",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("district_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["district_id"], ["districts.id"], name=op.f("fk_streets_district_id_districts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_streets")),
    )
    with op.batch_alter_table("streets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_streets_district_id"), ["district_id"], unique=False)

    op.create_table(
        "communities",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("street_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["street_id"], ["streets.id"], name=op.f("fk_communities_street_id_streets")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_communities")),
    )
    with op.batch_alter_table("communities", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_communities_street_id"), ["street_id"], unique=False)

    op.create_table(
        "grids",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["community_id"], ["communities.id"], name=op.f("fk_grids_community_id_communities")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grids")),
    )
    with op.batch_alter_table("grids", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_grids_community_id"), ["community_id"], unique=False)

    op.create_table(
        "sites",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("gateway", sa.String(length=64), nullable=False),
        sa.Column("grid_id", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(["grid_id"], ["grids.id"], name=op.f("fk_sites_grid_id_grids")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sites")),
    )
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sites_grid_id"), ["grid_id"], unique=False)

    op.create_table(
        "devices",
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("device", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("room", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_devices_site_id_sites")),
        sa.PrimaryKeyConstraint("site_id", "device", name=op.f("pk_devices")),
    )
    op.create_table(
        "residents",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("gender", sa.String(length=8), nullable=True),
        sa.Column("birth_year", sa.Integer(), nullable=True),
        sa.Column("id_number", sa.String(length=32), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("ability_level", sa.Integer(), nullable=True),
        sa.Column("emergency_contacts", sa.JSON(), nullable=False),
        sa.Column("consent", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_residents_site_id_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_residents")),
    )
    with op.batch_alter_table("residents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_residents_site_id"), ["site_id"], unique=False)

    op.create_table(
        "visits",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("resident_id", sa.String(length=64), nullable=False),
        sa.Column("worker_id", sa.String(length=64), nullable=False),
        sa.Column("time_ms", sa.BigInteger(), nullable=False),
        sa.Column("outcome", sa.String(length=64), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["resident_id"], ["residents.id"], name=op.f("fk_visits_resident_id_residents")),
        sa.ForeignKeyConstraint(["worker_id"], ["workers.id"], name=op.f("fk_visits_worker_id_workers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visits")),
    )
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_visits_resident_id"), ["resident_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_visits_time_ms"), ["time_ms"], unique=False)
        batch_op.create_index(batch_op.f("ix_visits_worker_id"), ["worker_id"], unique=False)

    _create_append_only_triggers()


def downgrade() -> None:
    """Revert."""
    _drop_append_only_triggers()
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_visits_worker_id"))
        batch_op.drop_index(batch_op.f("ix_visits_time_ms"))
        batch_op.drop_index(batch_op.f("ix_visits_resident_id"))

    op.drop_table("visits")
    with op.batch_alter_table("residents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_residents_site_id"))

    op.drop_table("residents")
    op.drop_table("devices")
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sites_grid_id"))

    op.drop_table("sites")
    with op.batch_alter_table("grids", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_grids_community_id"))

    op.drop_table("grids")
    with op.batch_alter_table("communities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_communities_street_id"))

    op.drop_table("communities")
    with op.batch_alter_table("streets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_streets_district_id"))

    op.drop_table("streets")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notifications_worker_id"))
        batch_op.drop_index(batch_op.f("ix_notifications_status"))
        batch_op.drop_index("ix_notifications_queue")
        batch_op.drop_index(batch_op.f("ix_notifications_due_ms"))
        batch_op.drop_index(batch_op.f("ix_notifications_alert_id"))

    op.drop_table("notifications")
    with op.batch_alter_table("link_uses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_link_uses_alert_id"))

    op.drop_table("link_uses")
    with op.batch_alter_table("alert_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_events_alert_id"))

    op.drop_table("alert_events")
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workers_scope"))
        batch_op.drop_index(batch_op.f("ix_workers_role"))

    op.drop_table("workers")
    op.drop_table("districts")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_time_ms"))
        batch_op.drop_index("ix_audit_log_entity")

    op.drop_table("audit_log")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alerts_type"))
        batch_op.drop_index(batch_op.f("ix_alerts_state"))
        batch_op.drop_index(batch_op.f("ix_alerts_site"))
        batch_op.drop_index(batch_op.f("ix_alerts_resident_id"))
        batch_op.drop_index(batch_op.f("ix_alerts_raised_ms"))
        batch_op.drop_index(batch_op.f("ix_alerts_next_due_ms"))
        batch_op.drop_index(batch_op.f("ix_alerts_community_id"))

    op.drop_table("alerts")


def _create_append_only_triggers() -> None:
    # The audit log must not be edited after the fact, whatever code (or operator) tries.
    dialect = op.get_context().dialect.name
    if dialect == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
        )


def _drop_append_only_triggers() -> None:
    dialect = op.get_context().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
