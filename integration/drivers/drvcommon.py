"""Shared helpers for the Python differential driver checks.

Used by pymysql_check.py and mysql_connector_check.py (both put this
directory on sys.path simply by living next to it).

Each check is run once over the DIRECT connection (straight to the backend)
and once over the PROXY connection (through dbmesh); the two results are
normalised and compared structurally.  Any difference is printed as a
path-by-path diff and counted as a failure.
"""

import argparse
import datetime
import decimal
import os
import sys
import traceback

# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


def parse_hostport(value):
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError("expected HOST:PORT, got %r" % value)
    return host.strip("[]"), int(port)


def parse_args(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--direct", required=True, type=parse_hostport,
                   help="HOST:PORT of the backend server itself")
    p.add_argument("--direct-user", required=True)
    p.add_argument("--direct-password", default="")
    p.add_argument("--direct-db", required=True,
                   help="physical database on the backend")
    p.add_argument("--proxy", required=True, type=parse_hostport,
                   help="HOST:PORT of the proxy")
    p.add_argument("--proxy-user", required=True)
    p.add_argument("--proxy-password", default="")
    p.add_argument("--proxy-db", required=True,
                   help="logical database on the proxy (maps to --direct-db)")
    return p.parse_args()


def maybe_reexec_for_cext():
    """The C extension wheel links against a newer libssl than some distros
    ship; the wheel carries its own copy under mysql/vendor.  If the
    extension fails to load for that reason, re-exec once with the vendored
    libraries on LD_LIBRARY_PATH.  Purely best effort."""
    if os.environ.get("DRV_MYSQLCONN_REEXEC"):
        return
    try:
        import _mysql_connector  # noqa: F401
        return
    except ImportError as exc:
        if "libssl" not in str(exc) and "libcrypto" not in str(exc):
            return
    except Exception:  # noqa: BLE001
        return
    try:
        import mysql.connector as _m
    except ImportError:
        return
    vendor = os.path.join(os.path.dirname(os.path.dirname(_m.__file__)), "vendor")
    if not os.path.isdir(vendor):
        vendor = os.path.join(os.path.dirname(_m.__file__), "..", "vendor")
        if not os.path.isdir(vendor):
            return
    env = dict(os.environ)
    env["DRV_MYSQLCONN_REEXEC"] = "1"
    env["LD_LIBRARY_PATH"] = os.path.abspath(vendor) + (
        ":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


class Side:
    """Connection parameters for one side of the comparison."""

    def __init__(self, label, hostport, user, password, db, physical_db):
        self.label = label
        self.host, self.port = hostport
        self.user = user
        self.password = password
        self.db = db
        self.physical_db = physical_db

    def norm_schema(self, value):
        """The proxy may report the schema of a column either as the
        physical database name (pass-through) or as the logical name the
        client asked for.  Both are fine, so map the logical name onto the
        physical one before comparing."""
        if isinstance(value, bytes):
            if value == self.db.encode():
                return self.physical_db.encode()
            return value
        if value == self.db:
            return self.physical_db
        return value


def sides_from_args(args):
    direct = Side("direct", args.direct, args.direct_user,
                  args.direct_password, args.direct_db, args.direct_db)
    proxy = Side("proxy", args.proxy, args.proxy_user,
                 args.proxy_password, args.proxy_db, args.direct_db)
    return direct, proxy


def unique_suffix():
    return "%d_%s" % (os.getpid(), os.urandom(4).hex())


# --------------------------------------------------------------------------
# Fixture: the table every check reads
# --------------------------------------------------------------------------


def create_table_sql(table):
    return (
        "CREATE TABLE `%s` ("
        " id INT NOT NULL PRIMARY KEY,"
        " i INT,"
        " bu BIGINT UNSIGNED,"
        " d DECIMAL(10,2),"
        " dbl DOUBLE,"
        " vc VARCHAR(50) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci,"
        " tx TEXT,"
        " bl BLOB,"
        " dt DATE,"
        " dtm DATETIME(6),"
        " ts TIMESTAMP NULL DEFAULT NULL,"
        " js JSON"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"
        % table
    )


def create_ai_table_sql(table):
    return (
        "CREATE TABLE `%s` ("
        " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
        " note VARCHAR(20)"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4" % table
    )


# Literal SQL so that the fixture is byte-for-byte the same in every
# script (the node and shell scripts carry the same statement).
def insert_rows_sql(table):
    return (
        "INSERT INTO `%s` VALUES "
        "(1, 42, 18446744073709551615, -12345678.90, 3.141592653589793,"
        " 'héllo 👋', 'some text\\nsecond line', X'00FF0102037F80FE00',"
        " '2024-02-29', '2024-02-29 13:45:56.123456', '2024-02-29 13:45:56',"
        " '{\"a\": [1, 2, {\"b\": null}], \"e\": \"👋\"}'),"
        "(2, -7, 0, 0.01, -1.5e300, '', '', X'', '1970-01-01',"
        " '1000-01-01 00:00:00.000001', '2001-09-09 01:46:40', '[]'),"
        "(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),"
        "(4, 2147483647, 9223372036854775808, 99999999.99, 0,"
        " 'ASCII only', REPEAT('0123456789', 500), X'FF00FF00',"
        " '9999-12-31', '9999-12-31 23:59:59.999999', '2030-06-15 12:00:00',"
        " 'null')" % table
    )


# --------------------------------------------------------------------------
# Value normalisation and structural diff
# --------------------------------------------------------------------------


def norm_value(v):
    """Turn a driver value into something that compares exactly, keeps its
    Python type, and prints readably."""
    if v is None:
        return None
    if isinstance(v, (bytes, bytearray, memoryview)):
        return "%s(hex:%s)" % (type(v).__name__, bytes(v).hex())
    if isinstance(v, float):
        return "float(%r)" % v
    if isinstance(v, bool):
        return "bool(%r)" % v
    if isinstance(v, int):
        return "int(%d)" % v
    if isinstance(v, (decimal.Decimal, datetime.date, datetime.datetime,
                      datetime.time, datetime.timedelta)):
        return "%s(%s)" % (type(v).__name__, v)
    if isinstance(v, str):
        return "str(%r)" % v
    if isinstance(v, (list, tuple)):
        return [norm_value(x) for x in v]
    if isinstance(v, dict):
        return {str(k): norm_value(x) for k, x in v.items()}
    if isinstance(v, set):
        return sorted(norm_value(x) for x in v)
    return "%s(%r)" % (type(v).__name__, v)


def norm_rows(rows):
    return [norm_value(r) for r in (rows or [])]


def flatten(obj, prefix="", out=None):
    if out is None:
        out = {}
    if isinstance(obj, dict):
        if not obj:
            out[prefix or "."] = "{}"
        for k in obj:
            flatten(obj[k], "%s.%s" % (prefix, k) if prefix else str(k), out)
    elif isinstance(obj, list):
        if not obj:
            out[prefix or "."] = "[]"
        for i, x in enumerate(obj):
            flatten(x, "%s[%d]" % (prefix, i), out)
    else:
        out[prefix or "."] = obj
    return out


def short(v, width=300):
    r = repr(v)
    if len(r) > width:
        r = r[:width] + "...(%d chars)" % len(r)
    return r


def diff_lines(direct, proxy, limit=60):
    fd, fp = flatten(direct), flatten(proxy)
    keys = list(fd.keys()) + [k for k in fp if k not in fd]
    lines = []
    for k in keys:
        if k not in fp:
            lines.append("  %s: direct=%s  proxy=<missing>" % (k, short(fd[k])))
        elif k not in fd:
            lines.append("  %s: direct=<missing>  proxy=%s" % (k, short(fp[k])))
        elif fd[k] != fp[k] or type(fd[k]) is not type(fp[k]):
            lines.append("  %s: direct=%s  proxy=%s" % (k, short(fd[k]), short(fp[k])))
    if len(lines) > limit:
        more = len(lines) - limit
        lines = lines[:limit] + ["  ... and %d more differences" % more]
    return lines


# --------------------------------------------------------------------------
# Runner
# --------------------------------------------------------------------------


class Runner:
    def __init__(self, prefix):
        self.prefix = prefix
        self.passed = 0
        self.failed = 0

    def _run_side(self, fn, side):
        try:
            return fn(side)
        except Exception as exc:  # noqa: BLE001 - reported as a failure
            here = os.path.dirname(os.path.abspath(__file__))
            frames = [f for f in traceback.extract_tb(exc.__traceback__)
                      if os.path.abspath(f.filename).startswith(here)
                      and f.name != "_run_side"]
            return {"__exception__": "%s: %s" % (type(exc).__name__, exc),
                    "__traceback__": "".join(traceback.format_list(frames))}

    def check(self, name, fn, direct, proxy):
        """Run fn(side) for both sides and compare the results."""
        full = "%s: %s" % (self.prefix, name)
        rd = self._run_side(fn, direct)
        rp = self._run_side(fn, proxy)
        for label, r in (("direct", rd), ("proxy", rp)):
            if isinstance(r, dict) and "__exception__" in r:
                self.failed += 1
                print("FAIL %s  (unexpected exception on %s side)" % (full, label))
                print("  " + r["__exception__"])
                for line in r["__traceback__"].rstrip().splitlines():
                    print("    | " + line)
                sys.stdout.flush()
                return False
        if os.environ.get("DRV_CHECK_DUMP"):
            import pprint
            print("---- %s (direct result)" % full)
            pprint.pprint(rd, width=120)
        if rd == rp:
            self.passed += 1
            print("ok   %s" % full)
            sys.stdout.flush()
            return True
        self.failed += 1
        print("FAIL %s  (direct and proxy differ)" % full)
        for line in diff_lines(rd, rp):
            print(line)
        sys.stdout.flush()
        return False

    def preflight(self, connect_fn, proxy):
        """Connect to the proxy once; if that is impossible, report a single
        failure instead of one traceback per check."""
        try:
            conn = connect_fn(proxy)
        except Exception as exc:  # noqa: BLE001
            self.fail("connect to proxy %s:%d as %r db %r" % (proxy.host, proxy.port, proxy.user,
                                                             proxy.db),
                      "%s: %s" % (type(exc).__name__, exc))
            return False
        try:
            conn.close()
        except Exception:  # noqa: BLE001
            pass
        return True

    def fail(self, name, message):
        self.failed += 1
        print("FAIL %s: %s  %s" % (self.prefix, name, message))
        sys.stdout.flush()

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed))
        sys.stdout.flush()
        return 1 if self.failed else 0
