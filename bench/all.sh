#!/usr/bin/env bash
# Every side-by-side benchmark, back to back, on a trained Multi30k `small`
# run directory (scripts/multi30k.sh makes one): translation (ours and the
# PyTorch references, greedy and beam 4), training (ours and the reference
# from the same initial weights, with the sgemm peak and model-FLOP
# utilisation), data-parallel training, and the scaling sweeps (PNG).
# Usage: bench/all.sh [RUN_DIR] [OUT_DIR]   (defaults: runs/multi30k-en-de runs/bench)
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-runs/multi30k-en-de}
out=${2:-runs/bench}
[ -d "$run/averaged" ] || { echo "bench/all.sh: $run/averaged missing (run scripts/multi30k.sh first)" >&2; exit 2; }
mkdir -p "$out"
py=/usr/bin/python3
step() { echo "== $1 ($(date +%H:%M:%S))"; }
step "translation"
$py bench/translate_bench.py --checkpoint "$run/averaged" --json "$out/translate.json" | tee "$out/translate.log"
step "training, same initial weights"
$py bench/train_bench.py --spm "$run/spm.model" --steps 200 --repeat 1 --same-init \
  --sides ours,ours-untuned,torch,torch-tuned,torch-reseeded --json "$out/train.json" | tee "$out/train.log"
step "data-parallel"
STEPS=60 ROUNDS=2 bash bench/distributed.sh | tee "$out/distributed.log"
step "scaling"
$py bench/scaling.py --checkpoint "$run/averaged" --spm "$run/spm.model" --sentences 128 \
  --png "$out/scaling.png" --json "$out/scaling.json" | tee "$out/scaling.log"
step "done: figures in $out"
