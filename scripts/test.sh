#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
cd build
ctest --output-on-failure --timeout 900 -j "${JOBS:-1}"
