#!/usr/bin/env bash
# The main job (for now): install, build, and print the paper's base and big
# models as built by the toolkit, with a 37,000-token joint vocabulary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
for config in base big; do
  build/bin/aiayn-train --config configs/$config.json --vocab 37000 --summary
done
