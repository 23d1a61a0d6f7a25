#!/usr/bin/env bash
# Differential check: the psql CLI direct vs. through the proxy.
#
# Same arguments as the other checks (see README.md). Creates a uniquely named
# fixture table over the direct connection, runs one psql script (queries in
# aligned and unaligned output, \gdesc, \gset, errors, transactions, notices,
# COPY and \copy, prepared statements, several statements per line) on both
# sides, and compares stdout, stderr and the exit status byte for byte.
# Exit 0 if equal, 1 on a difference, 2 on a usage or setup error.
set -uo pipefail

usage() { echo "usage: $0 --direct H:P --direct-user U [--direct-password P] --direct-db DB --proxy H:P --proxy-user U [--proxy-password P] --proxy-db DB" >&2; exit 2; }
declare -A A=([direct-password]="" [proxy-password]="")
while [ $# -gt 0 ]; do
    case "$1" in
        --*=*) k="${1%%=*}"; A[${k#--}]="${1#*=}"; shift ;;
        --*) [ $# -ge 2 ] || usage; A[${1#--}]="$2"; shift 2 ;;
        *) usage ;;
    esac
done
for k in direct direct-user direct-db proxy proxy-user proxy-db; do [ -n "${A[$k]:-}" ] || usage; done

PSQL="${PSQL:-psql}"
work="$(mktemp -d)"
table="drv_psql_$$_$RANDOM"
trap 'run direct -c "DROP TABLE IF EXISTS $table" >/dev/null 2>&1; [ -n "${DRV_CHECK_KEEP:-}" ] || rm -rf "$work"' EXIT

# run SIDE psql-args...: psql against one side, no psqlrc, no password prompt.
run() {
    local side="$1"; shift
    local hp="${A[$side]}"
    PGPASSWORD="${A[$side-password]}" PGCONNECT_TIMEOUT=10 "$PSQL" -X -w \
        -h "${hp%:*}" -p "${hp##*:}" -U "${A[$side-user]}" -d "${A[$side-db]}" "$@"
}

run direct -q -v ON_ERROR_STOP=1 -c "CREATE TABLE $table (id int PRIMARY KEY, t text, n numeric(8,2), d date, j jsonb, a int[])" \
    -c "INSERT INTO $table VALUES (1, 'héllo 👋', 12.5, '2024-02-29', '{\"k\": [1, null]}', '{1,2}'), (2, NULL, -0.01, NULL, 'null', '{}')" \
    || { echo "setup failed"; exit 2; }

printf '1\tfrom file ü\n2\t\\N\n3\tthree\n' >"$work/in.tsv"
cat >"$work/script.sql" <<SQL
\\set VERBOSITY default
SELECT * FROM $table ORDER BY id;
\\pset format unaligned
SELECT * FROM $table ORDER BY id;
\\pset format aligned
SELECT id, t FROM $table WHERE id = 1 \\gdesc
SELECT count(*) AS n FROM $table \\gset
\\echo rows: :n
SELEKT broken;
SELECT 'still works' AS after_error;
BEGIN;
INSERT INTO $table VALUES (3, 'tx', 0, NULL, NULL, NULL);
SELECT 1/0;
SELECT 'in failed transaction';
ROLLBACK;
SELECT count(*) FROM $table;
DO \$\$ BEGIN RAISE NOTICE 'notice from %', 'plpgsql'; END \$\$;
CREATE TEMP TABLE cp (id int, v text);
\\copy cp FROM '$work/in.tsv'
COPY cp TO STDOUT;
\\copy (SELECT v, id FROM cp ORDER BY id DESC) TO STDOUT WITH (FORMAT csv, HEADER)
PREPARE ins (int, text) AS INSERT INTO cp VALUES (\$1, \$2) RETURNING *;
EXECUTE ins(10, 'ten');
EXECUTE ins(11, NULL);
DEALLOCATE ins;
SELECT 1 AS a \\; SELECT 2 AS b \\; SELECT 'three' AS c;
SHOW client_encoding;
SET DateStyle = 'German';
SELECT d FROM $table WHERE id = 1;
SQL

passed=0
failed=0
for side in direct proxy; do
    run "$side" -v ON_ERROR_STOP=0 -f "$work/script.sql" >"$work/$side.out" 2>"$work/$side.err"
    echo "exit $?" >>"$work/$side.out"
done
if ! grep -q "héllo 👋" "$work/direct.out" || ! grep -q "notice from plpgsql" "$work/direct.err"; then
    echo "FAIL psql: the direct run did not produce the expected output"; cat "$work/direct.out" "$work/direct.err"
    exit 1
fi
for stream in out err; do
    if diff -u "$work/direct.$stream" "$work/proxy.$stream" >"$work/diff.$stream"; then
        echo "ok   psql: std$stream equal ($(wc -l <"$work/direct.$stream") lines)"
        passed=$((passed + 1))
    else
        echo "FAIL psql: std$stream differs"; cat "$work/diff.$stream"
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
