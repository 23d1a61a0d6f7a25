"""SQLAlchemy 2 (psycopg 3 dialect) through dbmesh versus a direct connection.

Same arguments as the other checks (see README.md). Reflection (which runs
SQLAlchemy's catalog queries), Core selects with bound parameters, an ORM
session, and writes inside transactions that are rolled back, so both sides
see the same table.
"""

import sys

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.engine import URL

import drvcommon


def engine(side):
    url = URL.create("postgresql+psycopg", username=side.user,
                     password=side.password or None, host=side.host, port=side.port,
                     database=side.db)
    return sa.create_engine(url, poolclass=sa.pool.NullPool)


def main():
    args = drvcommon.parse_args(__doc__)
    direct, proxy = drvcommon.sides_from_args(args)
    run = drvcommon.Runner("sqlalchemy")
    if not run.preflight(lambda s: engine(s).connect(), proxy):
        return run.finish()
    table = "drv_sa_" + drvcommon.unique_suffix()
    with engine(direct).begin() as c:
        c.exec_driver_sql(
            "CREATE TABLE %s (id serial PRIMARY KEY, name varchar(40) NOT NULL UNIQUE,"
            " price numeric(10,2) DEFAULT 0, created timestamptz DEFAULT '2024-01-01',"
            " tags text[], meta jsonb)" % table)
        c.exec_driver_sql(
            "INSERT INTO %s (name, price, tags, meta) VALUES ('apple', 1.25, '{red,fruit}',"
            " '{\"k\": 1}'), ('bröd', 3.5, '{}', NULL)" % table)
    try:
        checks(run, direct, proxy, table)
    finally:
        with engine(direct).begin() as c:
            c.exec_driver_sql("DROP TABLE IF EXISTS %s" % table)
    return run.finish()


def checks(run, direct, proxy, table):
    def reflect(side):
        md = sa.MetaData()
        t = sa.Table(table, md, autoload_with=engine(side))
        insp = sa.inspect(engine(side))
        return {"columns": [[c.name, repr(c.type), c.nullable, str(c.server_default
                                                                   and c.server_default.arg)]
                            for c in t.columns],
                "pk": [c.name for c in t.primary_key],
                "unique": [sorted(u["column_names"]) for u in insp.get_unique_constraints(table)],
                "has_table": insp.has_table(table)}
    run.check("reflection", reflect, direct, proxy)

    def core_select(side):
        md = sa.MetaData()
        t = sa.Table(table, md, autoload_with=engine(side))
        with engine(side).connect() as c:
            rows = c.execute(sa.select(t).where(t.c.price > sa.bindparam("p"))
                             .order_by(t.c.id), {"p": 1}).all()
            one = c.execute(sa.text("SELECT CAST(:a AS int) + 1 AS x, :b AS y"),
                            {"a": 41, "b": "ü"}).one()
        return {"rows": drvcommon.norm_rows([tuple(r) for r in rows]),
                "one": drvcommon.norm_value(tuple(one))}
    run.check("core select with parameters", core_select, direct, proxy)

    def orm_rollback(side):
        class Base(orm.DeclarativeBase):
            pass

        class Item(Base):
            __table__ = sa.Table(table, Base.metadata, autoload_with=engine(side))

        with orm.Session(engine(side)) as s:
            s.add_all([Item(name="n%d" % i, price=i) for i in range(5)])
            s.flush()
            names = [i.name for i in s.scalars(sa.select(Item).order_by(Item.name))]
            total = s.scalar(sa.select(sa.func.sum(Item.price)))
            try:
                s.add(Item(name="apple"))
                s.flush()
                dup = None
            except sa.exc.IntegrityError as e:
                dup = e.orig.sqlstate
            s.rollback()
            count = s.scalar(sa.select(sa.func.count()).select_from(Item))
        return {"names": names, "total": drvcommon.norm_value(total), "dup": dup,
                "count_after_rollback": count}
    run.check("ORM session, unique violation, rollback", orm_rollback, direct, proxy)


if __name__ == "__main__":
    sys.exit(main())
