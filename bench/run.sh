#!/usr/bin/env bash
# dbmesh end-to-end benchmark: the same client load against the real server
# ("direct"), through dbmesh, and (PostgreSQL) through pgbouncer, alternating
# targets round by round, with ratios to direct as the headline number.
# How to run it and how to read the output: docs/benchmarks.md.
#
#   bash bench/run.sh              # full run: 3 rounds x 10 s per case (~10 min)
#   QUICK=1 bash bench/run.sh      # smoke run: 1 round x 3 s per case (~1-2 min)
#
# Environment (defaults in brackets; QUICK=1 changes the starred ones):
#   BENCH_SECONDS        seconds per measured run           [10, quick 3] *
#   BENCH_ROUNDS         rounds; each runs every target     [3, quick 1]  *
#   BENCH_WARMUP         seconds of unrecorded warm-up per case and target,
#                        before the first round (0 = none) [2, quick 0]  *
#   BENCH_THREADS        client connections (sysbench threads, pgbench -c) [8]
#   BENCH_CASES          extended regex; only cases whose name matches run [all]
#   BENCH_SB_TABLES      sysbench tables                     [4]
#   BENCH_SB_TABLE_SIZE  rows per sysbench table             [50000]
#   BENCH_PG_SCALE       pgbench -i scale (100k accounts each) [5]
#   BENCH_RESULTS_DIR    where the result JSON goes          [bench/results]
#   BENCH_REV            build and measure this git revision (e.g. HEAD) from a
#                        clean `git archive` instead of the working tree  [unset]
#   BENCH_KEEP_WORK=1    keep the temporary directory (configs, raw outputs, logs)
#
# Needs root on a fresh machine (installs sysbench, pgbouncer; the servers are
# set up by integration/setup/services.sh). Never part of `cargo test` or CI.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"
REPORT="$BENCH/report.py"

QUICK="${QUICK:-0}"
if [ "$QUICK" = 1 ]; then
    RUN_SECONDS="${BENCH_SECONDS:-3}"; ROUNDS="${BENCH_ROUNDS:-1}"; WARMUP="${BENCH_WARMUP:-0}"
else
    RUN_SECONDS="${BENCH_SECONDS:-10}"; ROUNDS="${BENCH_ROUNDS:-3}"; WARMUP="${BENCH_WARMUP:-2}"
fi
THREADS="${BENCH_THREADS:-8}"
CASE_FILTER="${BENCH_CASES:-.}"
SB_TABLES="${BENCH_SB_TABLES:-4}"
SB_TABLE_SIZE="${BENCH_SB_TABLE_SIZE:-50000}"
PG_SCALE="${BENCH_PG_SCALE:-5}"
RESULTS_DIR="${BENCH_RESULTS_DIR:-$BENCH/results}"
PGBENCH_JOBS="$(nproc)"
[ "$PGBENCH_JOBS" -le "$THREADS" ] || PGBENCH_JOBS="$THREADS"

# The real databases the benchmark owns (created and filled here), and the
# logical databases and account dbmesh exposes for them.
MY_HOST=127.0.0.1 MY_PORT=3306 MY_USER=root
PG_HOST=127.0.0.1 PG_PORT=5432 PG_USER=postgres
BENCH_DB=dbmesh_bench
MESH_USER=bench MESH_PASSWORD=bench-secret
MESH_MY_DB=bench_my MESH_PG_DB=bench_pg MESH_SHARDED_DB=bench_sharded

export DEBIAN_FRONTEND=noninteractive

log() { printf '[bench] %s\n' "$*"; }
die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }

# ------------------------------------------------------------------ tools ----
if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
PGBOUNCER="$(command -v pgbouncer || echo /usr/sbin/pgbouncer)"

install_missing_tools() {
    local missing=()
    command -v sysbench >/dev/null || missing+=(sysbench)
    [ -x "$PGBOUNCER" ] || missing+=(pgbouncer)
    command -v socat >/dev/null || missing+=(socat)
    command -v python3 >/dev/null || missing+=(python3)
    [ "${#missing[@]}" -gt 0 ] || return 0
    [ "$(id -u)" -eq 0 ] || die "missing ${missing[*]}; re-run as root to install them"
    log "apt-get update; apt-get install ${missing[*]}"
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    PGBOUNCER="$(command -v pgbouncer || echo /usr/sbin/pgbouncer)"
    [ -x "$PGBOUNCER" ] || die "pgbouncer not found after installing it"
}

my_sql() { mariadb --protocol=tcp -h"$MY_HOST" -P"$MY_PORT" -u"$MY_USER" -Nse "$1" </dev/null; }
pg_sql() { psql -X -w -q -h"$PG_HOST" -p"$PG_PORT" -U "$PG_USER" -d "${2:-postgres}" -Atc "$1" </dev/null; }
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }
# Whether process $1 runs (`kill -0` also succeeds for a child that died and
# has not been reaped yet, a zombie).
alive() { [ -r "/proc/$1/stat" ] && [ "$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null)" != Z ]; }

# Waits up to 30 s for 127.0.0.1:$1 to accept connections while process $2 lives.
wait_port() {
    local port="$1" pid="$2" i
    for i in $(seq 60); do
        port_open "$port" && return 0
        alive "$pid" || return 1
        sleep 0.5
    done
    return 1
}

free_ports() {
    python3 - "$1" <<'PY'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# ------------------------------------------------------------- bench data ----
prepare_mysql_data() {
    my_sql "CREATE DATABASE IF NOT EXISTS $BENCH_DB"
    local tables rows=0
    tables="$(my_sql "SELECT COUNT(*) FROM information_schema.tables
                      WHERE table_schema = '$BENCH_DB' AND table_name LIKE 'sbtest%'")"
    if [ "$tables" = "$SB_TABLES" ]; then
        rows="$(my_sql "SELECT COUNT(*) FROM $BENCH_DB.sbtest$SB_TABLES" 2>/dev/null || echo 0)"
    fi
    if [ "$tables" = "$SB_TABLES" ] && [ "$rows" = "$SB_TABLE_SIZE" ]; then
        log "mariadb: $BENCH_DB has $SB_TABLES sysbench tables of $SB_TABLE_SIZE rows"
        return
    fi
    log "mariadb: sysbench prepare $BENCH_DB ($SB_TABLES tables x $SB_TABLE_SIZE rows)"
    my_sql "DROP DATABASE IF EXISTS $BENCH_DB; CREATE DATABASE $BENCH_DB"
    sysbench oltp_read_only "${SB_DIRECT[@]}" --tables="$SB_TABLES" --table-size="$SB_TABLE_SIZE" \
        --threads="$SB_TABLES" prepare >"$WORK/sysbench-prepare.log" 2>&1 \
        || { tail -n 20 "$WORK/sysbench-prepare.log" >&2; die "sysbench prepare failed"; }
}

# The sysbench tables again, split by id mod 2 into two databases: the data
# sources of the sharded logical database.
prepare_mysql_shards() {
    local shard table
    for shard in 0 1; do
        my_sql "DROP DATABASE IF EXISTS ${BENCH_DB}_s$shard; CREATE DATABASE ${BENCH_DB}_s$shard"
        for table in $(seq 1 "$SB_TABLES"); do
            my_sql "CREATE TABLE ${BENCH_DB}_s$shard.sbtest$table LIKE $BENCH_DB.sbtest$table;
                    INSERT INTO ${BENCH_DB}_s$shard.sbtest$table
                    SELECT * FROM $BENCH_DB.sbtest$table WHERE id % 2 = $shard"
        done
    done
    log "mariadb: ${BENCH_DB}_s0 and ${BENCH_DB}_s1 hold the sysbench rows split by id mod 2"
}

prepare_pg_data() {
    if [ "$(pg_sql "SELECT 1 FROM pg_database WHERE datname = '$BENCH_DB'")" != 1 ]; then
        pg_sql "CREATE DATABASE $BENCH_DB"
    fi
    local rows
    rows="$(pg_sql "SELECT COUNT(*) FROM pgbench_accounts" "$BENCH_DB" 2>/dev/null || echo 0)"
    if [ "$rows" = "$((PG_SCALE * 100000))" ]; then
        log "postgresql: $BENCH_DB has pgbench tables at scale $PG_SCALE"
        return
    fi
    log "postgresql: pgbench -i -s $PG_SCALE $BENCH_DB"
    pgbench -i -q -s "$PG_SCALE" -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" "$BENCH_DB" \
        >"$WORK/pgbench-init.log" 2>&1 \
        || { tail -n 20 "$WORK/pgbench-init.log" >&2; die "pgbench -i failed"; }
}

# ----------------------------------------------------------------- dbmesh ----
write_dbmesh_config() {
    cat >"$WORK/dbmesh.toml" <<EOF
# Written by bench/run.sh. Keys: docs/configuration.md.
[server]
mysql_listen    = "127.0.0.1:$MESH_MY_PORT"
postgres_listen = "127.0.0.1:$MESH_PG_PORT"

[[users]]
name          = "$MESH_USER"
password      = "$MESH_PASSWORD"
databases     = ["$MESH_MY_DB", "$MESH_SHARDED_DB", "$MESH_PG_DB"]
postgres_auth = "scram-sha-256"

[databases.$MESH_MY_DB]
backend = "mysql"

[databases.$MESH_MY_DB.data_sources.ds_0]
url             = "mysql://$MY_USER:@$MY_HOST:$MY_PORT/$BENCH_DB"
max_connections = $((THREADS * 2))

[databases.$MESH_SHARDED_DB]
backend             = "mysql"
default_data_source = "ds_0"
rules               = ["sharded-rules.toml"]

[databases.$MESH_SHARDED_DB.data_sources.ds_0]
url             = "mysql://$MY_USER:@$MY_HOST:$MY_PORT/${BENCH_DB}_s0"
max_connections = $((THREADS * 2))

[databases.$MESH_SHARDED_DB.data_sources.ds_1]
url             = "mysql://$MY_USER:@$MY_HOST:$MY_PORT/${BENCH_DB}_s1"
max_connections = $((THREADS * 2))

[databases.$MESH_PG_DB]
backend = "postgres"

[databases.$MESH_PG_DB.data_sources.ds_0]
url             = "postgres://$PG_USER@$PG_HOST:$PG_PORT/$BENCH_DB"
max_connections = $((THREADS * 2))
EOF
    {
        echo "# Written by bench/run.sh: each sysbench table split over ds_0 and ds_1 by id mod 2."
        local table
        for table in $(seq 1 "$SB_TABLES"); do
            printf '[tables.sbtest%s]\nnodes = "ds_${0..1}.sbtest%s"\ndatabase_strategy = { column = "id", algorithm = "id_mod" }\n\n' "$table" "$table"
        done
        printf '[algorithms.id_mod]\ntype = "MOD"\nsharding_count = 2\n'
    } >"$WORK/sharded-rules.toml"
}

DBMESH_PID=""
start_dbmesh() {
    "$WORK/dbmesh" --config "$WORK/dbmesh.toml" >>"$WORK/dbmesh.log" 2>&1 &
    DBMESH_PID=$!
    if ! wait_port "$MESH_MY_PORT" "$DBMESH_PID" || ! wait_port "$MESH_PG_PORT" "$DBMESH_PID"; then
        tail -n 30 "$WORK/dbmesh.log" >&2
        die "dbmesh did not start listening on $MESH_MY_PORT/$MESH_PG_PORT"
    fi
    log "dbmesh: pid $DBMESH_PID, MySQL 127.0.0.1:$MESH_MY_PORT, PostgreSQL 127.0.0.1:$MESH_PG_PORT"
}

# -------------------------------------------------------------- pgbouncer ----
PGB_PID=""
start_pgbouncer() {
    local dir="$WORK/pgbouncer"
    mkdir -p "$dir"
    cat >"$dir/pgbouncer.ini" <<EOF
; Written by bench/run.sh: transaction pooling, one server connection per
; client at most (dbmesh today also holds one backend connection per client).
[databases]
$BENCH_DB = host=$PG_HOST port=$PG_PORT dbname=$BENCH_DB user=$PG_USER

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = $THREADS
max_client_conn = $((THREADS * 4))
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
EOF
    echo "\"$PG_USER\" \"\"" >"$dir/userlist.txt"
    # pgbouncer refuses to run as root; the postgres account owns its files.
    local as=()
    if [ "$(id -u)" -eq 0 ]; then
        chown -R postgres: "$dir"
        as=(runuser -u postgres --)
    fi
    "${as[@]}" "$PGBOUNCER" -d "$dir/pgbouncer.ini" >"$dir/start.log" 2>&1 \
        || { cat "$dir/start.log" "$dir/pgbouncer.log" >&2 2>/dev/null; die "pgbouncer did not start"; }
    local i
    for i in $(seq 20); do [ -s "$dir/pgbouncer.pid" ] && break; sleep 0.25; done
    PGB_PID="$(cat "$dir/pgbouncer.pid" 2>/dev/null || true)"
    [ -n "$PGB_PID" ] && wait_port "$PGB_PORT" "$PGB_PID" \
        || { cat "$dir/pgbouncer.log" >&2 2>/dev/null; die "pgbouncer is not listening on $PGB_PORT"; }
    log "pgbouncer: pid $PGB_PID, transaction pooling, 127.0.0.1:$PGB_PORT"
}

stop_pid() {
    local pid="$1" i
    [ -n "$pid" ] && alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 20); do alive "$pid" || return 0; sleep 0.25; done
    kill -KILL "$pid" 2>/dev/null || true
}

# ------------------------------------------------------------------ relay ----
# A byte relay (socat, one process per connection, no protocol work) in front of
# each server: the floor for the cost of any TCP proxy hop on this machine.
start_relays() {
    socat "TCP-LISTEN:$RELAY_MY_PORT,bind=127.0.0.1,fork,reuseaddr,nodelay" \
        "TCP:127.0.0.1:$MY_PORT,nodelay" >/dev/null 2>&1 &
    RELAY_MY_PID=$!
    socat "TCP-LISTEN:$RELAY_PG_PORT,bind=127.0.0.1,fork,reuseaddr,nodelay" \
        "TCP:127.0.0.1:$PG_PORT,nodelay" >/dev/null 2>&1 &
    RELAY_PG_PID=$!
    log "relay: socat on 127.0.0.1:$RELAY_MY_PORT (MariaDB) and :$RELAY_PG_PORT (PostgreSQL)"
}

cleanup() {
    stop_pid "${RELAY_MY_PID:-}"
    stop_pid "${RELAY_PG_PID:-}"
    stop_pid "$DBMESH_PID"
    stop_pid "$PGB_PID"
    if [ -n "${WORK:-}" ] && [ -d "$WORK" ]; then
        if [ "${BENCH_KEEP_WORK:-0}" = 1 ]; then
            log "kept $WORK"
        else
            rm -rf "$WORK"
        fi
    fi
}

# ---------------------------------------------------------- measurement ----
# utime + stime of a process, in clock ticks.
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
peak_rss_kb() { awk '$1 == "VmHWM:" { print $2 }' "/proc/$1/status" 2>/dev/null || true; }

proxy_pid() {
    case "$1" in
        dbmesh) echo "$DBMESH_PID" ;;
        pgbouncer) echo "$PGB_PID" ;;
        *) echo "" ;;
    esac
}

# measure TOOL CASE TARGET CMD... : runs one client command against TARGET and
# records it (status, throughput, p95, the proxy's CPU time and peak RSS).
# ROUND and ORDER are globals; round 0 is the unrecorded warm-up.
measure() {
    local tool="$1" case="$2" target="$3"; shift 3
    local tag="$case.$target.r$ROUND"
    local out="$WORK/out/$tag.txt" pid cpu0=0 cpu1 rc died=() extra=()
    pid="$(proxy_pid "$target")"
    if [ -n "$pid" ]; then
        # "5" resets the peak RSS (VmHWM) to the current RSS, so the peak read
        # afterwards belongs to this run.
        echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || true
        cpu0="$(cpu_ticks "$pid")"
    fi
    [ "$ROUND" -gt 0 ] && printf '[bench] round %d  %-34s %-9s ' "$ROUND" "$case" "$target"
    set +e
    "$@" >"$out" 2>&1
    rc=$?
    set -e
    if [ -n "$pid" ]; then
        cpu1="$(cpu_ticks "$pid")"
        extra+=(--proxy "$target" --cpu-ticks "$((cpu1 - cpu0))" --clk-tck "$(getconf CLK_TCK)")
        local hwm; hwm="$(peak_rss_kb "$pid")"
        [ -n "$hwm" ] && extra+=(--hwm-kb "$hwm")
        alive "$pid" || died=(--proxy-died)
    fi
    [ "$tool" = pgbench ] && extra+=(--pg-log-prefix "$WORK/pglog/$tag")
    if [ "$ROUND" -eq 0 ]; then
        rm -f "$WORK/pglog/$tag".*
        [ "$rc" -eq 0 ] || log "warm-up $case $target exited $rc (see the measured rounds)"
    else
        python3 "$REPORT" record --runs "$RUNS" --case "$case" --target "$target" \
            --round "$ROUND" --order "$ORDER" --tool "$tool" --output "$out" --exit-code "$rc" \
            --command "$(printf '%q ' "$@")" "${extra[@]}" "${died[@]}"
    fi
    if [ "${#died[@]}" -gt 0 ]; then
        log "$target (pid $pid) died during $case; the end of its log:"
        if [ "$target" = dbmesh ]; then
            tail -n 30 "$WORK/dbmesh.log" || true
            start_dbmesh
        else
            tail -n 30 "$WORK/pgbouncer/pgbouncer.log" || true
        fi
    fi
}

# Records a case/target that is not run, with the reason (status pending or n/a).
not_run() {
    local status="$1" case="$2" target="$3" why="$4"
    [ "$ROUND" -gt 0 ] || return 0
    printf '[bench] round %d  %-34s %-9s ' "$ROUND" "$case" "$target"
    python3 "$REPORT" record --runs "$RUNS" --case "$case" --target "$target" \
        --round "$ROUND" --order "$ORDER" --status "$status" --note "$why"
}

# ------------------------------------------------------------------ cases ----
# A case is one function, called once per target per round as
#   FUNCTION CASE TARGET ARGS...
# and registered in CASES below with the targets it runs against.

sysbench_target_args() {
    case "$1" in
        direct) printf '%s\n' "${SB_DIRECT[@]}" ;;
        dbmesh) printf '%s\n' --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$MESH_MY_PORT" \
                    --mysql-user="$MESH_USER" --mysql-password="$MESH_PASSWORD" --mysql-db="$MESH_MY_DB" ;;
        relay) printf '%s\n' "${SB_DIRECT[@]}" | sed "s/^--mysql-port=.*/--mysql-port=$RELAY_MY_PORT/" ;;
    esac
}

# sysbench_case CASE TARGET WORKLOAD PS_MODE
sysbench_case() {
    local case="$1" target="$2" workload="$3" ps_mode="$4" args
    mapfile -t args < <(sysbench_target_args "$target")
    measure sysbench "$case" "$target" \
        sysbench "$workload" "${args[@]}" --tables="$SB_TABLES" --table-size="$SB_TABLE_SIZE" \
        --threads="$THREADS" --time="$DURATION" --report-interval=0 --percentile=95 \
        --db-ps-mode="$ps_mode" run
}

# pgbench_case CASE TARGET PROTOCOL   (pgbench -S: one primary-key SELECT per transaction)
pgbench_case() {
    local case="$1" target="$2" protocol="$3" conn
    case "$target" in
        direct)    conn=(env PGPASSWORD= pgbench -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" "$BENCH_DB") ;;
        dbmesh)    conn=(env PGPASSWORD="$MESH_PASSWORD" pgbench -h 127.0.0.1 -p "$MESH_PG_PORT" -U "$MESH_USER" "$MESH_PG_DB") ;;
        pgbouncer) conn=(env PGPASSWORD= pgbench -h 127.0.0.1 -p "$PGB_PORT" -U "$PG_USER" "$BENCH_DB") ;;
        relay)     conn=(env PGPASSWORD= pgbench -h 127.0.0.1 -p "$RELAY_PG_PORT" -U "$PG_USER" "$BENCH_DB") ;;
    esac
    if [ "$target" = pgbouncer ] && [ "$protocol" = prepared ]; then
        not_run n/a "$case" "$target" "pgbouncer 1.18 transaction pooling keeps no named prepared statements"
        return
    fi
    measure pgbench "$case" "$target" \
        "${conn[@]}" -n -S -M "$protocol" -c "$THREADS" -j "$PGBENCH_JOBS" -T "$DURATION" \
        -l --sampling-rate=0.1 --log-prefix="$WORK/pglog/$case.$target.r$ROUND"
}

# Point selects through a logical database whose sysbench tables are split over
# two data sources (two real databases on the same MariaDB) by `id mod 2`: every
# SELECT is parsed, routed to one shard and rewritten. Compared with the same
# workload on the unsharded database directly.
sharded_point_select_case() {
    local case="$1" target="$2" ps_mode="$3" args
    if [ "$target" = dbmesh ]; then
        mapfile -t args < <(sysbench_target_args dbmesh | sed "s/^--mysql-db=.*/--mysql-db=$MESH_SHARDED_DB/")
    else
        mapfile -t args < <(sysbench_target_args "$target")
    fi
    measure sysbench "$case" "$target" \
        sysbench oltp_point_select "${args[@]}" --tables="$SB_TABLES" --table-size="$SB_TABLE_SIZE" \
        --threads="$THREADS" --time="$DURATION" --report-interval=0 --percentile=95 \
        --db-ps-mode="$ps_mode" run
}

# name | targets | function and its arguments
CASES=(
    "mysql.point_select.ps_auto     |direct dbmesh relay           |sysbench_case oltp_point_select auto"
    "mysql.point_select.ps_disable  |direct dbmesh relay           |sysbench_case oltp_point_select disable"
    "mysql.read_only.ps_auto        |direct dbmesh relay           |sysbench_case oltp_read_only auto"
    "mysql.read_only.ps_disable     |direct dbmesh relay           |sysbench_case oltp_read_only disable"
    "pg.select_only.simple          |direct dbmesh pgbouncer relay |pgbench_case simple"
    "pg.select_only.extended        |direct dbmesh pgbouncer relay |pgbench_case extended"
    "pg.select_only.prepared        |direct dbmesh pgbouncer relay |pgbench_case prepared"
    "mysql.sharded_2.point_select.ps_auto    |direct dbmesh |sharded_point_select_case auto"
    "mysql.sharded_2.point_select.ps_disable |direct dbmesh |sharded_point_select_case disable"
)

# Runs every selected case once per target, the targets in an order rotated
# by the round number, so neither side of an A/B pair always goes first.
run_round() {
    local line name targets call fn args n i t
    for line in "${CASES[@]}"; do
        IFS='|' read -r name targets call <<<"$line"
        name="${name// /}"
        [[ "$name" =~ $CASE_FILTER ]] || continue
        read -ra targets <<<"$targets"
        read -ra args <<<"$call"
        fn="${args[0]}"; args=("${args[@]:1}")
        n="${#targets[@]}"
        for ((i = 0; i < n; i++)); do
            t="${targets[$(((i + ROUND) % n))]}"
            ORDER=$((ORDER + 1))
            "$fn" "$name" "$t" "${args[@]}"
        done
    done
}

# -------------------------------------------------------------- metadata ----
write_meta() {
    M_COMMIT="$COMMIT" \
    M_LOAD="$LOADAVG_START" \
    M_IDLE_RSS="$DBMESH_IDLE_RSS_KB" \
    M_CPU="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" \
    M_OS="$(. /etc/os-release && echo "$PRETTY_NAME")" \
    V_MARIADB="$(my_sql 'SELECT VERSION()')" \
    V_PG="$(pg_sql 'SHOW server_version')" \
    V_SYSBENCH="$(sysbench --version | head -n 1)" \
    V_PGBENCH="$(pgbench --version | head -n 1)" \
    V_PGBOUNCER="$("$PGBOUNCER" --version | head -n 1)" \
    V_RUSTC="$(rustc --version 2>/dev/null || echo unknown)" \
    P_VALUES="$DURATION $ROUNDS $WARMUP $THREADS $PGBENCH_JOBS $SB_TABLES $SB_TABLE_SIZE $PG_SCALE" \
    python3 - "$WORK/meta.json" <<'PY'
import json, os, platform, sys
e = os.environ
mem_kb = int(next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal:")))
names = ["seconds_per_run", "rounds", "warmup_seconds", "client_connections", "pgbench_jobs",
         "sysbench_tables", "sysbench_table_size", "pgbench_scale"]
params = dict(zip(names, map(int, e["P_VALUES"].split())))
params.update(pgbench_log_sampling_rate=0.1, case_filter=e["CASE_FILTER"])
meta = {
    "started_utc": e["STARTED"],
    "quick": e["QUICK"] == "1",
    "dbmesh_commit": e["M_COMMIT"],
    "dbmesh_rss_after_start_kb": int(e["M_IDLE_RSS"] or 0),
    "machine": {
        "nproc": os.cpu_count(),
        "cpu_model": e["M_CPU"],
        "mem_total_gib": round(mem_kb / 1048576, 1),
        "kernel": platform.release(),
        "os": e["M_OS"],
        # 1/5/15-minute load averages when bench/run.sh started: well above 0
        # means something else was running on the machine.
        "loadavg_before": e["M_LOAD"],
    },
    "versions": {
        "mariadb": e["V_MARIADB"],
        "postgresql": e["V_PG"],
        "sysbench": e["V_SYSBENCH"],
        "pgbench": e["V_PGBENCH"],
        "pgbouncer": e["V_PGBOUNCER"],
        "rustc": e["V_RUSTC"],
    },
    "parameters": params,
}
json.dump(meta, open(sys.argv[1], "w"), indent=1)
PY
}

# ------------------------------------------------------------------- main ----
STARTED="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
LOADAVG_START="$(cut -d' ' -f1-3 /proc/loadavg)"
export STARTED QUICK CASE_FILTER
install_missing_tools
bash "$ROOT/integration/setup/services.sh"

WORK="$(mktemp -d /tmp/dbmesh-bench.XXXXXX)"
trap cleanup EXIT
trap 'exit 130' INT TERM
chmod 711 "$WORK"
mkdir -p "$WORK/out" "$WORK/pglog"

# The binary measured is a private copy, so a rebuild of target/ while the
# benchmark runs does not change what is measured.
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
if [ -n "${BENCH_REV:-}" ]; then
    COMMIT="$(git -C "$ROOT" rev-parse --short "$BENCH_REV^{commit}")" \
        || die "BENCH_REV=$BENCH_REV is not a commit"
    # One binary per commit, kept in target/bench-rev/bin for the next run.
    REV_BIN="$TARGET_DIR/bench-rev/bin/dbmesh-$COMMIT"
    if [ ! -x "$REV_BIN" ]; then
        REV_SRC="$TARGET_DIR/bench-rev/src"
        log "cargo build --release of $COMMIT (git archive into $REV_SRC)"
        rm -rf "$REV_SRC" && mkdir -p "$REV_SRC" "$(dirname "$REV_BIN")"
        git -C "$ROOT" archive "$COMMIT" | tar -x -C "$REV_SRC"
        # git archive dates files at their commit; an older commit's files would
        # look older than the last build and cargo would not rebuild them.
        find "$REV_SRC" -type f -exec touch {} +
        (cd "$REV_SRC" && CARGO_TARGET_DIR="$TARGET_DIR/bench-rev/target" cargo build --release --bin dbmesh)
        cp "$TARGET_DIR/bench-rev/target/release/dbmesh" "$REV_BIN"
    else
        log "dbmesh $COMMIT: using $REV_BIN, built by an earlier run"
    fi
    cp "$REV_BIN" "$WORK/dbmesh"
else
    COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    # Uncommitted changes to the code are part of what is measured: say so.
    [ -z "$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ] \
        || COMMIT="$COMMIT+dirty"
    log "cargo build --release (working tree, $COMMIT)"
    (cd "$ROOT" && cargo build --release --bin dbmesh)
    cp "$TARGET_DIR/release/dbmesh" "$WORK/dbmesh"
fi
RUNS="$WORK/runs.jsonl"
: >"$RUNS"

SB_DIRECT=(--db-driver=mysql --mysql-host="$MY_HOST" --mysql-port="$MY_PORT"
           --mysql-user="$MY_USER" --mysql-password= --mysql-db="$BENCH_DB")
prepare_mysql_data
prepare_mysql_shards
prepare_pg_data

read -r MESH_MY_PORT MESH_PG_PORT PGB_PORT RELAY_MY_PORT RELAY_PG_PORT <<<"$(free_ports 5)"
write_dbmesh_config
start_dbmesh
start_relays
DBMESH_IDLE_RSS_KB="$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$DBMESH_PID/status")"
start_pgbouncer

ORDER=0
if [ "$WARMUP" -gt 0 ]; then
    log "warm-up: ${WARMUP}s per case and target, not recorded"
    ROUND=0 DURATION="$WARMUP"
    run_round
fi
DURATION="$RUN_SECONDS"
for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
    log "round $ROUND of $ROUNDS (${DURATION}s per run, $THREADS client connections)"
    run_round
done

if alive "$DBMESH_PID"; then
    log "dbmesh: lifetime peak RSS $(peak_rss_kb "$DBMESH_PID") kB (last reset before the last run)"
fi
# dbmesh colours its log levels; strip the escapes before looking for them.
sed 's/\x1b\[[0-9;]*m//g' "$WORK/dbmesh.log" >"$WORK/dbmesh.plain.log"
if grep -qE ' (ERROR|WARN) ' "$WORK/dbmesh.plain.log"; then
    log "dbmesh logged warnings/errors (count, message):"
    grep -E ' (ERROR|WARN) ' "$WORK/dbmesh.plain.log" | sed -E 's/^[^ ]+ +//' \
        | sort | uniq -c | sort -rn | head -n 20
fi

write_meta
mkdir -p "$RESULTS_DIR"
suffix=""; [ "$QUICK" = 1 ] && suffix="-quick"
OUT="$RESULTS_DIR/$(date -u +%Y%m%dT%H%M%SZ)$suffix.json"
echo
python3 "$REPORT" summarize --runs "$RUNS" --meta "$WORK/meta.json" --out "$OUT" --fail-on-error \
    && rc=0 || rc=$?
echo
log "results: $OUT"
[ "$rc" -eq 0 ] || log "some runs failed: see above (exact commands included)"
exit "$rc"
