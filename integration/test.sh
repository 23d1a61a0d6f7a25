#!/usr/bin/env bash
# The one test command: sets up MariaDB/PostgreSQL and the client drivers
# (integration/setup/services.sh), builds every target, runs every test.
# Runnable from any directory; exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi

bash integration/setup/services.sh

echo "[test] cargo build --workspace --all-targets"
cargo build --workspace --all-targets

# The whole suite takes a few minutes; the bound turns a hang into a failure with output,
# well inside CI's limit, instead of a silent time-out.
echo "[test] cargo test --workspace"
timeout --foreground 45m cargo test --workspace
