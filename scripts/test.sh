#!/usr/bin/env bash
# The project's one test command: formatting and lints, then every test (unit, integration,
# doc tests; all features) against real Apache Kafka, FerretDB and InfluxDB, which this
# script installs (cached in ~/.cache/ldd), starts, and always stops again.
#
# Extra arguments go to `cargo test` (e.g. scripts/test.sh -p ldd-core).
set -euo pipefail
cd "$(dirname "$0")/.."

phase() { printf '\n==== %s ====\n' "$*"; }

phase "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --all-features -- -D warnings

phase "build"
cargo test --workspace --all-features --no-run

phase "services"
trap 'phase "stopping services"; scripts/services.sh stop' EXIT
scripts/services.sh start
eval "$(scripts/services.sh env)"

# The real-service tests are `#[ignore]`d for plain `cargo test`; here they all run, and
# each fails (never skips) when its service variable is missing or the service is down.
phase "tests (including the real-service tests)"
cargo test --workspace --all-features "$@" -- --include-ignored
