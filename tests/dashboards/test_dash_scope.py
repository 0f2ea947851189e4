"""The scoping rule for every role: in memory (Scope.contains) and as a SQL filter (scope_clause)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from dash_fixtures import VISIBLE, registry
from dash_helpers import Backend

from alerts.scope import Scope, scope_clause, scope_of
from alerts.views import Account, Role


@pytest.mark.parametrize("worker", sorted(VISIBLE))
def test_scope_of_every_role_lists_exactly_their_residents(backend: Backend, worker: str) -> None:
    user = backend.account(worker)
    assert user is not None
    assert {r.id for r in backend.list_residents(scope_of(user))} == VISIBLE[worker]


def test_scope_levels() -> None:
    assert scope_of(Account("a", "a", Role.ADMIN, "")) == Scope("all")
    assert scope_of(Account("d", "d", Role.DISTRICT, "D01")) == Scope("district", "D01")
    assert scope_of(Account("s", "s", Role.STREET, "S01")) == Scope("street", "S01")
    assert scope_of(Account("c", "c", Role.COMMUNITY_DUTY, "C01")) == Scope("community", "C01")
    assert scope_of(Account("g", "g", Role.GRID_WORKER, "G01")) == Scope("grid", "G01")


def test_empty_scope_id_sees_nothing(backend: Backend) -> None:
    user = Account("x", "x", Role.COMMUNITY_DUTY, "")
    assert backend.list_residents(scope_of(user)) == []


@pytest.mark.parametrize("worker", sorted(VISIBLE))
def test_sql_filter_for_every_role(worker: str) -> None:
    """scope_clause over a real SQL join of residents → sites → grids → communities → streets."""
    data = registry()
    engine = sa.create_engine("sqlite://")
    md = sa.MetaData()
    streets = sa.Table("streets", md, sa.Column("id", sa.String, primary_key=True), sa.Column("district_id", sa.String))
    communities = sa.Table(
        "communities", md, sa.Column("id", sa.String, primary_key=True), sa.Column("street_id", sa.String)
    )
    grids = sa.Table("grids", md, sa.Column("id", sa.String, primary_key=True), sa.Column("community_id", sa.String))
    sites = sa.Table("sites", md, sa.Column("id", sa.String, primary_key=True), sa.Column("grid_id", sa.String))
    residents = sa.Table("residents", md, sa.Column("id", sa.String, primary_key=True), sa.Column("site_id", sa.String))
    md.create_all(engine)
    with engine.begin() as conn:
        conn.execute(streets.insert(), [{"id": s["id"], "district_id": s["district"]} for s in data["streets"]])
        conn.execute(communities.insert(), [{"id": c["id"], "street_id": c["street"]} for c in data["communities"]])
        conn.execute(grids.insert(), [{"id": g["id"], "community_id": g["community"]} for g in data["grids"]])
        conn.execute(sites.insert(), [{"id": s["site"], "grid_id": s["grid"]} for s in data["sites"]])
        conn.execute(
            residents.insert(), [{"id": r["id"], "site_id": s["site"]} for s in data["sites"] for r in s["residents"]]
        )
    w = next(w for w in data["workers"] if w["id"] == worker)
    user = Account(w["id"], w["name"], Role(w["role"]), w["scope"])
    clause = scope_clause(
        user,
        district=streets.c.district_id,
        street=streets.c.id,
        community=communities.c.id,
        grid=grids.c.id,
    )
    query = (
        sa.select(residents.c.id)
        .join(sites, sites.c.id == residents.c.site_id)
        .join(grids, grids.c.id == sites.c.grid_id)
        .join(communities, communities.c.id == grids.c.community_id)
        .join(streets, streets.c.id == communities.c.street_id)
        .where(clause)
    )
    with engine.connect() as conn:
        assert {row[0] for row in conn.execute(query)} == VISIBLE[worker]
