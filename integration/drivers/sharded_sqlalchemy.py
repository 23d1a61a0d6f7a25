#!/usr/bin/env python3
"""SQLAlchemy 2 (Core and ORM) on a sharded logical database, checking results
and where each row landed (see shardwork.py for the layout and the arguments).

  --driver pymysql | mysqlconnector   the DBAPI under SQLAlchemy

create_all / drop_all (DESCRIBE to learn whether each table exists, then
CREATE TABLE fanned out), ORM session.add + commit (the generated key comes
back as the primary key), add_all (one multi-row INSERT ... RETURNING on
MariaDB), get() by key, updates and deletes through the unit of work, a
rolled-back session, and Core inserts, selects and updates.  Exit 0 if every
check passed, 1 otherwise.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import drvcommon as dc  # noqa: E402

dc.maybe_reexec_for_cext()

import shardwork as sw  # noqa: E402

try:
    import sqlalchemy as sa
    from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
except ImportError:
    print("SQLAlchemy is not installed (pip install SQLAlchemy)")
    sys.exit(2)


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "t_order"
    order_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.Integer)
    amount: Mapped[int] = mapped_column(sa.Integer, nullable=True)
    note: Mapped[str] = mapped_column(sa.String(64), nullable=True)
    items: Mapped[list["Item"]] = relationship(
        primaryjoin="and_(Order.order_id == foreign(Item.order_id), Order.user_id == foreign(Item.user_id))",
        viewonly=True)


class Item(Base):
    __tablename__ = "t_order_item"
    item_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    order_id: Mapped[int] = mapped_column(sa.BigInteger)
    user_id: Mapped[int] = mapped_column(sa.Integer)
    sku: Mapped[str] = mapped_column(sa.String(32), nullable=True)


class Province(Base):
    __tablename__ = "t_province"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(sa.String(32))


def main():
    args = sw.parse_args(__doc__)
    host, port = args.proxy
    driver = args.driver or "pymysql"
    url = sa.engine.URL.create("mysql+" + driver, username=args.proxy_user,
                               password=args.proxy_password, host=host, port=port,
                               database=args.proxy_db)
    engine = sa.create_engine(url, pool_pre_ping=True)
    shards = sw.Shards(args)
    run = sw.Checks("sqlalchemy+" + driver)
    orders = Order.__table__

    def create_all():
        Base.metadata.create_all(engine)
        for i in range(2):
            sw.eq(shards.tables(i), ["t_order_0", "t_order_1", "t_order_item_0",
                                     "t_order_item_1", "t_province"], "tables of ds_%d" % i)
        # Again: every table exists now, so nothing is created.
        Base.metadata.create_all(engine)
        sw.eq(sa.inspect(engine).has_table("t_order"), True, "has_table(t_order)")
        sw.eq(sa.inspect(engine).has_table("t_nothing"), False, "has_table(t_nothing)")
    run.check("create_all fans CREATE TABLE out, and sees the tables the second time", create_all)

    keys = {}

    def orm_add_commit():
        with Session(engine) as s:
            o = Order(user_id=7, amount=10, note="orm")
            s.add(o)
            s.commit()
            assert o.order_id > 1 << 40, "primary key %r is no snowflake key" % o.order_id
            keys["orm"] = o.order_id
            shards.assert_placed(o.order_id, 7, 10, "orm")
        with Session(engine) as s:
            got = s.get(Order, keys["orm"])
            sw.eq((got.user_id, got.amount, got.note), (7, 10, "orm"), "get() by key")
    run.check("session.add + commit: the generated key is the primary key", orm_add_commit)

    def orm_add_all():
        with Session(engine) as s:
            objs = [Order(user_id=100 + i, amount=i, note="all%d" % i) for i in range(10)]
            s.add_all(objs)
            s.commit()
            pairs = [(o.order_id, o.user_id, o.amount, o.note) for o in objs]
        for order_id, user_id, amount, note in pairs:
            shards.assert_placed(order_id, user_id, amount, note)
        ids = [p[0] for p in pairs]
        sw.eq(len(set(ids)), 10, "distinct keys")
        with Session(engine) as s:
            for order_id, user_id, amount, note in pairs:
                got = s.scalars(sa.select(Order).where(Order.user_id == user_id,
                                                       Order.order_id == order_id)).all()
                sw.eq([(g.order_id, g.amount, g.note) for g in got], [(order_id, amount, note)],
                      "query by key")
    run.check("session.add_all: each object gets its own row's key", orm_add_all)

    def orm_update_delete():
        with Session(engine) as s:
            o = s.get(Order, keys["orm"])
            o.amount = 11
            s.commit()
            shards.assert_placed(keys["orm"], 7, 11)
            s.delete(o)
            s.commit()
            sw.eq(shards.located(keys["orm"]), [], "deleted row")
            sw.eq(s.get(Order, keys["orm"]), None, "get() after delete")
    run.check("unit of work: update and delete by primary key", orm_update_delete)

    def orm_rollback():
        with Session(engine) as s:
            s.add_all([Order(user_id=200, amount=1, note="rb"), Order(user_id=201, amount=1, note="rb")])
            s.flush()
            sw.eq(len(s.scalars(sa.select(Order).where(Order.user_id == 200)).all()), 1,
                  "seen inside the transaction")
            s.rollback()
        sw.eq(shards.count_orders("note = 'rb'"), 0, "rolled back on both data sources")
    run.check("a session rolled back after a flush to both data sources", orm_rollback)

    def relationships():
        with Session(engine) as s:
            o = Order(user_id=8, amount=1, note="with items")
            s.add(o)
            s.flush()
            s.add_all([Item(item_id=1, order_id=o.order_id, user_id=8, sku="a"),
                       Item(item_id=2, order_id=o.order_id, user_id=8, sku="b")])
            s.commit()
            order_id = o.order_id
        with Session(engine) as s:
            o = s.scalars(sa.select(Order).where(Order.user_id == 8, Order.order_id == order_id)).one()
            sw.eq(sorted(i.sku for i in o.items), ["a", "b"], "items of the order")
            table = "t_order_item_%d" % (order_id % 2)
            sw.eq(shards.query(0, "SELECT item_id FROM %s ORDER BY item_id" % table), [(1,), (2,)],
                  "items on the order's node")
    run.check("binding tables: an order's items next to it", relationships)

    def core():
        with engine.begin() as c:
            r = c.execute(sa.insert(orders).values(user_id=3, amount=1, note="core"))
            key = r.inserted_primary_key[0]
            r = c.execute(sa.insert(orders), [dict(user_id=300 + i, amount=i, note="core many")
                                              for i in range(6)])
            sw.eq(r.rowcount, 6, "executemany rowcount")
            r = c.execute(sa.update(orders).where(orders.c.note == "core many")
                          .values(amount=orders.c.amount + 100))
            sw.eq(r.rowcount, 6, "update rowcount across nodes")
            rows = c.execute(sa.select(orders.c.user_id, orders.c.amount)
                             .where(orders.c.note == "core many")).all()
            sw.eq(sorted(tuple(r) for r in rows), [(300 + i, 100 + i) for i in range(6)], "rows")
            c.execute(sa.insert(Province.__table__), [dict(id=1, name="Bern"), dict(id=2, name="Vaud")])
        for i in range(2):
            sw.eq(shards.query(i, "SELECT id, name FROM t_province ORDER BY id"),
                  [(1, "Bern"), (2, "Vaud")], "t_province on ds_%d" % i)
        shards.assert_placed(key, 3, 1, "core")
        sw.eq(shards.count_orders("note = 'core many'"), 6, "rows on the data sources")
    run.check("Core: insert, executemany, update and select", core)

    def drop_all():
        Base.metadata.drop_all(engine)
        for i in range(2):
            sw.eq(shards.tables(i), [], "tables of ds_%d" % i)
    run.check("drop_all fans DROP TABLE out", drop_all)

    engine.dispose()
    return run.finish()


if __name__ == "__main__":
    sys.exit(main())
