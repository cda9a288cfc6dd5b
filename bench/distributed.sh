#!/usr/bin/env bash
# Data-parallel throughput on this machine: the `small` config on Multi30k
# (en-de unless told), 2 ranks x 1 thread (c10d/Gloo over 127.0.0.1) against 1 process x 2
# threads, each for STEPS updates with the same tokenizer, alternated ROUNDS
# times. Prints the median target tokens/s of each after warm-up, the ratio,
# and the gradient bytes each rank sends per update.
# Usage: bench/distributed.sh [MULTI30K_DIR [SRC TGT]]   (env: STEPS=60 ROUNDS=2; en de)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data/multi30k}
steps=${STEPS:-60}
rounds=${ROUNDS:-2}
src=${2:-en}
tgt=${3:-de}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
common=(--config configs/small.json --set "data.train_src=$data/train.$src"
        --set "data.train_tgt=$data/train.$tgt" --set train.max_minutes=0
        --set "train.max_steps=$steps" --set train.log_every=10 --set train.save_every=100000)
# One tokenizer for every run (trained once, by the first).
build/bin/aiayn-train "${common[@]}" --set train.max_steps=1 --save-dir "$work/spm" > /dev/null
common+=(--set "data.spm_model=$work/spm/spm.model")
for round in $(seq "$rounds"); do
  echo "round $round: 1 process x 2 threads" >&2
  build/bin/aiayn-train "${common[@]}" --threads 2 --save-dir "$work/single$round" > /dev/null
  echo "round $round: 2 ranks x 1 thread" >&2
  build/bin/aiayn-train "${common[@]}" --nproc 2 --threads 1 --save-dir "$work/pair$round" > /dev/null
done
/usr/bin/python3 - "$work" "$rounds" <<'EOF'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
def rates(kind):
    out = []
    for r in range(1, rounds + 1):
        for line in open(f"{work}/{kind}{r}/metrics.jsonl"):
            m = json.loads(line)
            if m.get("kind") == "train" and m["step"] > 10:  # after warm-up
                out.append(m["tgt_tok_s"])
    return out
single, pair = statistics.median(rates("single")), statistics.median(rates("pair"))
params = 7_577_600  # the small config with the 8k joint vocabulary (aiayn-train --summary)
print(f"1 process x 2 threads: median {single:.0f} target tokens/s")
print(f"2 ranks x 1 thread:    median {pair:.0f} target tokens/s (an update is 2 batches)")
print(f"ratio (2 ranks / 1 process): {pair / single:.2f}")
print(f"all-reduce volume per update: {params * 4 / 2**20:.1f} MiB of fp32 gradients per rank")
EOF
