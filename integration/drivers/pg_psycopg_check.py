"""psycopg 3 through dbmesh versus a direct PostgreSQL connection.

Same arguments as the MySQL checks (see README.md). Every check runs on both
connections; values, cursor.description, SQLSTATEs and transaction states must
be equal. Covers plain queries, prepare=True (named server-side statements),
binary results, a server-side (named) cursor, pipeline mode, COPY, notices,
errors and cancellation.
"""

import sys
import threading
import time

import psycopg
from psycopg import pq

import drvcommon

FIXTURE_COLUMNS = (
    "id int4 PRIMARY KEY, s int2, i int4, b int8, n numeric(20,6), f float8, t text,"
    " by bytea, ok bool, d date, ts timestamp(6), tz timestamptz, u uuid, j jsonb, a int4[]"
)

# The same rows the node and psql checks use.
FIXTURE_ROWS = (
    "(1, -32768, 2147483647, -9223372036854775808, -12345678901234.123456,"
    " 3.141592653589793, 'héllo 👋 ünïcødé', '\\x00ff0102037f80fe00', true, '2024-02-29',"
    " '2024-02-29 13:45:56.123456', '2024-02-29 13:45:56.654321+05:30',"
    " 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{\"a\": [1, 2, {\"b\": null}], \"e\": \"👋\"}',"
    " '{1,NULL,-3}'),"
    " (2, 0, 0, 0, 0, 'NaN', '', '\\x', false, '1970-01-01', '1970-01-01 00:00:00',"
    " '2000-01-01 00:00:00+00', '00000000-0000-0000-0000-000000000000', '[]', '{}'),"
    " (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"
)


def connect(side, **kw):
    return psycopg.connect(host=side.host, port=side.port, user=side.user,
                           password=side.password or None, dbname=side.db,
                           connect_timeout=10, **kw)


def described(cur):
    return [[d.name, d.type_code, d.display_size, d.internal_size, d.precision, d.scale]
            for d in (cur.description or [])]


def tx_status(conn):
    return pq.TransactionStatus(conn.info.transaction_status).name


def main():
    args = drvcommon.parse_args(__doc__)
    direct, proxy = drvcommon.sides_from_args(args)
    run = drvcommon.Runner("psycopg")
    if not run.preflight(connect, proxy):
        return run.finish()
    table = "drv_pg_" + drvcommon.unique_suffix()
    with connect(direct, autocommit=True) as c:
        c.execute("CREATE TABLE %s (%s)" % (table, FIXTURE_COLUMNS))
        c.execute("INSERT INTO %s VALUES %s" % (table, FIXTURE_ROWS))
    select = "SELECT * FROM %s ORDER BY id" % table
    try:
        checks(run, direct, proxy, table, select)
    finally:
        with connect(direct, autocommit=True) as c:
            c.execute("DROP TABLE IF EXISTS %s" % table)
    return run.finish()


def checks(run, direct, proxy, table, select):
    def plain(side):
        with connect(side) as c:
            cur = c.execute(select)
            return {"rows": drvcommon.norm_rows(cur.fetchall()), "desc": described(cur),
                    "status": cur.statusmessage}
    run.check("text results and description", plain, direct, proxy)

    def binary(side):
        with connect(side) as c:
            cur = c.cursor(binary=True)
            cur.execute(select + " LIMIT %s", [5])
            return {"rows": drvcommon.norm_rows(cur.fetchall()), "desc": described(cur)}
    run.check("binary results", binary, direct, proxy)

    def prepared(side):
        with connect(side, prepare_threshold=None) as c:
            out = []
            for i in (1, 2, 3, 1):
                sql = "SELECT t, a, j, %%s::int8 * 2 AS dbl FROM %s WHERE id = %%s" % table
                cur = c.execute(sql, [i, i], prepare=True)
                out.append(drvcommon.norm_rows(cur.fetchall()))
            names = c.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0]
            return {"results": out, "server_statements": names}
    run.check("prepare=True named statements", prepared, direct, proxy)

    def server_cursor(side):
        with connect(side) as c:
            with c.cursor(name="big_cursor") as cur:
                cur.itersize = 2
                cur.execute("SELECT g, repeat('y', g % 7) FROM generate_series(1, 25) g")
                first = cur.fetchmany(3)
                rest = list(cur)
                desc = described(cur)
            return {"first": drvcommon.norm_rows(first), "rest": drvcommon.norm_rows(rest),
                    "desc": desc, "tx": tx_status(c)}
    run.check("server-side cursor", server_cursor, direct, proxy)

    def pipeline(side):
        with connect(side) as c:
            with c.pipeline():
                curs = [c.execute("SELECT %s::int4 + 1, %s::text", [i, "p%d" % i])
                        for i in range(10)]
            rows = [drvcommon.norm_rows(cur.fetchall()) for cur in curs]
            c.rollback()
            return rows
    run.check("pipeline mode", pipeline, direct, proxy)

    def copy(side):
        with connect(side) as c:
            c.execute("CREATE TEMP TABLE cp (id int, v text)")
            with c.cursor().copy("COPY cp FROM STDIN") as cp:
                for i in range(2000):
                    cp.write_row((i, "v%d ü" % i))
            with c.cursor().copy("COPY (SELECT * FROM cp ORDER BY id) TO STDOUT") as cp:
                data = b"".join(bytes(b) for b in cp)
            return {"len": len(data), "tail": data[-40:].decode(), "count":
                    c.execute("SELECT count(*), sum(id) FROM cp").fetchone()}
    run.check("COPY in and out", copy, direct, proxy)

    def notices(side):
        got = []
        with connect(side, autocommit=True) as c:
            c.add_notice_handler(lambda d: got.append((d.severity, d.sqlstate, d.message_primary)))
            c.execute("DO $$ BEGIN RAISE NOTICE 'hello %', 42; RAISE WARNING 'careful'; END $$")
        return got
    run.check("notices", notices, direct, proxy)

    def errors(side):
        out = []
        with connect(side) as c:
            for sql in ("SELEKT 1", "SELECT * FROM missing_table", "SELECT 1/0"):
                try:
                    c.execute(sql)
                except psycopg.Error as e:
                    out.append((type(e).__name__, e.sqlstate, e.diag.message_primary,
                                tx_status(c)))
                c.rollback()
            c.execute("SELECT 1")
            try:
                c.execute("SELECT 'x'::int")
            except psycopg.Error as e:
                out.append((e.sqlstate, tx_status(c)))
            try:
                c.execute("SELECT 1")
            except psycopg.Error as e:
                out.append((e.sqlstate, tx_status(c)))
            c.rollback()
            out.append(("after rollback", tx_status(c), c.execute("SELECT 2").fetchone()))
        return out
    run.check("errors and transaction states", errors, direct, proxy)

    def cancel(side):
        with connect(side) as c:
            threading.Timer(0.5, c.cancel_safe).start()
            start = time.monotonic()
            try:
                c.execute("SELECT pg_sleep(10)")
                return "not cancelled"
            except psycopg.Error as e:
                elapsed = time.monotonic() - start
                c.rollback()
                return {"error": type(e).__name__, "sqlstate": e.sqlstate,
                        "prompt": elapsed < 5, "after": c.execute("SELECT 3").fetchone()}
    run.check("cancel a running query", cancel, direct, proxy)

    def parameters(side):
        with connect(side) as c:
            return {k: c.info.parameter_status(k) for k in (
                "server_version", "server_encoding", "client_encoding", "DateStyle",
                "TimeZone", "integer_datetimes", "standard_conforming_strings")}
    run.check("parameter status", parameters, direct, proxy)


if __name__ == "__main__":
    sys.exit(main())
