#!/usr/bin/env python3
"""TLS check: psycopg (libpq) logging in to dbmesh's PostgreSQL listener over TLS.

Usage:
  tls_psycopg.py --port PORT --db DB --ca CA_PEM --other-ca OTHER_CA_PEM
                 --user U --password P --secure-user U --secure-password P

`--user` is an ordinary account (scram-sha-256); `--secure-user` has
require_tls = true and postgres_auth = "password" (cleartext, acceptable over
TLS). The certificate dbmesh shows is signed by CA_PEM for localhost and
127.0.0.1; OTHER_CA_PEM signed nothing. Each check prints `ok   ...` or
`FAIL ...`; the script ends with `N passed, M failed` and exits 0 only if
nothing failed (2 on a usage error).
"""

import argparse
import sys

try:
    import psycopg
except ImportError:
    print("psycopg is not installed (pip install 'psycopg[binary]')")
    sys.exit(2)

p = argparse.ArgumentParser()
for a in ("port", "db", "ca", "other-ca", "user", "password", "secure-user", "secure-password"):
    p.add_argument("--" + a, required=True)
args = p.parse_args()

passed = failed = 0


def check(name, fn):
    global passed, failed
    try:
        detail = fn()
        passed += 1
        print(f"ok   {name}{': ' + detail if detail else ''}")
    except Exception as e:  # noqa: BLE001 - every failure is reported
        failed += 1
        print(f"FAIL {name}: {type(e).__name__}: {e}")


def connect(user, password, host="127.0.0.1", **ssl):
    return psycopg.connect(host=host, port=args.port, user=user, password=password,
                           dbname=args.db, connect_timeout=10, **ssl)


def tls_query(user, password, host="127.0.0.1", **ssl):
    with connect(user, password, host, **ssl) as conn:
        assert conn.pgconn.ssl_in_use, "not TLS"
        row = conn.execute("SELECT 40 + 2, current_database()").fetchone()
        assert row[0] == 42, row
        # Extended protocol with parameters over TLS too.
        assert conn.execute("SELECT %s::int * 2", (21,)).fetchone() == (42,)
        return "ssl_in_use"


def refused(user, password, needle, **ssl):
    """libpq reports no SQLSTATE for a failed login; the Rust test checks those."""
    try:
        connect(user, password, **ssl).close()
    except psycopg.OperationalError as e:
        msg = str(e)
        assert needle in msg, msg
        return msg.strip().splitlines()[-1]
    raise AssertionError("the login was not refused")


check("sslmode=require",
      lambda: tls_query(args.user, args.password, sslmode="require"))
check("sslmode=verify-full for 127.0.0.1",
      lambda: tls_query(args.user, args.password, sslmode="verify-full", sslrootcert=args.ca))
check("sslmode=verify-full for localhost",
      lambda: tls_query(args.user, args.password, host="localhost", sslmode="verify-full",
                        sslrootcert=args.ca))
check("require_tls user with cleartext password over TLS",
      lambda: tls_query(args.secure_user, args.secure_password, sslmode="require"))
check("require_tls user over plain TCP is refused",
      lambda: refused(args.secure_user, args.secure_password, "must connect with TLS",
                      sslmode="disable"))
check("wrong password over TLS is refused",
      lambda: refused(args.secure_user, "wrong", "password authentication failed",
                      sslmode="require"))
check("a certificate from another CA is not trusted",
      lambda: refused(args.user, args.password, "certificate verify failed",
                      sslmode="verify-full", sslrootcert=args.other_ca))


def plain_ok():
    with connect(args.user, args.password, sslmode="disable") as conn:
        assert not conn.pgconn.ssl_in_use
        assert conn.execute("SELECT 1").fetchone() == (1,)


check("ordinary user over plain TCP still works", plain_ok)

print(f"{passed} passed, {failed} failed")
sys.exit(0 if failed == 0 else 1)
