"""Shared helpers for the sharded workload scripts (sharded_*.py).

Those scripts do real work through dbmesh on a *sharded* logical database laid
out as integration/src/sharded.rs's ORDERS_RULES:

  t_order, t_order_item  bound, over ds_${0..1}.t_<table>_${0..1}:
                         data source by user_id % 2, table by order_id % 2,
                         t_order.order_id generated (snowflake) when left out
  t_province             broadcast (a full copy on every data source)
  anything else          a single table on ds_0

and check every result, and where each row really landed, by reading the
data sources directly (PyMySQL straight to the backend).  They print one
`ok   ...` line per passing check, `FAIL ...` with the reason otherwise, and
end with `N passed, M failed`; exit 0 only if nothing failed.

Arguments:
  --proxy HOST:PORT --proxy-user U --proxy-password P --proxy-db LOGICAL_DB
  --direct HOST:PORT --direct-user U --direct-password P
  --shard PHYSICAL_DB_OF_ds_0 --shard PHYSICAL_DB_OF_ds_1
"""

import argparse
import sys
import traceback

import pymysql

import drvcommon as dc

# The tables of ORDERS_RULES, as an application would create them through dbmesh.
ORDERS_DDL = [
    "CREATE TABLE t_order (order_id BIGINT NOT NULL PRIMARY KEY, user_id INT NOT NULL,"
    " amount INT, note VARCHAR(64), created DATETIME NULL, KEY idx_user (user_id))",
    "CREATE TABLE t_order_item (item_id BIGINT NOT NULL PRIMARY KEY, order_id BIGINT NOT NULL,"
    " user_id INT NOT NULL, sku VARCHAR(32))",
    "CREATE TABLE t_province (id INT NOT NULL PRIMARY KEY, name VARCHAR(32))",
]


def parse_args(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--proxy", required=True, type=dc.parse_hostport)
    p.add_argument("--proxy-user", required=True)
    p.add_argument("--proxy-password", default="")
    p.add_argument("--proxy-db", required=True)
    p.add_argument("--direct", required=True, type=dc.parse_hostport)
    p.add_argument("--direct-user", required=True)
    p.add_argument("--direct-password", default="")
    p.add_argument("--shard", action="append", required=True,
                   help="physical database of ds_0, then of ds_1")
    p.add_argument("--driver", default="",
                   help="which implementation to use, for scripts that have several")
    return p.parse_args()


def node_of(user_id, order_id):
    """(data source index, actual t_order table) a row belongs on."""
    return user_id % 2, "t_order_%d" % (order_id % 2)


class Shards:
    """Direct access to the data sources, to see where rows really are."""

    def __init__(self, args):
        self.args = args

    def connect(self, i):
        host, port = self.args.direct
        return pymysql.connect(host=host, port=port, user=self.args.direct_user,
                               password=self.args.direct_password,
                               database=self.args.shard[i], autocommit=True)

    def query(self, i, sql, params=None):
        with self.connect(i) as conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall())

    def tables(self, i):
        return sorted(r[0] for r in self.query(i, "SHOW TABLES"))

    def orders(self, where="1=1", params=None):
        """{(ds, table): sorted [(order_id, user_id, amount, note)]} of every node."""
        out = {}
        for i in range(len(self.args.shard)):
            for t in ("t_order_0", "t_order_1"):
                rows = self.query(i, "SELECT order_id, user_id, amount, note FROM %s WHERE %s"
                                  " ORDER BY order_id" % (t, where), params)
                out[(i, t)] = [tuple(r) for r in rows]
        return out

    def located(self, order_id, user_id=None):
        """The nodes holding order `order_id` (of `user_id`, if given): one, if all is
        well."""
        if user_id is None:
            orders = self.orders("order_id = %s", (order_id,))
        else:
            orders = self.orders("order_id = %s AND user_id = %s", (order_id, user_id))
        found = []
        for node, rows in orders.items():
            found.extend((node, r) for r in rows)
        return found

    def assert_placed(self, order_id, user_id, amount=None, note=None):
        """Order (`order_id`, `user_id`) is on exactly the node its values choose, with
        these values."""
        found = self.located(order_id, user_id)
        want = node_of(user_id, order_id)
        assert len(found) == 1, "order %d: on %r, expected once on %r" % (order_id, found, want)
        node, row = found[0]
        assert node == want, "order %d (user %d) is on %r, expected %r" % (
            order_id, user_id, node, want)
        assert row[1] == user_id, "order %d: user %r, expected %r" % (order_id, row[1], user_id)
        if amount is not None:
            assert row[2] == amount, "order %d: amount %r, expected %r" % (order_id, row[2], amount)
        if note is not None:
            assert row[3] == note, "order %d: note %r, expected %r" % (order_id, row[3], note)

    def count_orders(self, where="1=1", params=None):
        return sum(len(rows) for rows in self.orders(where, params).values())


class Checks:
    """Runs named checks; a check fails by raising (AssertionError or a driver error)."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.passed = 0
        self.failed = 0

    def check(self, name, fn):
        try:
            fn()
        except Exception as exc:  # noqa: BLE001
            self.failed += 1
            print("FAIL %s: %s  %s: %s" % (self.prefix, name, type(exc).__name__, exc))
            for line in traceback.format_exc().splitlines()[-6:]:
                print("    " + line)
        else:
            self.passed += 1
            print("ok   %s: %s" % (self.prefix, name))
        sys.stdout.flush()

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed))
        sys.stdout.flush()
        return 1 if self.failed else 0


def eq(got, want, what):
    assert got == want, "%s: got %r, expected %r" % (what, got, want)
