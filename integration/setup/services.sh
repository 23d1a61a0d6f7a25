#!/usr/bin/env bash
# Install-if-missing, configure and start everything dbmesh's tests and quick
# start need on a Debian/Ubuntu machine:
#
#   * MariaDB   at 127.0.0.1:3306, root with an empty password over TCP
#   * PostgreSQL at 127.0.0.1:5432, user postgres with trust auth,
#     max_prepared_transactions = 100; psql and pgbench
#   * sysbench (the MySQL load tests); openssl (RSA test keys)
#   * cargo (checked only: it must already be installed)
#   * python3 + PyMySQL, mysql-connector-python, cryptography, psycopg, SQLAlchemy
#   * node + npm and the mysql2/pg drivers in integration/drivers/node_modules
#
# Idempotent: when everything is in place it only checks, in a few seconds.
# Installing and (re)configuring needs root; the fast path does not.
# Works without systemd (containers, CI): daemons are started directly.
#
# Environment:
#   SERVICES_TIMEOUT  seconds to wait for each server to come up (default 60)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TIMEOUT="${SERVICES_TIMEOUT:-60}"

MY_HOST=127.0.0.1
MY_PORT=3306
PG_HOST=127.0.0.1
PG_PORT=5432
PG_MAX_PREPARED=100

export DEBIAN_FRONTEND=noninteractive

log() { printf '[services] %s\n' "$*"; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

need_root() {
    [ "$(id -u)" -eq 0 ] || die "$1 needs root; re-run as root (e.g. sudo bash $0)"
}

have_systemd() { [ -d /run/systemd/system ]; }

APT_UPDATED=0
apt_install() {
    need_root "installing $*"
    command -v apt-get >/dev/null || die "apt-get not found: install $* by hand (Debian/Ubuntu expected)"
    if [ "$APT_UPDATED" -eq 0 ]; then
        log "apt-get update"
        apt-get update -qq >/dev/null
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Waits until "$@" succeeds, polling every half second, for at most $TIMEOUT s.
wait_for() {
    local what="$1"; shift
    local deadline=$((SECONDS + TIMEOUT))
    until "$@" >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            return 1
        fi
        sleep 0.5
    done
    log "$what accepts connections"
}

# ---------------------------------------------------------------- rust ----
if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null || die "cargo not found. Install a Rust toolchain (rustup: https://rustup.rs, \
or as a fallback Debian's 'apt-get install cargo' if it is recent enough for Cargo.lock) and re-run."
log "cargo: $(cargo --version)"

# ------------------------------------------------------------ packages ----
missing=()
{ [ -x /usr/sbin/mariadbd ] || [ -x /usr/sbin/mysqld ]; } || missing+=(mariadb-server)
{ command -v mariadb >/dev/null || command -v mysql >/dev/null; } || missing+=(mariadb-client)
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || missing+=(postgresql)
{ command -v psql >/dev/null && command -v pg_isready >/dev/null; } || missing+=(postgresql-client)
# pgbench (the PostgreSQL load tests): in Debian's server package, behind a client wrapper.
pgbench --version >/dev/null 2>&1 || missing+=(postgresql)
command -v sysbench >/dev/null || missing+=(sysbench)
command -v python3 >/dev/null || missing+=(python3 python3-pip)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
# openssl: RSA key pairs for the caching_sha2_password and TLS tests.
command -v openssl >/dev/null || missing+=(openssl)
if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
else
    log "packages: mariadb, postgresql, sysbench, openssl, python3, node, npm present"
fi

# ------------------------------------------------------------- mariadb ----
MYSQL="$(command -v mariadb || command -v mysql)"
MARIADBD=/usr/sbin/mariadbd
[ -x "$MARIADBD" ] || MARIADBD=/usr/sbin/mysqld

# Up = something accepts TCP on the port. (`mariadb-admin ping` is not enough:
# it fails when the server rejects the client's host before authentication.)
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }
my_ping() { port_open "$MY_HOST" "$MY_PORT"; }
my_tcp_root() { "$MYSQL" --protocol=tcp -h"$MY_HOST" -P"$MY_PORT" -uroot --connect-timeout=5 -Nse 'SELECT 1' </dev/null; }

if ! my_ping >/dev/null 2>&1; then
    need_root "starting MariaDB"
    log "mariadb: starting"
    if have_systemd; then
        systemctl start mariadb
    else
        datadir="$("$MARIADBD" --verbose --help 2>/dev/null | awk '$1 == "datadir" { print $2; exit }')"
        datadir="${datadir:-/var/lib/mysql/}"
        install -d -o mysql -g mysql -m 0755 /run/mysqld
        install -d -o mysql -g adm -m 2750 /var/log/mysql
        if [ ! -d "${datadir%/}/mysql" ]; then
            log "mariadb: initialising $datadir"
            install -d -o mysql -g mysql -m 0700 "$datadir"
            "$(command -v mariadb-install-db || command -v mysql_install_db)" \
                --user=mysql --datadir="$datadir" --skip-test-db \
                --auth-root-authentication-method=socket >/dev/null
        fi
        # --background detaches (setsid) and points stdio at /dev/null, so the
        # daemon never holds the caller's pipes open.
        start-stop-daemon --start --oknodo --background --exec "$MARIADBD" -- \
            --user=mysql --log-error=/var/log/mysql/error.log
    fi
    wait_for "mariadb ($MY_HOST:$MY_PORT)" my_ping || {
        tail -n 20 /var/log/mysql/error.log >&2 2>/dev/null || true
        die "MariaDB did not accept TCP connections on $MY_HOST:$MY_PORT within ${TIMEOUT}s \
(see /var/log/mysql/error.log; check bind-address/port/skip-networking in /etc/mysql)"
    }
else
    log "mariadb: running on $MY_HOST:$MY_PORT"
fi

if ! my_tcp_root >/dev/null 2>&1; then
    need_root "configuring MariaDB root login"
    log "mariadb: allowing root over TCP with an empty password"
    # Debian's root@localhost is unix_socket only; keep socket login working
    # and add an empty native password, for every host a TCP client maps to.
    "$MYSQL" --protocol=socket -uroot </dev/null -e "
        ALTER USER 'root'@'localhost'
            IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket;
        CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
        ALTER USER 'root'@'127.0.0.1' IDENTIFIED VIA mysql_native_password USING PASSWORD('');
        GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
        CREATE USER IF NOT EXISTS 'root'@'::1';
        ALTER USER 'root'@'::1' IDENTIFIED VIA mysql_native_password USING PASSWORD('');
        GRANT ALL PRIVILEGES ON *.* TO 'root'@'::1' WITH GRANT OPTION;
        FLUSH PRIVILEGES;" \
        || die "could not log in to MariaDB as root over its unix socket to fix root's TCP login"
    my_tcp_root >/dev/null || die "root still cannot log in to MariaDB over TCP at $MY_HOST:$MY_PORT"
fi
log "mariadb: root@$MY_HOST (empty password) ok"

# ---------------------------------------------------------- postgresql ----
PG_VERSION="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1 || true)"
if [ -z "$PG_VERSION" ] || [ ! -d "/etc/postgresql/$PG_VERSION/main" ]; then
    need_root "creating the PostgreSQL cluster"
    PG_VERSION="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
    log "postgresql: creating cluster $PG_VERSION/main"
    pg_createcluster --port="$PG_PORT" "$PG_VERSION" main >/dev/null
fi
PG_CONF_DIR="/etc/postgresql/$PG_VERSION/main"

pg_ready() { pg_isready -q -h"$PG_HOST" -p"$PG_PORT" -t 2; }
pg_login() { psql -X -w -h"$PG_HOST" -p"$PG_PORT" -U postgres -d postgres -Atc "${1:-SELECT 1}" </dev/null; }

pg_ctl_cluster() {
    install -d -o postgres -g postgres -m 2775 /run/postgresql
    if have_systemd; then
        systemctl "$1" "postgresql@$PG_VERSION-main"
    else
        pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" main "$1"
    fi
}

pg_wait() {
    wait_for "postgresql $PG_VERSION ($PG_HOST:$PG_PORT)" pg_ready || {
        pg_lsclusters >&2 || true
        tail -n 20 "/var/log/postgresql/postgresql-$PG_VERSION-main.log" >&2 2>/dev/null || true
        die "PostgreSQL did not accept TCP connections on $PG_HOST:$PG_PORT within ${TIMEOUT}s \
(check port and listen_addresses in $PG_CONF_DIR/postgresql.conf)"
    }
}

if ! pg_ready; then
    need_root "starting PostgreSQL"
    log "postgresql: starting $PG_VERSION/main"
    pg_ctl_cluster start
    pg_wait
else
    log "postgresql: running on $PG_HOST:$PG_PORT"
fi

if ! pg_login >/dev/null 2>&1; then
    need_root "configuring PostgreSQL authentication"
    hba="$PG_CONF_DIR/pg_hba.conf"
    marker='# dbmesh integration: trust on loopback'
    if ! grep -qF "$marker" "$hba"; then
        log "postgresql: trust auth on loopback in $hba"
        # First matching line wins, so put ours first; keep owner and mode.
        tmp="$(mktemp)"
        {
            echo "$marker (added by integration/setup/services.sh)"
            echo "host    all    all    127.0.0.1/32    trust"
            echo "host    all    all    ::1/128         trust"
            echo
            cat "$hba"
        } >"$tmp"
        cat "$tmp" >"$hba"
        rm -f "$tmp"
    fi
    pg_ctl_cluster reload
    for _ in 1 2 3 4 5 6 7 8 9 10; do pg_login >/dev/null 2>&1 && break; sleep 0.5; done
    pg_login >/dev/null || die "user postgres still cannot log in over TCP at $PG_HOST:$PG_PORT \
(check $hba and that the role postgres exists)"
fi
log "postgresql: postgres@$PG_HOST (trust) ok"

current="$(pg_login 'SHOW max_prepared_transactions')"
if [ "$current" != "$PG_MAX_PREPARED" ]; then
    need_root "restarting PostgreSQL"
    log "postgresql: max_prepared_transactions $current -> $PG_MAX_PREPARED (restart)"
    pg_login "ALTER SYSTEM SET max_prepared_transactions = $PG_MAX_PREPARED" >/dev/null
    pg_ctl_cluster restart
    pg_wait
    current="$(pg_login 'SHOW max_prepared_transactions')"
    [ "$current" = "$PG_MAX_PREPARED" ] \
        || die "max_prepared_transactions is still $current after restart (is it set in a file that overrides postgresql.auto.conf?)"
fi
log "postgresql: max_prepared_transactions = $current"

# -------------------------------------------------------------- python ----
if ! python3 -m pip --version >/dev/null 2>&1; then
    if [ "$(command -v python3)" = /usr/bin/python3 ]; then
        apt_install python3-pip
    else
        log "python: bootstrapping pip with ensurepip"
        python3 -m ensurepip --upgrade >/dev/null
    fi
fi

py_missing=()
py_need() { python3 -c "import $1" >/dev/null 2>&1 || py_missing+=("$2"); }
py_need pymysql PyMySQL
py_need mysql.connector mysql-connector-python
py_need cryptography cryptography
py_need psycopg 'psycopg[binary]'
py_need sqlalchemy SQLAlchemy
if [ "${#py_missing[@]}" -gt 0 ]; then
    log "python: pip install ${py_missing[*]}"
    # Debian's own python3 is "externally managed" (PEP 668); these are test
    # dependencies of this machine, so install them anyway.
    PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore \
        python3 -m pip install --quiet --disable-pip-version-check "${py_missing[@]}"
    for m in pymysql mysql.connector cryptography psycopg sqlalchemy; do
        python3 -c "import $m" || die "python module $m still does not import after pip install"
    done
fi
log "python: $(python3 --version 2>&1) with PyMySQL, mysql-connector, cryptography, psycopg, SQLAlchemy"

# ---------------------------------------------------------------- node ----
DRIVERS="$ROOT/integration/drivers"
node_ok() { (cd "$DRIVERS" && node -e "require('mysql2'); require('pg')") >/dev/null 2>&1; }
if ! node_ok; then
    log "node: npm ci in integration/drivers"
    (cd "$DRIVERS" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    node_ok || die "node cannot load mysql2/pg from $DRIVERS/node_modules after npm ci"
fi
log "node: $(node --version) with mysql2, pg"

log "all services ready"
