#!/usr/bin/env bash
# The project's one test command: formatting and lints, then every test of the workspace
# (unit, integration and doc tests, all features) against real Apache Kafka, FerretDB and
# InfluxDB, which scripts/services.sh installs (cached in ~/.cache/ldd), starts, and which
# this script always stops again, also on failure or Ctrl-C.
#
# Extra arguments go to `cargo test`, e.g. `scripts/test.sh -p ldd-core` or
# `scripts/test.sh -p ldd-sources --test mongo`; the API fuzzing phase runs only without
# them (scripts/api_fuzz.sh runs it alone). Fails when cargo or the fuzzing fails.
set -euo pipefail
cd "$(dirname "$0")/.."

phase() { printf '\n==== %s ====\n' "$*"; }

phase "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --all-features -- -D warnings

# Compile before starting the services, so that they do not sit idle during the build.
phase "build tests"
cargo test --workspace --all-features --no-run

# The Parquet test (crates/ldd-bin/tests/parquet.rs) reads ldd's files back with an
# independent reader, pyarrow, and the API fuzzing phase (scripts/api_fuzz.sh) runs
# schemathesis; both live in a virtualenv cached next to the services' builds, and pip runs
# only when a pinned version is not there yet.
phase "pyarrow and schemathesis (Python tools of the tests)"
python_tools=(pyarrow==26.0.1 schemathesis==4.32.5)
venv="${LDD_CACHE_DIR:-$HOME/.cache/ldd}/venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
for tool in "${python_tools[@]}"; do
  if ! "$venv/bin/python" -c 'import sys, importlib.metadata as m; sys.exit(m.version(sys.argv[1]) != sys.argv[2])' \
    "${tool%%==*}" "${tool##*==}" 2>/dev/null; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$tool"
  fi
done
export LDD_TEST_PYTHON="$venv/bin/python"

# shellcheck disable=SC2317 # called by the trap
on_exit() {
  local status=$?
  phase "stopping services"
  scripts/services.sh stop || { [ "$status" -ne 0 ] || status=1; }
  exit "$status"
}
trap on_exit EXIT

phase "starting services"
scripts/services.sh start
eval "$(scripts/services.sh env)"

# The tests that need a service are #[ignore]d so that a plain `cargo test` stays hermetic;
# here they run too. --include-ignored goes after the caller's own test-binary arguments.
phase "tests (including those that need the services)"
# The whole workspace unless the caller picked packages with -p/--package.
scope=(--workspace)
has_separator=0
for arg in "$@"; do
  [ "$arg" != "--" ] || { has_separator=1; break; }
  case "$arg" in -p* | --package*) scope=() ;; esac
done
args=("$@")
[ "$has_separator" = 1 ] || args+=(--)
status=0
cargo test "${scope[@]}" --all-features "${args[@]}" --include-ignored || status=$?

# The OpenAPI document is the contract: schemathesis against a live `ldd serve` built by the
# test build above (target/debug/ldd). It needs none of the services.
# A run limited by arguments may not have rebuilt the binary, so only whole runs fuzz.
phase "API fuzzing (schemathesis against ldd serve)"
if [ "$#" -eq 0 ]; then
  LDD_FUZZ_PYTHON="$venv/bin/python" scripts/api_fuzz.sh || status=$?
else
  echo "skipped: arguments were given (scripts/api_fuzz.sh runs it alone)"
fi
exit "$status"
