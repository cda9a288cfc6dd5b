#!/usr/bin/env bash
# What BPE-dropout costs the training loop, before and after its draw moved
# to a thread of its own: configs/multi30k.json on Multi30k en-de, the same
# tokenizer and batches, A_BIN and B_BIN (folders holding aiayn-train) with
# data.bpe_dropout 0.1, and A without BPE-dropout as the floor; interleaved
# RUNS times so that a drift of the machine hits every side. Reports the
# median updates/s over updates 50-STEPS (wall clock, from metrics.jsonl)
# and the ratios. The test split is never read.
# Usage: bench/bpe_dropout.sh A_BIN B_BIN [RUNS]
#   env: STEPS=200 PRECISION=bf16|fp32 (default: bf16 with AVX512_BF16 or AMX, as the recipe)
set -euo pipefail
cd "$(dirname "$0")/.."
a=${1:?usage: bench/bpe_dropout.sh A_BIN B_BIN [RUNS]}
b=${2:?usage: bench/bpe_dropout.sh A_BIN B_BIN [RUNS]}
runs=${3:-3}
steps=${STEPS:-200}
data=${AIAYN_MULTI30K:-../shared/data/multi30k}
for f in "$a/aiayn-train" "$b/aiayn-train" "$data/train.en" "$data/train.de"; do
  [ -e "$f" ] || { echo "bpe_dropout.sh: $f not found" >&2; exit 2; }
done
precision=${PRECISION:-$(grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo && echo bf16 || echo fp32)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
common=(--config configs/multi30k.json --threads 2 --set "data.train_src=$data/train.en"
        --set "data.train_tgt=$data/train.de" --set data.valid_src= --set data.valid_tgt=
        --set train.max_minutes=0 --set train.log_every=50 --set train.save_every=100000
        --set "train.precision=$precision")
"$a/aiayn-train" "${common[@]}" --set train.max_steps=1 --save-dir "$work/spm" > /dev/null 2>&1
common+=(--set "data.spm_model=$work/spm/spm.model")

rate() {  # BIN P -> updates/s between update 50 and the last
  rm -rf "$work/run"
  "$1/aiayn-train" "${common[@]}" --set "train.max_steps=$steps" --set "data.bpe_dropout=$2" \
    --save-dir "$work/run" > /dev/null 2>&1
  python3 -c 'import json,sys
t = {r["step"]: r["time"] for r in map(json.loads, open(sys.argv[1])) if r.get("kind") == "train"}
last = max(t); print((last - 50) / (t[last] - t[50]))' "$work/run/metrics.jsonl"
}
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

echo "bpe_dropout: $(date -u +%F), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' ') model $(grep -m1 '^model\s' /proc/cpuinfo | cut -d: -f2 | tr -d ' '), $precision, A=$a B=$b, $runs runs each, interleaved, updates 50-$steps"
: > "$work/plain" ; : > "$work/a" ; : > "$work/b"
for i in $(seq 1 "$runs"); do
  rate "$a" 0 >> "$work/plain"
  rate "$a" 0.1 >> "$work/a"
  rate "$b" 0.1 >> "$work/b"
done
plain=$(median < "$work/plain") ra=$(median < "$work/a") rb=$(median < "$work/b")
printf '%-34s %10s\n' case "updates/s"
printf '%-34s %10.3f\n' "A, no BPE-dropout" "$plain" "A, bpe_dropout 0.1" "$ra" "B, bpe_dropout 0.1" "$rb"
awk -v p="$plain" -v a="$ra" -v b="$rb" 'BEGIN {
  printf "B/A with BPE-dropout: %.2fx; share of the no-dropout rate: A %.0f%%, B %.0f%%\n", b / a, 100 * a / p, 100 * b / p }'
