#!/usr/bin/env bash
# Quick start: sets up MariaDB/PostgreSQL (integration/setup/services.sh),
# creates the demo databases, builds dbmesh and runs it in the foreground
# with docs/examples/quickstart.toml. Stop it with Ctrl-C.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CONFIG=docs/examples/quickstart.toml

if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi

[ -f "$CONFIG" ] || { echo "[quickstart] ERROR: $CONFIG not found" >&2; exit 1; }

bash integration/setup/services.sh

echo "[quickstart] demo database shop_ds_0 on MariaDB (127.0.0.1:3306)"
mariadb --protocol=tcp -h127.0.0.1 -P3306 -uroot </dev/null \
    -e 'CREATE DATABASE IF NOT EXISTS shop_ds_0'

echo "[quickstart] demo database shop_ds_0 on PostgreSQL (127.0.0.1:5432)"
if [ "$(psql -X -w -h127.0.0.1 -p5432 -U postgres -d postgres -Atc \
        "SELECT 1 FROM pg_database WHERE datname = 'shop_ds_0'" </dev/null)" != 1 ]; then
    psql -X -w -h127.0.0.1 -p5432 -U postgres -d postgres -q </dev/null \
        -c 'CREATE DATABASE shop_ds_0'
fi

echo "[quickstart] cargo build --release"
cargo build --release

cat <<'MSG'

dbmesh is starting in the foreground (Ctrl-C stops it). From another terminal:

  MySQL:      mariadb -h127.0.0.1 -P3307 -uapp -papp-secret shop
  PostgreSQL: psql "postgres://app:app-secret@127.0.0.1:6432/shop_pg"

MSG
exec target/release/dbmesh --config "$CONFIG"
