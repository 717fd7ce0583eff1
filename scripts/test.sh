#!/usr/bin/env bash
# Runs the whole test suite: `bash scripts/test.sh`.
#
# Extra arguments go to `cargo test` (e.g. `bash scripts/test.sh --test calls`).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace --all-features "$@"
