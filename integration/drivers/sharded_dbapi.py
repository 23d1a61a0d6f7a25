#!/usr/bin/env python3
"""A realistic workload on a sharded logical database through a Python DB-API
MySQL driver, checking results and where each row landed (see shardwork.py
for the layout and the arguments).

  --driver pymysql          PyMySQL (text protocol, client-side parameters)
  --driver connector-pure   mysql-connector-python, pure Python, server-side
                            prepared statements (cursor(prepared=True)) for
                            most work, and a plain cursor's batched
                            executemany
  --driver connector-cext   the same with the C extension (prints SKIP and
                            passes when it cannot be loaded)

Exit 0 if every check passed, 1 otherwise, 2 on a usage error.
"""

import datetime
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import drvcommon as dc  # noqa: E402

dc.maybe_reexec_for_cext()

import shardwork as sw  # noqa: E402


def driver_api(args):
    """(connect(autocommit) -> connection, cursor(conn) -> cursor for the main work,
    error classes, whether the work uses server-side prepared statements)."""
    host, port = args.proxy
    if args.driver == "pymysql":
        import pymysql

        def connect(autocommit=True):
            return pymysql.connect(host=host, port=port, user=args.proxy_user,
                                   password=args.proxy_password, database=args.proxy_db,
                                   charset="utf8mb4", autocommit=autocommit)
        return connect, lambda conn: conn.cursor(), pymysql.err.MySQLError, False
    if args.driver in ("connector-pure", "connector-cext"):
        import mysql.connector
        use_pure = args.driver == "connector-pure"
        if not use_pure:
            try:
                import _mysql_connector  # noqa: F401
                from mysql.connector import connection_cext  # noqa: F401
            except Exception as exc:  # noqa: BLE001
                print("SKIP: the mysql-connector C extension cannot be loaded: %s" % exc)
                return None

        def connect(autocommit=True):
            return mysql.connector.connect(host=host, port=port, user=args.proxy_user,
                                           password=args.proxy_password,
                                           database=args.proxy_db, use_pure=use_pure,
                                           charset="utf8mb4", autocommit=autocommit)
        return (connect, lambda conn: conn.cursor(prepared=True),
                mysql.connector.Error, True)
    print("unknown --driver %r" % args.driver)
    sys.exit(2)


def main():
    args = sw.parse_args(__doc__)
    api = driver_api(args)
    if api is None:
        print("0 passed, 0 failed")
        return 0
    connect, work_cursor, DriverError, prepared = api
    shards = sw.Shards(args)
    run = sw.Checks("sharded " + args.driver)
    conn = connect()
    cur = work_cursor(conn)
    plain = conn.cursor()

    def ddl_fans_out():
        for ddl in sw.ORDERS_DDL:
            plain.execute(ddl)
        for i in range(2):
            sw.eq(shards.tables(i), ["t_order_0", "t_order_1", "t_order_item_0",
                                     "t_order_item_1", "t_province"], "tables of ds_%d" % i)
        keys = shards.query(1, "SHOW INDEX FROM t_order_1 WHERE Key_name LIKE 'idx_user%%'")
        sw.eq(len(keys), 1, "index of ds_1.t_order_1")
    run.check("CREATE TABLE fans out to every actual table", ddl_fans_out)

    def insert_with_key():
        for order_id, user_id in ((12, 7), (12, 8), (13, 8), (5, -3)):
            cur.execute("INSERT INTO t_order (order_id, user_id, amount, note) VALUES (%s, %s, %s, %s)",
                        (order_id, user_id, order_id * 10, "k%d" % order_id))
            sw.eq(cur.rowcount, 1, "rowcount")
        for order_id, user_id in ((12, 7), (12, 8), (13, 8), (5, -3)):
            found = shards.orders("order_id = %s AND user_id = %s", (order_id, user_id))
            want = sw.node_of(user_id, order_id)
            sw.eq([n for n, rows in found.items() if rows], [want], "node of (%d, %d)" % (order_id, user_id))
    run.check("INSERT with the key lands on the node its values choose", insert_with_key)

    generated = {}

    def insert_without_key():
        for user_id in (21, 22):
            cur.execute("INSERT INTO t_order (user_id, amount, note, created) VALUES (%s, %s, %s, %s)",
                        (user_id, 5, "gen%d" % user_id, datetime.datetime(2024, 2, 29, 13, 45, 56)))
            key = cur.lastrowid
            assert isinstance(key, int) and key > 1 << 40, "lastrowid %r is no snowflake key" % (key,)
            generated[user_id] = key
            shards.assert_placed(key, user_id, 5, "gen%d" % user_id)
            cur.execute("SELECT order_id, user_id, amount, note, created FROM t_order"
                        " WHERE user_id = %s AND order_id = %s", (user_id, key))
            sw.eq([tuple(r) for r in cur.fetchall()],
                  [(key, user_id, 5, "gen%d" % user_id, datetime.datetime(2024, 2, 29, 13, 45, 56))],
                  "read back by key")
        assert generated[22] > generated[21], "keys grow: %r" % generated
    run.check("INSERT without the key: lastrowid is the generated key, which routes the row",
              insert_without_key)

    def executemany_without_key():
        rows = [(100 + i, i, "many%d" % i) for i in range(10)]
        cur.executemany("INSERT INTO t_order (user_id, amount, note) VALUES (%s, %s, %s)", rows)
        if not (args.driver == "connector-cext" and prepared):
            # (The C extension reports -1 per row for prepared executemany, also direct.)
            sw.eq(cur.rowcount, 10, "rowcount")
        keys = {}
        for user_id, amount, note in rows:
            got = [r for rs in shards.orders("note = %s", (note,)).values() for r in rs]
            sw.eq(len(got), 1, "rows with note %s" % note)
            keys[note] = got[0][0]
            shards.assert_placed(got[0][0], user_id, amount, note)
        ordered = [keys[r[2]] for r in rows]
        sw.eq(ordered, sorted(ordered), "keys in row order")
        # One multi-row INSERT reports its first key; one INSERT per row, the last one's.
        if prepared:
            sw.eq(cur.lastrowid, ordered[-1], "lastrowid after one execute per row")
        else:
            sw.eq(cur.lastrowid, ordered[0], "lastrowid of the multi-row INSERT")
    run.check("executemany without the key: each row on its own node", executemany_without_key)

    def executemany_with_key():
        rows = [(1000 + i, 200 + i, i) for i in range(8)]
        plain.executemany("INSERT INTO t_order (order_id, user_id, amount) VALUES (%s, %s, %s)", rows)
        sw.eq(plain.rowcount, 8, "rowcount")
        for order_id, user_id, amount in rows:
            shards.assert_placed(order_id, user_id, amount)
    run.check("batched executemany with the key: the multi-row INSERT is split per node",
              executemany_with_key)

    def selects():
        cur.execute("SELECT order_id, amount FROM t_order WHERE user_id = %s AND order_id = %s", (8, 13))
        sw.eq([tuple(r) for r in cur.fetchall()], [(13, 130)], "one node")
        cur.execute("SELECT order_id FROM t_order WHERE user_id = %s", (8,))
        sw.eq(sorted(r[0] for r in cur.fetchall()), [12, 13], "one data source, both tables")
        cur.execute("SELECT order_id, user_id FROM t_order WHERE order_id IN (%s, %s, %s)", (12, 13, 5))
        sw.eq(sorted(tuple(r) for r in cur.fetchall()), [(5, -3), (12, 7), (12, 8), (13, 8)], "IN list")
        cur.execute("SELECT order_id FROM t_order WHERE amount >= %s", (100,))
        sw.eq(sorted(r[0] for r in cur.fetchall()), [12, 12, 13], "every node")
        plain.execute("SELECT note FROM t_order")
        sw.eq(len(plain.fetchall()), shards.count_orders(), "every row, text protocol")
    run.check("SELECT by sharding key, by data source, IN list, across every node", selects)

    def updates():
        cur.execute("UPDATE t_order SET amount = amount + 1 WHERE user_id = %s AND order_id = %s", (7, 12))
        sw.eq(cur.rowcount, 1, "rowcount by key")
        shards.assert_placed(12, 7, 121)
        cur.execute("UPDATE t_order SET note = %s WHERE amount BETWEEN %s AND %s", ("ranged", 0, 7))
        want = shards.count_orders("amount BETWEEN 0 AND 7")
        sw.eq(cur.rowcount, want, "rowcount across nodes")
        sw.eq(shards.count_orders("note = 'ranged'"), want, "updated rows")
        try:
            cur.execute("UPDATE t_order SET user_id = %s WHERE order_id = %s", (9, 13))
            raise AssertionError("changing a sharding column was not refused")
        except DriverError as exc:
            sw.eq(getattr(exc, "errno", None) or exc.args[0], 1235, "errno of a sharding key change")
        cur.execute("SELECT user_id FROM t_order WHERE order_id = %s", (13,))
        sw.eq([tuple(r) for r in cur.fetchall()], [(8,)], "the connection is usable after it")
    run.check("UPDATE by key and across nodes; a sharding key change is refused", updates)

    def deletes():
        cur.execute("DELETE FROM t_order WHERE user_id = %s AND order_id = %s", (-3, 5))
        sw.eq(cur.rowcount, 1, "rowcount by key")
        sw.eq(shards.located(5, -3), [], "deleted row")
        before = shards.count_orders("note LIKE 'many%%'")
        cur.execute("DELETE FROM t_order WHERE note LIKE %s", ("many%",))
        sw.eq(cur.rowcount, before, "rowcount across nodes")
        sw.eq(shards.count_orders("note LIKE 'many%%'"), 0, "rows left")
    run.check("DELETE by key and across nodes", deletes)

    def transactions():
        tconn = connect(autocommit=False)
        tcur = work_cursor(tconn)
        # Two data sources in one transaction, committed.
        tcur.execute("INSERT INTO t_order (order_id, user_id, amount) VALUES (%s, %s, %s)", (300, 30, 1))
        tcur.execute("INSERT INTO t_order (order_id, user_id, amount) VALUES (%s, %s, %s)", (301, 31, 1))
        tcur.execute("UPDATE t_order SET amount = amount + 1 WHERE order_id IN (%s, %s)", (300, 301))
        sw.eq(shards.count_orders("order_id IN (300, 301)"), 0, "seen directly before COMMIT")
        tconn.commit()
        shards.assert_placed(300, 30, 2)
        shards.assert_placed(301, 31, 2)
        # And rolled back: nothing of it stays on either data source.
        tcur.execute("INSERT INTO t_order (user_id, amount, note) VALUES (%s, %s, %s)", (40, 1, "rolled back"))
        tcur.execute("INSERT INTO t_order (user_id, amount, note) VALUES (%s, %s, %s)", (41, 1, "rolled back"))
        tcur.execute("DELETE FROM t_order WHERE order_id IN (%s, %s)", (300, 301))
        sw.eq(tcur.rowcount, 2, "rowcount inside the transaction")
        tconn.rollback()
        sw.eq(shards.count_orders("note = 'rolled back'"), 0, "rolled-back inserts")
        sw.eq(shards.count_orders("order_id IN (300, 301)"), 2, "rolled-back delete")
        tcur.execute("SELECT count(*) FROM t_order WHERE user_id = %s AND order_id = %s", (30, 300))
        sw.eq([tuple(r) for r in tcur.fetchall()], [(1,)], "read in the next transaction")
        tconn.rollback()
        tconn.close()
        # An explicit BEGIN on an autocommit connection.
        plain.execute("BEGIN")
        plain.execute("UPDATE t_order SET amount = 0 WHERE order_id IN (300, 301)")
        plain.execute("ROLLBACK")
        sw.eq(shards.count_orders("order_id IN (300, 301) AND amount = 2"), 2, "after BEGIN ... ROLLBACK")
    run.check("transactions over both data sources, committed and rolled back", transactions)

    def broadcast_and_single():
        cur.execute("INSERT INTO t_province (id, name) VALUES (%s, %s)", (1, "Bern"))
        plain.execute("INSERT INTO t_province (id, name) VALUES (2, 'Vaud'), (3, 'Zug')")
        sw.eq(plain.rowcount, 2, "a broadcast write counts its rows once")
        for i in range(2):
            sw.eq(shards.query(i, "SELECT id, name FROM t_province ORDER BY id"),
                  [(1, "Bern"), (2, "Vaud"), (3, "Zug")], "t_province on ds_%d" % i)
        cur.execute("SELECT name FROM t_province WHERE id = %s", (2,))
        sw.eq([tuple(r) for r in cur.fetchall()], [("Vaud",)], "broadcast read")
        plain.execute("CREATE TABLE t_user_profile (user_id INT PRIMARY KEY, bio TEXT)")
        cur.execute("INSERT INTO t_user_profile (user_id, bio) VALUES (%s, %s)", (7, "hi"))
        cur.execute("SELECT bio FROM t_user_profile WHERE user_id = %s", (7,))
        sw.eq([tuple(r) for r in cur.fetchall()], [("hi",)], "single table")
        sw.eq(shards.query(0, "SELECT user_id FROM t_user_profile"), [(7,)], "single table on ds_0")
        sw.eq("t_user_profile" in shards.tables(1), False, "single table on ds_1")
    run.check("broadcast and single tables", broadcast_and_single)

    def bound_tables():
        plain.execute("INSERT INTO t_order_item (item_id, order_id, user_id, sku) VALUES"
                      " (1, 12, 7, 'a'), (2, 12, 8, 'b'), (3, 13, 8, 'c')")
        cur.execute("SELECT o.order_id, i.sku FROM t_order o JOIN t_order_item i"
                    " ON o.order_id = i.order_id AND o.user_id = i.user_id WHERE o.user_id = %s", (8,))
        sw.eq(sorted(tuple(r) for r in cur.fetchall()), [(12, "b"), (13, "c")], "join of bound tables")
    run.check("join of binding tables", bound_tables)

    conn.close()
    return run.finish()


if __name__ == "__main__":
    sys.exit(main())
