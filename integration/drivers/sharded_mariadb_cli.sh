#!/usr/bin/env bash
# A session of the `mariadb` command-line client on a sharded logical database
# (the layout and the arguments are described in shardwork.py): tables created,
# rows written with and without the key, read by key and across shards,
# updated, deleted, in transactions committed and rolled back. Each check
# compares the client's output with what it must be, and reads the data
# sources directly to see where rows landed. Prints `ok   ...` per check and
# `N passed, M failed`; exit 0 only if nothing failed, 2 on a usage error.
set -u
unset MYSQL_PWD MYSQL_HOST MYSQL_TCP_PORT

P_HP="" P_USER="" P_PASS="" P_DB="" D_HP="" D_USER="" D_PASS=""
SHARDS=()
while [ $# -gt 0 ]; do
    opt="$1"
    case "$opt" in
        --*=*) val="${opt#*=}"; opt="${opt%%=*}"; shift ;;
        --*) [ $# -ge 2 ] || { echo "missing value for $opt"; exit 2; }; val="$2"; shift 2 ;;
        *) echo "unexpected argument '$opt'"; exit 2 ;;
    esac
    case "$opt" in
        --proxy) P_HP="$val" ;;
        --proxy-user) P_USER="$val" ;;
        --proxy-password) P_PASS="$val" ;;
        --proxy-db) P_DB="$val" ;;
        --direct) D_HP="$val" ;;
        --direct-user) D_USER="$val" ;;
        --direct-password) D_PASS="$val" ;;
        --shard) SHARDS+=("$val") ;;
        *) echo "unknown option $opt"; exit 2 ;;
    esac
done
[ -n "$P_HP" ] && [ -n "$P_USER" ] && [ -n "$P_DB" ] && [ -n "$D_HP" ] && [ "${#SHARDS[@]}" = 2 ] \
    || { echo "usage: $0 --proxy H:P --proxy-user U --proxy-password P --proxy-db DB --direct H:P --direct-user U --direct-password P --shard DB0 --shard DB1"; exit 2; }

CLI="${MARIADB_CLI:-$(command -v mariadb || command -v mysql || true)}"
[ -n "$CLI" ] || { echo "mariadb client not found"; exit 2; }

# proxy [client options...]: the client on the logical database
proxy() {
    local pw=()
    [ -n "$P_PASS" ] && pw=("--password=$P_PASS")
    "$CLI" --no-defaults --protocol=TCP --host="${P_HP%:*}" --port="${P_HP##*:}" --user="$P_USER" \
        "${pw[@]}" --default-character-set=utf8mb4 --connect-timeout=10 "$@" "$P_DB"
}

# direct I SQL: SQL on data source ds_I itself, batch output without headers
direct() {
    local pw=()
    [ -n "$D_PASS" ] && pw=("--password=$D_PASS")
    "$CLI" --no-defaults --protocol=TCP --host="${D_HP%:*}" --port="${D_HP##*:}" --user="$D_USER" \
        "${pw[@]}" -B -N -e "$2" "${SHARDS[$1]}"
}

PASSED=0
FAILED=0

# expect NAME EXPECTED ACTUAL
expect() {
    if [ "$2" = "$3" ]; then
        PASSED=$((PASSED + 1))
        echo "ok   mariadb-cli sharded: $1"
    else
        FAILED=$((FAILED + 1))
        echo "FAIL mariadb-cli sharded: $1"
        diff -u --label expected --label actual <(printf '%s\n' "$2") <(printf '%s\n' "$3") | sed 's/^/  /'
    fi
}

# Where every order is: "ds_I.TABLE order_id user_id amount", sorted.
placement() {
    local i t
    for i in 0 1; do
        for t in t_order_0 t_order_1; do
            direct "$i" "SELECT order_id, user_id, amount FROM $t" | sed "s/^/ds_$i.$t	/"
        done
    done | sort -k2,2n
}

out="$(proxy -B -e "
CREATE TABLE t_order (order_id BIGINT NOT NULL PRIMARY KEY, user_id INT NOT NULL, amount INT, note VARCHAR(64));
CREATE INDEX idx_amount ON t_order (amount);
CREATE TABLE t_province (id INT NOT NULL PRIMARY KEY, name VARCHAR(32));
SHOW WARNINGS;" 2>&1)"
expect "CREATE TABLE and CREATE INDEX run silently" "" "$out"
expect "every actual table exists" "$(printf 't_order_0\nt_order_1\nt_province\nt_order_0\nt_order_1\nt_province')" \
    "$(direct 0 'SHOW TABLES'; direct 1 'SHOW TABLES')"
expect "index names made unique per actual table" "idx_amount_t_order_1" \
    "$(direct 1 "SELECT DISTINCT index_name FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = 't_order_1' AND index_name LIKE 'idx%'")"

# counts: the client's verbose report of each statement (affected rows, info)
counts() { grep -E '^(Query OK|Records|Rows matched)' || true; }

out="$(proxy -B -N -vv -e "
INSERT INTO t_order (order_id, user_id, amount) VALUES (12, 7, 1), (12, 8, 2), (13, 8, 3), (5, -3, 4);
INSERT INTO t_order (user_id, amount, note) VALUES (9, 5, 'generated');" 2>&1 | counts)"
expect "a multi-row INSERT split over four nodes, and one with a generated key" \
    "$(printf 'Query OK, 4 rows affected\nRecords: 4  Duplicates: 0  Warnings: 0\nQuery OK, 1 row affected')" "$out"
expect "each row on the node its user_id and order_id choose" "$(printf 'ds_0.t_order_0\t12\t8\t2\nds_0.t_order_1\t13\t8\t3\nds_1.t_order_0\t12\t7\t1\nds_1.t_order_1\t5\t-3\t4')" \
    "$(placement | grep -v '	9	5$' | sort)"
key="$(proxy -B -N -e "SELECT order_id FROM t_order WHERE note = 'generated'" 2>&1)"
expect "the generated key routes its row" "ds_1.t_order_$((key % 2))	$key	9	5" "$(placement | grep '	9	5$')"
last="$(proxy -B -N -e "INSERT INTO t_order (user_id, amount, note) VALUES (11, 6, 'again');
SELECT LAST_INSERT_ID();" 2>&1)"
expect "SELECT LAST_INSERT_ID() is the generated key" \
    "$(proxy -B -N -e "SELECT order_id FROM t_order WHERE note = 'again'" 2>&1)" "$last"
proxy -e "DELETE FROM t_order WHERE note = 'again'"

out="$(proxy -B -e "
SELECT order_id, user_id, amount FROM t_order WHERE user_id = 8 AND order_id = 13;
SELECT order_id, user_id FROM t_order WHERE user_id = 8 ORDER BY order_id;
SELECT amount FROM t_order WHERE order_id = 12 AND user_id IN (7, 8);" 2>&1)"
# (Rows of several nodes come node by node: ds_0's before ds_1's.)
expect "selects by sharding key" "$(printf 'order_id\tuser_id\tamount\n13\t8\t3\norder_id\tuser_id\n12\t8\n13\t8\namount\n2\n1')" "$out"
out="$(proxy -B -N -e "SELECT order_id, user_id FROM t_order WHERE amount < 5" 2>&1 | sort -n)"
expect "a select across every node" "$(printf '5\t-3\n12\t7\n12\t8\n13\t8')" "$out"

out="$(proxy -B -N -vv -e "
UPDATE t_order SET amount = amount * 10 WHERE order_id IN (12, 13);
UPDATE t_order SET note = 'x' WHERE user_id = -3 AND order_id = 5;
DELETE FROM t_order WHERE user_id = 7;" 2>&1 | counts)"
expect "updates and deletes report the rows of every node they ran on" \
    "$(printf 'Query OK, 3 rows affected\nRows matched: 3  Changed: 3  Warnings: 0\nQuery OK, 1 row affected\nRows matched: 1  Changed: 1  Warnings: 0\nQuery OK, 1 row affected')" "$out"
expect "updates and deletes reached their nodes" "$(printf 'ds_0.t_order_0\t12\t8\t20\nds_0.t_order_1\t13\t8\t30\nds_1.t_order_1\t5\t-3\t4')" \
    "$(placement | grep -v '	9	5$' | sort)"

out="$(proxy -B -N -e "
BEGIN;
INSERT INTO t_order (order_id, user_id, amount) VALUES (100, 10, 1), (101, 11, 1);
SELECT @@in_transaction;
COMMIT;
BEGIN;
DELETE FROM t_order WHERE order_id IN (100, 101);
INSERT INTO t_order (user_id, amount) VALUES (20, 1), (21, 1);
ROLLBACK;
SELECT order_id, user_id FROM t_order WHERE order_id IN (100, 101) ORDER BY order_id;
SELECT order_id FROM t_order WHERE user_id IN (20, 21);" 2>&1)"
expect "a committed and a rolled-back transaction over both data sources" \
    "$(printf '1\n100\t10\n101\t11')" "$out"
expect "the committed rows, and nothing of the rolled-back ones, on the data sources" \
    "$(printf 'ds_0.t_order_0\t100\t10\t1\nds_1.t_order_1\t101\t11\t1')" "$(placement | grep -E '	1[01]	|	2[01]	')"

out="$(printf '%s\n' "UPDATE t_order SET user_id = 3 WHERE order_id = 13;" \
    "INSERT INTO t_province VALUES (1, 'Bern'), (2, 'Vaud');" \
    "SELECT name FROM t_province ORDER BY id;" | proxy -B -N --force 2>&1 | grep -v -e '^-*$' -e '^UPDATE')"
first="$(echo "$out" | head -n 1)"
case "$first" in
    "ERROR 1235 (42000) at line 1: "*"sharding"*) ;;
    *) first="ERROR 1235 (42000) at line 1: ... (a message about the sharding column)" ;;
esac
expect "an unroutable statement is an error (with --force the session goes on); broadcast writes" \
    "$(printf '%s\nBern\nVaud' "$first")" "$out"
expect "the broadcast rows on every data source" "$(printf '1\tBern\n2\tVaud\n1\tBern\n2\tVaud')" \
    "$(direct 0 'SELECT * FROM t_province ORDER BY id'; direct 1 'SELECT * FROM t_province ORDER BY id')"

out="$(printf '%s\n' "DELIMITER //" \
    "INSERT INTO t_order (order_id, user_id, amount) VALUES (200, 20, 1), (201, 21, 1); SELECT order_id FROM t_order WHERE user_id = 21 AND order_id = 201; DELETE FROM t_order WHERE order_id IN (200, 201) //" \
    | proxy -B -N 2>&1)"
expect "several statements in one query (DELIMITER), each on its own nodes" "201" "$out"
expect "their rows were written and deleted" "" "$(placement | grep -E '	20[01]	')"

out="$(proxy -B -N -e "DROP TABLE t_order; DROP TABLE t_province;" 2>&1)"
expect "DROP TABLE fans out" "" "$out$(direct 0 'SHOW TABLES')$(direct 1 'SHOW TABLES')"

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
