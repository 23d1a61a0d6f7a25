#!/usr/bin/env python3
"""Differential check: mysql-connector-python direct vs. through the proxy.

Usage:
  mysql_connector_check.py --direct HOST:PORT --direct-user U --direct-password P
                           --direct-db PHYSICAL_DB --proxy HOST:PORT --proxy-user U
                           --proxy-password P --proxy-db LOGICAL_DB

Runs every check with the pure-Python implementation (use_pure=True) and,
when it can be loaded, again with the C extension (use_pure=False).  Most
checks use server-side prepared statements (cursor(prepared=True), i.e.
COM_STMT_PREPARE / COM_STMT_EXECUTE and the binary result protocol).
Exit 0 if everything matched, 1 on any difference, 2 on setup failure.
"""

import datetime
import decimal
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import drvcommon as dc  # noqa: E402

dc.maybe_reexec_for_cext()

try:
    import mysql.connector
    from mysql.connector import errors as mc_errors
except ImportError:
    print("mysql-connector-python is not installed (pip install mysql-connector-python)")
    sys.exit(2)


def cext_available():
    try:
        import _mysql_connector  # noqa: F401
        from mysql.connector import connection_cext  # noqa: F401
        return True
    except Exception:  # noqa: BLE001
        return False


def connect(side, use_pure, autocommit=True):
    return mysql.connector.connect(
        host=side.host, port=side.port, user=side.user, password=side.password,
        database=side.db, use_pure=use_pure, charset="utf8mb4",
        autocommit=autocommit, connection_timeout=10)


def description(cur):
    d = cur.description
    if d is None:
        return None
    return [list(col) for col in d]


def prepared_info(cur):
    """Metadata from the COM_STMT_PREPARE response, where exposed (pure)."""
    p = getattr(cur, "_prepared", None)
    if not isinstance(p, dict):
        return None
    return {
        "num_columns": p.get("num_columns"),
        "num_params": p.get("num_params"),
        "warning_count": p.get("warning_count"),
        "columns": [list(c) for c in (p.get("columns") or [])],
        "parameters": [list(c) for c in (p.get("parameters") or [])],
    }


def run_query(cur, sql, params=None, prepared=False):
    if params is None:
        cur.execute(sql)
    else:
        cur.execute(sql, params)
    rows = cur.fetchall() if cur.with_rows else None
    out = {
        "rows": dc.norm_rows(rows) if rows is not None else None,
        "description": description(cur),
        "column_names": list(cur.column_names) if cur.with_rows else None,
        "rowcount": cur.rowcount,
        "warning_count": cur.warning_count,
    }
    if prepared:
        out["prepare_response"] = prepared_info(cur)
    return out


def err_of(exc):
    return {"class": type(exc).__name__,
            "errno": getattr(exc, "errno", None),
            "sqlstate": getattr(exc, "sqlstate", None),
            "msg": getattr(exc, "msg", None)}


ALL_TYPES_ROW = (
    201, -42, 18446744073709551615, decimal.Decimal("-1234.56"), 2.718281828459045,
    "héllo 👋 prepared", "long text " * 100, b"\x00\xff\x00binary\xfe\x00",
    datetime.date(2023, 12, 31), datetime.datetime(2023, 12, 31, 23, 59, 58, 987654),
    datetime.datetime(2023, 6, 1, 12, 0, 1), '{"k": "👋", "n": [1, 2]}',
)
NULL_ROW = (202,) + (None,) * 11
# The C extension cannot bind an unsigned 64-bit int above 2**63-1 (it
# raises and drops the connection), so it gets the largest signed value.
ALL_TYPES_ROW_CEXT = ALL_TYPES_ROW[:2] + (9223372036854775807,) + ALL_TYPES_ROW[3:]


def make_checks(run, impl, use_pure, direct, proxy, T, AI):
    def direct_rows(sql):
        conn = connect(direct, use_pure=True)
        try:
            cur = conn.cursor()
            cur.execute(sql)
            return dc.norm_rows(cur.fetchall())
        finally:
            conn.close()

    def with_conn(fn, autocommit=True):
        def wrapped(side):
            conn = connect(side, use_pure, autocommit=autocommit)
            try:
                return fn(side, conn)
            finally:
                conn.close()
        return wrapped

    # -------------------------------------------------------------------
    def prepared_select(side, conn):
        cur = conn.cursor(prepared=True)
        out = {}
        for i in (1, 2, 3, 4):
            out["id=%d" % i] = run_query(cur, "SELECT * FROM `%s` WHERE id = %%s" % T, (i,),
                                         prepared=True)
        return out
    run.check("%s: prepared SELECT * WHERE id = %%s values+metadata" % impl,
              with_conn(prepared_select), direct, proxy)

    def text_select(side, conn):
        out = {"plain": run_query(conn.cursor(), "SELECT * FROM `%s` ORDER BY id" % T)}
        out["raw"] = run_query(conn.cursor(raw=True), "SELECT * FROM `%s` ORDER BY id" % T)
        out["params"] = run_query(conn.cursor(),
                                  "SELECT id, vc FROM `%s` WHERE vc = %%s OR id = %%s" % T,
                                  ("héllo 👋", 4))
        return out
    run.check("%s: text-protocol SELECT * values+metadata (plain and raw)" % impl,
              with_conn(text_select), direct, proxy)

    def reexecute(side, conn):
        c1 = conn.cursor(prepared=True)
        c2 = conn.cursor(prepared=True)
        out = []
        q1 = "SELECT id, i, vc, dtm FROM `%s` WHERE id = %%s" % T
        q2 = "SELECT id, bu, d FROM `%s` WHERE id BETWEEN %%s AND %%s ORDER BY id" % T
        # two live statements on one connection, interleaved
        for p in (3, 1, 999, 2, 4, 1):
            out.append(run_query(c1, q1, (p,), prepared=True))
            out.append(run_query(c2, q2, (p, p + 1), prepared=True))
        # and a prepared statement with a string and a NULL parameter
        out.append(run_query(c1, "SELECT id FROM `%s` WHERE vc = %%s OR vc <=> %%s ORDER BY id" % T,
                             ("héllo 👋", None), prepared=True))
        return out
    run.check("%s: prepare once, execute many (interleaved statements, varying params)" % impl,
              with_conn(reexecute), direct, proxy)

    row = ALL_TYPES_ROW if use_pure else ALL_TYPES_ROW_CEXT

    def insert_all_types(side, conn):
        cur = conn.cursor(prepared=True)
        out = {}
        ins = "INSERT INTO `%s` VALUES (%s)" % (T, ", ".join(["%s"] * 12))
        try:
            cur.execute(ins, row)
            out["insert_rowcount"] = cur.rowcount
            cur.execute(ins, NULL_ROW)
            out["insert_null_rowcount"] = cur.rowcount
            sel = "SELECT * FROM `%s` WHERE id = %%s" % T
            back = run_query(cur, sel, (201,), prepared=True)
            out["read_back_prepared"] = back
            out["read_back_prepared_null"] = run_query(cur, sel, (202,), prepared=True)
            out["read_back_text"] = run_query(
                conn.cursor(), "SELECT * FROM `%s` WHERE id IN (201, 202) ORDER BY id" % T)
            out["read_back_via_direct"] = direct_rows(
                "SELECT * FROM `%s` WHERE id IN (201, 202) ORDER BY id" % T)
            # which values survived the round trip unchanged (informative;
            # compared between the two sides like everything else)
            got = back["rows"][0] if back["rows"] else []
            out["roundtrip_equal"] = [g == dc.norm_value(e) for g, e in zip(got, row)]
        finally:
            conn.cursor().execute("DELETE FROM `%s` WHERE id IN (201, 202)" % T)
        return out
    run.check("%s: prepared INSERT with params of every type (incl. NULL, bytes, Decimal, "
              "datetime(6)) and read back" % impl, with_conn(insert_all_types), direct, proxy)

    def errors(side, conn):
        out = {}
        cur = conn.cursor()
        try:
            cur.execute("SELEC 1")
            out["text_syntax"] = "no error raised"
        except mc_errors.Error as exc:
            out["text_syntax"] = err_of(exc)
        out["text_then_good"] = run_query(conn.cursor(), "SELECT 42 AS answer")

        pcur = conn.cursor(prepared=True)
        try:
            pcur.execute("SELEC %s", (1,))
            out["prepare_syntax"] = "no error raised"
        except mc_errors.Error as exc:
            out["prepare_syntax"] = err_of(exc)
        pcur = conn.cursor(prepared=True)
        out["prepare_then_good"] = run_query(pcur, "SELECT %s + 1 AS answer", (41,), prepared=True)

        try:
            pcur.execute("INSERT INTO `%s` (id) VALUES (%%s)" % T, (1,))
            out["execute_duplicate"] = "no error raised"
        except mc_errors.Error as exc:
            out["execute_duplicate"] = err_of(exc)
        pcur = conn.cursor(prepared=True)
        out["execute_then_good"] = run_query(pcur, "SELECT id FROM `%s` WHERE id = %%s" % T, (2,),
                                             prepared=True)
        return out
    run.check("%s: syntax error (text and prepare) and execute error, then good query" % impl,
              with_conn(errors), direct, proxy)

    def transaction(side, conn):
        out = {}
        conn.start_transaction()
        out["in_transaction_after_start"] = conn.in_transaction
        cur = conn.cursor(prepared=True)
        cur.execute("INSERT INTO `%s` (id, vc) VALUES (%%s, %%s)" % T, (950, "tx"))
        out["inside"] = run_query(cur, "SELECT id, vc FROM `%s` WHERE id = %%s" % T, (950,),
                                  prepared=True)
        out["direct_sees_uncommitted"] = direct_rows("SELECT COUNT(*) FROM `%s` WHERE id = 950" % T)
        conn.rollback()
        out["in_transaction_after_rollback"] = conn.in_transaction
        out["after_same_conn"] = run_query(conn.cursor(),
                                           "SELECT COUNT(*) FROM `%s` WHERE id = 950" % T)
        out["after_direct"] = direct_rows("SELECT COUNT(*) FROM `%s` WHERE id = 950" % T)
        return out
    run.check("%s: start_transaction/prepared INSERT/rollback" % impl,
              with_conn(transaction, autocommit=False), direct, proxy)

    def lastrowid(side, conn):
        out = {}
        for label, cur in (("text", conn.cursor()), ("prepared", conn.cursor(prepared=True))):
            cur.execute("INSERT INTO `%s` (note) VALUES (%%s)" % AI, (label,))
            lid = cur.lastrowid
            out[label] = {
                "rowcount": cur.rowcount,
                "type": type(lid).__name__,
                "positive": isinstance(lid, int) and lid > 0,
                "row_via_direct": direct_rows("SELECT note FROM `%s` WHERE id = %d" % (AI, lid))
                if isinstance(lid, int) else None,
            }
        return out
    run.check("%s: lastrowid after INSERT (text and prepared)" % impl,
              with_conn(lastrowid), direct, proxy)


def main():
    args = dc.parse_args("mysql-connector-python differential check (direct vs proxy)")
    direct, proxy = dc.sides_from_args(args)
    suffix = dc.unique_suffix()
    T = "drv_myconn_" + suffix
    AI = "drv_myconn_ai_" + suffix
    run = dc.Runner("mysql-connector")

    try:
        setup = connect(direct, use_pure=True)
    except Exception as exc:  # noqa: BLE001
        print("setup: cannot connect to direct %s:%d: %s" % (direct.host, direct.port, exc))
        return 2

    try:
        cur = setup.cursor()
        cur.execute(dc.create_table_sql(T))
        cur.execute(dc.create_ai_table_sql(AI))
        cur.execute(dc.insert_rows_sql(T))

        if not run.preflight(lambda side: connect(side, use_pure=True), proxy):
            return run.finish()
        make_checks(run, "pure", True, direct, proxy, T, AI)
        if cext_available():
            make_checks(run, "cext", False, direct, proxy, T, AI)
        else:
            print("note: mysql-connector C extension not available; only use_pure=True was run")
    finally:
        try:
            conn = connect(direct, use_pure=True)
            cur = conn.cursor()
            cur.execute("DROP TABLE IF EXISTS `%s`" % T)
            cur.execute("DROP TABLE IF EXISTS `%s`" % AI)
            conn.close()
        except Exception as exc:  # noqa: BLE001
            print("warning: cleanup failed: %s" % exc)
        try:
            setup.close()
        except Exception:  # noqa: BLE001
            pass

    return run.finish()


if __name__ == "__main__":
    sys.exit(main())
