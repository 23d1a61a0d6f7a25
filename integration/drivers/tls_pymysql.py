#!/usr/bin/env python3
"""TLS check: PyMySQL logging in to dbmesh's MySQL listener over TLS.

Usage:
  tls_pymysql.py --port PORT --db DB --ca CA_PEM --other-ca OTHER_CA_PEM
                 --user U --password P --secure-user U --secure-password P

`--user` is an ordinary account (mysql_native_password); `--secure-user` has
require_tls = true and caching_sha2_password. The certificate dbmesh shows is
signed by CA_PEM for 127.0.0.1; OTHER_CA_PEM signed nothing. Each check prints
`ok   ...` or `FAIL ...`; the script ends with `N passed, M failed` and exits 0
only if nothing failed (2 on a usage error).
"""

import argparse
import ssl
import sys

try:
    import pymysql
except ImportError:
    print("PyMySQL is not installed (pip install PyMySQL cryptography)")
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


def connect(user, password, ssl_opts):
    """ssl_opts None = plain TCP (PyMySQL itself would use TLS when offered)."""
    tls = {"ssl": ssl_opts} if ssl_opts is not None else {"ssl_disabled": True}
    return pymysql.connect(host="127.0.0.1", port=int(args.port), user=user,
                           password=password, database=args.db, connect_timeout=10, **tls)


def tls_query(user, password, ssl_opts):
    conn = connect(user, password, ssl_opts)
    try:
        sock = conn._sock
        assert isinstance(sock, ssl.SSLSocket), f"not TLS: {type(sock).__name__}"
        with conn.cursor() as cur:
            cur.execute("SELECT 40 + 2")
            row = cur.fetchone()
        assert row == (42,), row
        return f"{sock.version()} {sock.cipher()[0]}"
    finally:
        conn.close()


def refused(user, password, ssl_opts, errno, needle):
    try:
        connect(user, password, ssl_opts).close()
    except pymysql.err.OperationalError as e:
        code, msg = e.args[0], str(e.args[1]) if len(e.args) > 1 else ""
        assert code == errno, (code, msg)
        assert needle in msg, msg
        return f"{code} {msg}"
    raise AssertionError("the login was not refused")


verified = {"ca": args.ca, "check_hostname": True}
check("verified TLS login (mysql_native_password)",
      lambda: tls_query(args.user, args.password, verified))
check("TLS without certificate verification",
      lambda: tls_query(args.user, args.password, {"ca": None, "check_hostname": False,
                                                   "verify_mode": ssl.CERT_NONE}))
check("require_tls user, caching_sha2_password full authentication over TLS",
      lambda: tls_query(args.secure_user, args.secure_password, verified))
check("require_tls user again (fast path)",
      lambda: tls_query(args.secure_user, args.secure_password, verified))
check("require_tls user over plain TCP is refused with 1045",
      lambda: refused(args.secure_user, args.secure_password, None, 1045, "TLS"))
check("wrong password over TLS is refused with 1045",
      lambda: refused(args.secure_user, "wrong", verified, 1045, "Access denied"))


def untrusted():
    try:
        connect(args.user, args.password, {"ca": args.other_ca, "check_hostname": True}).close()
    except pymysql.err.OperationalError as e:
        assert "CERTIFICATE_VERIFY_FAILED" in str(e) or "certificate verify failed" in str(e), e
        return "certificate verify failed"
    raise AssertionError("a certificate from an untrusted CA was accepted")


check("a certificate from another CA is not trusted", untrusted)


def plain_ok():
    conn = connect(args.user, args.password, None)
    try:
        assert not isinstance(conn._sock, ssl.SSLSocket), "TLS although disabled"
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
    finally:
        conn.close()


check("ordinary user over plain TCP still works", plain_ok)

print(f"{passed} passed, {failed} failed")
sys.exit(0 if failed == 0 else 1)
