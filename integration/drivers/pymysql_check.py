#!/usr/bin/env python3
"""Differential check: PyMySQL (text protocol) direct vs. through the proxy.

Usage:
  pymysql_check.py --direct HOST:PORT --direct-user U --direct-password P
                   --direct-db PHYSICAL_DB --proxy HOST:PORT --proxy-user U
                   --proxy-password P --proxy-db LOGICAL_DB

Creates a uniquely named fixture table (and an AUTO_INCREMENT table) in
PHYSICAL_DB over the direct connection, runs every check over both
connections, compares values and column metadata, and drops the tables.
Exit 0 if everything matched, 1 on any difference, 2 on setup failure.
"""

import hashlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import drvcommon as dc  # noqa: E402

try:
    import pymysql
    from pymysql.constants import CLIENT
except ImportError:
    print("PyMySQL is not installed (pip install PyMySQL cryptography)")
    sys.exit(2)

SERVER_STATUS_IN_TRANS = 0x0001
SERVER_STATUS_AUTOCOMMIT = 0x0002
SERVER_MORE_RESULTS_EXISTS = 0x0008
STATUS_MASK = SERVER_STATUS_IN_TRANS | SERVER_STATUS_AUTOCOMMIT | SERVER_MORE_RESULTS_EXISTS


def connect(side, multi=False, autocommit=True, cursorclass=None):
    kw = dict(host=side.host, port=side.port, user=side.user,
              password=side.password, database=side.db, charset="utf8mb4",
              autocommit=autocommit, connect_timeout=10, read_timeout=60,
              write_timeout=60)
    if multi:
        kw["client_flag"] = CLIENT.MULTI_STATEMENTS
    if cursorclass is not None:
        kw["cursorclass"] = cursorclass
    return pymysql.connect(**kw)


def result_meta(cur, side):
    """Everything PyMySQL exposes about the current result."""
    out = {}
    out["description"] = ([list(d) for d in cur.description]
                          if cur.description is not None else None)
    res = getattr(cur, "_result", None)
    if res is not None:
        fields = []
        for f in getattr(res, "fields", None) or []:
            fields.append({
                "catalog": getattr(f, "catalog", None),
                "db": side.norm_schema(getattr(f, "db", None)),
                "table_name": getattr(f, "table_name", None),
                "org_table": getattr(f, "org_table", None),
                "name": getattr(f, "name", None),
                "org_name": getattr(f, "org_name", None),
                "charsetnr": getattr(f, "charsetnr", None),
                "length": getattr(f, "length", None),
                "type_code": getattr(f, "type_code", None),
                "flags": getattr(f, "flags", None),
                "scale": getattr(f, "scale", None),
            })
        out["fields"] = fields
        out["field_count"] = getattr(res, "field_count", None)
        out["warning_count"] = getattr(res, "warning_count", None)
        out["has_next"] = bool(getattr(res, "has_next", False))
        st = getattr(res, "server_status", None)
        out["server_status_masked"] = None if st is None else st & STATUS_MASK
    out["rowcount"] = cur.rowcount
    return out


def query(cur, side, sql, params=None):
    cur.execute(sql, params)
    rows = cur.fetchall()
    return {"rows": dc.norm_rows(rows), "meta": result_meta(cur, side)}


def in_trans(conn):
    return bool(conn.server_status & SERVER_STATUS_IN_TRANS)


def err_of(exc):
    args = list(exc.args)
    return {"class": type(exc).__name__, "args": dc.norm_value(args)}


def main():
    args = dc.parse_args("PyMySQL differential check (direct vs proxy)")
    direct, proxy = dc.sides_from_args(args)
    suffix = dc.unique_suffix()
    T = "drv_pymysql_" + suffix
    AI = "drv_pymysql_ai_" + suffix
    run = dc.Runner("pymysql")

    try:
        setup = connect(direct)
    except Exception as exc:
        print("setup: cannot connect to direct %s:%d: %s" % (direct.host, direct.port, exc))
        return 2

    try:
        with setup.cursor() as c:
            c.execute(dc.create_table_sql(T))
            c.execute(dc.create_ai_table_sql(AI))
            c.execute(dc.insert_rows_sql(T))

        def direct_count(where):
            with connect(direct) as dconn, dconn.cursor() as dcur:
                dcur.execute("SELECT COUNT(*) FROM `%s` WHERE %s" % (T, where))
                return dcur.fetchone()[0]

        if not run.preflight(connect, proxy):
            return run.finish()

        # ---------------------------------------------------------------
        def select_all(side):
            with connect(side) as conn, conn.cursor() as cur:
                return query(cur, side, "SELECT * FROM `%s` ORDER BY id" % T)
        run.check("SELECT * values+metadata", select_all, direct, proxy)

        def select_exprs(side):
            with connect(side) as conn, conn.cursor() as cur:
                return query(cur, side,
                             "SELECT 1 AS one, 'x' AS s, NULL AS n, 1.50 AS dec_lit,"
                             " 2.5e0 AS dbl_lit, X'00FF' AS bin_lit, 18446744073709551615 AS big,"
                             " id + 1 AS id1, CAST(bu AS CHAR) AS bu_s, UPPER(vc) AS up,"
                             " LENGTH(bl) AS bl_len, JSON_EXTRACT(js, '$.e') AS js_e"
                             " FROM `%s` ORDER BY id" % T)
        run.check("expression columns values+metadata", select_exprs, direct, proxy)

        def params(side):
            with connect(side) as conn, conn.cursor() as cur:
                r1 = query(cur, side, "SELECT id, vc FROM `%s` WHERE vc = %%s" % T,
                           ("héllo 👋",))
                r2 = query(cur, side, "SELECT %s AS s, %s AS b, %s AS n, %s AS i, %s AS f",
                           ("héllo 👋", b"\x00\xff'\\", None, -5, 0.25))
                return {"by_emoji": r1, "echo": r2}
        run.check("escaped parameters (emoji, binary, NULL)", params, direct, proxy)

        # ---------------------------------------------------------------
        def multi(side):
            with connect(side, multi=True) as conn, conn.cursor() as cur:
                out = {}
                cur.execute("SELECT 1; SELECT 2")
                sets = [{"rows": dc.norm_rows(cur.fetchall()), "meta": result_meta(cur, side)}]
                while cur.nextset():
                    sets.append({"rows": dc.norm_rows(cur.fetchall()),
                                 "meta": result_meta(cur, side)})
                out["select1_select2"] = sets

                cur.execute("SELECT id, vc FROM `%s` WHERE id = 1; DO 1;"
                            " SELECT 'x' AS b, 2 AS c" % T)
                sets = [{"rows": dc.norm_rows(cur.fetchall()), "meta": result_meta(cur, side)}]
                while cur.nextset():
                    sets.append({"rows": dc.norm_rows(cur.fetchall()),
                                 "meta": result_meta(cur, side)})
                out["with_ok_packet_between"] = sets

                # an error in the second statement: first result is delivered,
                # nextset() raises, and the connection stays usable
                cur.execute("SELECT 10 AS first; SELEC 2")
                first = dc.norm_rows(cur.fetchall())
                try:
                    cur.nextset()
                    second = "no error raised"
                except pymysql.err.MySQLError as exc:
                    second = err_of(exc)
                out["error_in_second"] = {"first": first, "second": second,
                                          "after": query(cur, side, "SELECT 3 AS after")}
                return out
        run.check("multi-statements (nextset)", multi, direct, proxy)

        # ---------------------------------------------------------------
        def errors(side):
            with connect(side) as conn, conn.cursor() as cur:
                out = {}
                for label, sql in (("syntax", "SELEC 1"),
                                   ("unknown_column", "SELECT nosuchcol FROM `%s`" % T),
                                   ("duplicate_key", "INSERT INTO `%s` (id) VALUES (1)" % T)):
                    try:
                        cur.execute(sql)
                        out[label] = "no error raised"
                    except pymysql.err.MySQLError as exc:
                        out[label] = err_of(exc)
                    out[label + "_then_good"] = query(cur, side, "SELECT 42 AS answer")
                return out
        run.check("errors (1064/1054/1062) then good query on same connection",
                  errors, direct, proxy)

        # ---------------------------------------------------------------
        def rollback(side):
            with connect(side) as conn, conn.cursor() as cur:
                out = {}
                cur.execute("BEGIN")
                out["in_trans_after_begin"] = in_trans(conn)
                cur.execute("INSERT INTO `%s` (id, i, vc) VALUES (900, 9, 'tx')" % T)
                out["insert_rowcount"] = cur.rowcount
                out["inside"] = query(cur, side, "SELECT id, i, vc FROM `%s` WHERE id = 900" % T)
                out["direct_sees_uncommitted"] = direct_count("id = 900")
                cur.execute("ROLLBACK")
                out["in_trans_after_rollback"] = in_trans(conn)
                out["after_same_conn"] = query(cur, side, "SELECT COUNT(*) AS n FROM `%s` WHERE id = 900" % T)
                out["after_direct"] = direct_count("id = 900")

                cur.execute("BEGIN")
                cur.execute("INSERT INTO `%s` (id, i) VALUES (901, 1)" % T)
                cur.execute("COMMIT")
                out["in_trans_after_commit"] = in_trans(conn)
                out["committed_direct"] = direct_count("id = 901")
                cur.execute("DELETE FROM `%s` WHERE id = 901" % T)
                out["delete_rowcount"] = cur.rowcount
                return out
        run.check("BEGIN/INSERT/ROLLBACK (and COMMIT)", rollback, direct, proxy)

        def autocommit(side):
            with connect(side) as conn, conn.cursor() as cur:
                out = {"initial": query(cur, side, "SELECT @@autocommit"),
                       "initial_api": conn.get_autocommit()}
                cur.execute("SET autocommit=0")
                out["off"] = query(cur, side, "SELECT @@autocommit")
                out["off_api"] = conn.get_autocommit()
                cur.execute("INSERT INTO `%s` (id, i) VALUES (902, 2)" % T)
                out["in_trans_implicit"] = in_trans(conn)
                out["direct_sees_uncommitted"] = direct_count("id = 902")
                conn.rollback()
                out["after_rollback_direct"] = direct_count("id = 902")
                cur.execute("SET autocommit=1")
                out["on"] = query(cur, side, "SELECT @@autocommit")
                out["on_api"] = conn.get_autocommit()
                conn.autocommit(False)
                out["api_off"] = query(cur, side, "SELECT @@autocommit")
                conn.autocommit(True)
                out["api_on"] = query(cur, side, "SELECT @@autocommit")
                return out
        run.check("SET autocommit=0 / SELECT @@autocommit / back to 1", autocommit, direct, proxy)

        # ---------------------------------------------------------------
        CTE = ("WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq"
               " WHERE n < 1000) ")

        def big_result(side):
            out = {}
            with connect(side) as conn, conn.cursor() as cur:
                r = query(cur, side, CTE + "SELECT n, n * n AS sq, REPEAT('x', MOD(n, 97)) AS pad FROM seq")
                out["count"] = len(r["rows"])
                out["rows_sha256"] = hashlib.sha256(repr(r["rows"]).encode()).hexdigest()
                out["meta"] = r["meta"]
                out["agg"] = query(cur, side, CTE + "SELECT COUNT(*), SUM(n) FROM seq")
            with connect(side, cursorclass=pymysql.cursors.SSCursor) as conn, conn.cursor() as cur:
                cur.execute(CTE + "SELECT n, n * n AS sq, REPEAT('x', MOD(n, 97)) AS pad FROM seq")
                n = 0
                s = 0
                for row in cur:
                    n += 1
                    s += row[0]
                out["unbuffered"] = {"count": n, "sum": s}
            return out
        run.check("1000-row result (buffered + unbuffered) count/sum/rows", big_result, direct, proxy)

        def large_values(side):
            with connect(side) as conn, conn.cursor() as cur:
                cur.execute("SELECT REPEAT('ab', 600000) AS big_s,"
                            " UNHEX(REPEAT('00FF', 300000)) AS big_b")
                row = cur.fetchone()
                return {"meta": result_meta(cur, side),
                        "values": [{"type": type(v).__name__, "len": len(v),
                                    "sha256": hashlib.sha256(
                                        v.encode() if isinstance(v, str) else v).hexdigest()}
                                   for v in row]}
        run.check("large values (1.2 MB string, 600 KB blob)", large_values, direct, proxy)

        # ---------------------------------------------------------------
        def lastrowid(side):
            out = {}
            with connect(side) as conn, conn.cursor() as cur:
                cur.execute("INSERT INTO `%s` (note) VALUES ('one')" % AI)
                lid = cur.lastrowid
                out["rowcount"] = cur.rowcount
                out["lastrowid_type"] = type(lid).__name__
                out["lastrowid_positive"] = isinstance(lid, int) and lid > 0
                cur.execute("SELECT LAST_INSERT_ID()")
                out["equals_last_insert_id"] = cur.fetchone()[0] == lid
                cur.execute("INSERT INTO `%s` (note) VALUES ('a'), ('b'), ('c')" % AI)
                lid2 = cur.lastrowid
                out["multi_rowcount"] = cur.rowcount
                out["multi_lastrowid_is_first_new"] = isinstance(lid2, int) and lid2 > lid
                cur.execute("UPDATE `%s` SET note = 'z' WHERE id = %%s" % AI, (lid,))
                out["update_rowcount"] = cur.rowcount
                out["update_lastrowid"] = cur.lastrowid
            with connect(direct) as dconn, dconn.cursor() as dcur:
                dcur.execute("SELECT note FROM `%s` WHERE id = %%s" % AI, (lid,))
                out["row_seen_direct"] = dc.norm_rows(dcur.fetchall())
                dcur.execute("SELECT note FROM `%s` WHERE id >= %%s ORDER BY id" % AI, (lid2,))
                out["multi_rows_seen_direct"] = dc.norm_rows(dcur.fetchall())
            return out
        run.check("lastrowid after INSERT into AUTO_INCREMENT table", lastrowid, direct, proxy)

        # ---------------------------------------------------------------
        def warnings(side):
            with connect(side) as conn, conn.cursor() as cur:
                r = query(cur, side, "SELECT CAST('abc' AS SIGNED) AS v")
                w = query(cur, side, "SHOW WARNINGS")
                return {"select": r, "show_warnings": w}
        run.check("warnings count + SHOW WARNINGS", warnings, direct, proxy)

        def conn_ops(side):
            with connect(side) as conn, conn.cursor() as cur:
                out = {}
                cur.execute("SELECT CONNECTION_ID() AS cid")
                cid = cur.fetchone()[0]
                # connection ids legitimately differ: compare the kind only
                out["connection_id"] = ("<conn-id>" if isinstance(cid, int) and cid > 0
                                        else dc.norm_value(cid))
                out["connection_id_meta"] = result_meta(cur, side)
                conn.ping(reconnect=False)
                out["ping"] = "ok"
                conn.select_db(side.db)
                cur.execute("SELECT DATABASE()")
                out["database"] = side.norm_schema(cur.fetchone()[0])
                out["after_select_db"] = query(cur, side, "SELECT COUNT(*) FROM `%s`" % T)
                return out
        run.check("CONNECTION_ID()/ping/select_db", conn_ops, direct, proxy)

    finally:
        try:
            with connect(direct) as conn, conn.cursor() as cur:
                cur.execute("DROP TABLE IF EXISTS `%s`" % T)
                cur.execute("DROP TABLE IF EXISTS `%s`" % AI)
        except Exception as exc:  # noqa: BLE001
            print("warning: cleanup failed: %s" % exc)
        try:
            setup.close()
        except Exception:  # noqa: BLE001
            pass

    return run.finish()


if __name__ == "__main__":
    sys.exit(main())
