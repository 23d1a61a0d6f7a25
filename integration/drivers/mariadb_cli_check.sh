#!/usr/bin/env bash
# Differential check: the `mariadb` command-line client direct vs. through
# the proxy.
#
# Usage:
#   mariadb_cli_check.sh --direct HOST:PORT --direct-user U --direct-password P
#        --direct-db PHYSICAL_DB --proxy HOST:PORT --proxy-user U
#        --proxy-password P --proxy-db LOGICAL_DB
#
# Creates a uniquely named fixture table in PHYSICAL_DB over the direct
# connection, runs the same client invocations against both servers and
# compares stdout, stderr and the exit status byte for byte (metadata via
# --column-type-info).  The table is dropped on exit.  Exit 0 if everything
# matched, 1 on any difference, 2 on usage/setup failure.
# The client binary can be overridden with MARIADB_CLI=/path/to/mariadb;
# DRV_CHECK_KEEP=1 keeps the captured outputs (the directory is printed).

set -u
unset MYSQL_PWD MYSQL_HOST MYSQL_TCP_PORT

usage() {
    echo "error: $*"
    echo "usage: $0 --direct HOST:PORT --direct-user U --direct-password P --direct-db PHYSICAL_DB" \
         "--proxy HOST:PORT --proxy-user U --proxy-password P --proxy-db LOGICAL_DB"
    exit 2
}

D_HP="" D_USER="" D_PASS="" D_DB="" P_HP="" P_USER="" P_PASS="" P_DB=""
while [ $# -gt 0 ]; do
    opt="$1"
    case "$opt" in
        --*=*) val="${opt#*=}"; opt="${opt%%=*}"; shift ;;
        --*) [ $# -ge 2 ] || usage "missing value for $opt"; val="$2"; shift 2 ;;
        *) usage "unexpected argument '$opt'" ;;
    esac
    case "$opt" in
        --direct) D_HP="$val" ;;
        --direct-user) D_USER="$val" ;;
        --direct-password) D_PASS="$val" ;;
        --direct-db) D_DB="$val" ;;
        --proxy) P_HP="$val" ;;
        --proxy-user) P_USER="$val" ;;
        --proxy-password) P_PASS="$val" ;;
        --proxy-db) P_DB="$val" ;;
        *) usage "unknown option $opt" ;;
    esac
done
for v in D_HP D_USER D_DB P_HP P_USER P_DB; do
    [ -n "${!v}" ] || usage "missing a required option ($v)"
done
case "$D_HP" in *:*) ;; *) usage "--direct must be HOST:PORT" ;; esac
case "$P_HP" in *:*) ;; *) usage "--proxy must be HOST:PORT" ;; esac
D_HOST="${D_HP%:*}" D_PORT="${D_HP##*:}"
P_HOST="${P_HP%:*}" P_PORT="${P_HP##*:}"
D_HOST="${D_HOST#[}" D_HOST="${D_HOST%]}"
P_HOST="${P_HOST#[}" P_HOST="${P_HOST%]}"

CLI="${MARIADB_CLI:-$(command -v mariadb || command -v mysql || true)}"
[ -n "$CLI" ] || { echo "mariadb client not found"; exit 2; }

# cli SIDE [client options...]  -- connects to SIDE's database
cli() {
    local side="$1"; shift
    local host port user pass db
    if [ "$side" = direct ]; then
        host="$D_HOST" port="$D_PORT" user="$D_USER" pass="$D_PASS" db="$D_DB"
    else
        host="$P_HOST" port="$P_PORT" user="$P_USER" pass="$P_PASS" db="$P_DB"
    fi
    local pw=()
    [ -n "$pass" ] && pw=("--password=$pass")
    "$CLI" --no-defaults --protocol=TCP --host="$host" --port="$port" --user="$user" "${pw[@]}" \
        --default-character-set=utf8mb4 --connect-timeout=10 "$@" "$db"
}

WORK="$(mktemp -d "${TMPDIR:-/tmp}/drv_cli.XXXXXX")"
SUFFIX="$$_$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
T="drv_cli_${SUFFIX}"

cleanup() {
    cli direct -e "DROP TABLE IF EXISTS \`$T\`" >/dev/null 2>"$WORK/cleanup.err" \
        || echo "warning: cleanup failed: $(cat "$WORK/cleanup.err")"
    if [ -n "${DRV_CHECK_KEEP:-}" ]; then echo "outputs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

if ! cli direct -e "
CREATE TABLE \`$T\` (
  id INT NOT NULL PRIMARY KEY,
  i INT,
  bu BIGINT UNSIGNED,
  d DECIMAL(10,2),
  dbl DOUBLE,
  vc VARCHAR(50) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci,
  tx TEXT,
  bl BLOB,
  dt DATE,
  dtm DATETIME(6),
  ts TIMESTAMP NULL DEFAULT NULL,
  js JSON
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
INSERT INTO \`$T\` VALUES
(1, 42, 18446744073709551615, -12345678.90, 3.141592653589793,
 'héllo 👋', 'some text\\nsecond line', X'00FF0102037F80FE00',
 '2024-02-29', '2024-02-29 13:45:56.123456', '2024-02-29 13:45:56',
 '{\"a\": [1, 2, {\"b\": null}], \"e\": \"👋\"}'),
(2, -7, 0, 0.01, -1.5e300, '', '', X'', '1970-01-01',
 '1000-01-01 00:00:00.000001', '2001-09-09 01:46:40', '[]'),
(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
(4, 2147483647, 9223372036854775808, 99999999.99, 0,
 'ASCII only', REPEAT('0123456789', 500), X'FF00FF00',
 '9999-12-31', '9999-12-31 23:59:59.999999', '2030-06-15 12:00:00',
 'null');
" >"$WORK/setup.out" 2>&1; then
    echo "setup: cannot create the fixture table over the direct connection:"
    cat "$WORK/setup.out"
    exit 2
fi

PASSED=0
FAILED=0

if ! cli proxy -B -N -e "SELECT 1" >"$WORK/preflight.out" 2>&1; then
    echo "FAIL mariadb-cli: connect to proxy $P_HOST:$P_PORT as '$P_USER' db '$P_DB'  $(head -c 500 "$WORK/preflight.out")"
    echo "0 passed, 1 failed"
    exit 1
fi

# The proxy may report a column's schema as the logical database name the
# client asked for; map it onto the physical name (only in the Database:
# lines of --column-type-info).  Connection ids are never printed here.
normalise_proxy() {
    if [ "$P_DB" = "$D_DB" ]; then
        cat
    else
        awk -v from="Database:   \`$P_DB\`" -v to="Database:   \`$D_DB\`" \
            '{ if ($0 == from) print to; else print }'
    fi
}

# run_side SIDE NAME STDIN_FILE -- client options...
run_side() {
    local side="$1" name="$2" input="$3"; shift 3
    local base="$WORK/$name.$side"
    cli "$side" "$@" <"$input" >"$base.out.raw" 2>"$base.err.raw"
    echo "$?" >"$base.rc"
    if [ "$side" = proxy ]; then
        normalise_proxy <"$base.out.raw" >"$base.out"
        normalise_proxy <"$base.err.raw" >"$base.err"
    else
        mv "$base.out.raw" "$base.out"
        mv "$base.err.raw" "$base.err"
    fi
}

show_diff() {
    local what="$1" a="$2" b="$3"
    echo "  --- $what differs (non-printing bytes shown with cat -v):"
    diff -u --label "direct/$what" --label "proxy/$what" <(cat -v "$a") <(cat -v "$b") \
        | head -n 80 | cut -c1-300 | sed 's/^/  /'
}

# check NAME DESCRIPTION [--stdin TEXT] [--expect-fail|--expect-1064] -- client options...
#   --expect-fail: both sides must exit non-zero with ERROR 1064 on stderr
#   --expect-1064: both sides must exit 0 and print ERROR 1064 on stderr
check() {
    local name="$1" desc="$2"; shift 2
    local input="/dev/null" expect_fail=0 expect_1064=0
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do
        case "$1" in
            --stdin) printf '%s' "$2" >"$WORK/$name.stdin"; input="$WORK/$name.stdin"; shift 2 ;;
            --expect-fail) expect_fail=1; expect_1064=1; shift ;;
            --expect-1064) expect_1064=1; shift ;;
            *) echo "internal error: bad check option $1"; exit 2 ;;
        esac
    done
    shift
    run_side direct "$name" "$input" "$@"
    run_side proxy "$name" "$input" "$@"
    local d="$WORK/$name.direct" p="$WORK/$name.proxy" bad=0
    local problems=()
    if ! cmp -s "$d.rc" "$p.rc"; then
        bad=1; problems+=("  exit status: direct=$(cat "$d.rc")  proxy=$(cat "$p.rc")")
    fi
    local s f
    for s in direct proxy; do
        f="$WORK/$name.$s"
        if [ "$expect_fail" = 1 ] && [ "$(cat "$f.rc")" = 0 ]; then
            bad=1; problems+=("  $s: expected a non-zero exit status, got 0")
        fi
        if [ "$expect_fail" = 0 ] && [ "$(cat "$f.rc")" != 0 ]; then
            bad=1; problems+=("  $s: exited $(cat "$f.rc"): $(head -c 300 "$f.err")")
        fi
        if [ "$expect_1064" = 1 ] && ! grep -q "^ERROR 1064 (42000)" "$f.err"; then
            bad=1; problems+=("  $s: stderr has no 'ERROR 1064 (42000)': $(head -c 300 "$f.err")")
        fi
    done
    if ! cmp -s "$d.out" "$p.out"; then bad=1; fi
    if ! cmp -s "$d.err" "$p.err"; then bad=1; fi
    if [ "$bad" = 0 ]; then
        PASSED=$((PASSED + 1))
        echo "ok   mariadb-cli: $desc"
        return 0
    fi
    FAILED=$((FAILED + 1))
    echo "FAIL mariadb-cli: $desc  (direct and proxy differ)"
    echo "  command: mariadb $*"
    for l in "${problems[@]+"${problems[@]}"}"; do echo "$l"; done
    cmp -s "$d.out" "$p.out" || show_diff stdout "$d.out" "$p.out"
    cmp -s "$d.err" "$p.err" || show_diff stderr "$d.err" "$p.err"
    return 1
}

SEQ="WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 1000)"
EXPRS="SELECT 1 AS one, 'x' AS s, NULL AS n, 1.50 AS dec_lit, 2.5e0 AS dbl_lit, X'00FF' AS bin_lit,
 18446744073709551615 AS big, id + 1 AS id1, UPPER(vc) AS up, LENGTH(bl) AS bl_len FROM \`$T\` ORDER BY id"

check select_bn "batch -B -N SELECT * output" -- \
    -B -N -e "SELECT * FROM \`$T\` ORDER BY id"
check select_b "batch -B SELECT with headers (expression columns)" -- \
    -B -e "$EXPRS"
check select_raw "batch raw -B -N -r SELECT * output" -- \
    -B -N -r -e "SELECT * FROM \`$T\` ORDER BY id"
check cti_table "--column-type-info metadata of SELECT *" -- \
    -t --column-type-info -e "SELECT * FROM \`$T\` ORDER BY id"
check cti_exprs "--column-type-info metadata of expression columns" -- \
    -t --column-type-info -e "$EXPRS"
check xml "XML output -X of SELECT *" -- \
    -X -e "SELECT * FROM \`$T\` ORDER BY id"
check multi_split "multi-statement string (client-split) -e 'a; b; c'" -- \
    -B -e "SELECT 1 AS a; SELECT 'x' AS b, 2 AS c; SELECT COUNT(*) AS n FROM \`$T\`"
check multi_server "multi-statement in one COM_QUERY (DELIMITER) incl. an OK result" \
    --stdin "DELIMITER //
SELECT 1 AS a; DO 1; SELECT 'x' AS b, 2 AS c; SELECT id, vc FROM \`$T\` WHERE id = 1 //
" -- -B
check syntax_error "syntax error: non-zero exit, ERROR 1064 on stderr" --expect-fail -- \
    -B -e "SELEC 1"
check error_then_good "--force (stdin): error then good queries on the same connection" --expect-1064 \
    --stdin "SELEC 1;
SELECT 42 AS answer;
SELECT id FROM \`$T\` WHERE id = 2;
" -- -B --force
check warnings "--show-warnings after a warning-producing SELECT" -- \
    -B --show-warnings -e "SELECT CAST('abc' AS SIGNED) AS v"
check rollback "BEGIN / INSERT / ROLLBACK leaves no row" -- \
    -B -N -e "BEGIN; INSERT INTO \`$T\` (id, vc) VALUES (970, 'tx');
 SELECT id, vc FROM \`$T\` WHERE id = 970; ROLLBACK; SELECT COUNT(*) FROM \`$T\` WHERE id = 970"
# and the row is really gone on the backend (counted over the direct side)
check rollback_direct "row from rolled back transaction absent on the backend" -- \
    -B -N -e "SELECT COUNT(*) FROM \`$T\` WHERE id = 970"
check big_result "1000-row result plus count/sum" -- \
    -B -N -e "$SEQ SELECT n, n * n, REPEAT('x', MOD(n, 97)) FROM seq;
 $SEQ SELECT COUNT(*), SUM(n) FROM seq"

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ] && exit 0 || exit 1
