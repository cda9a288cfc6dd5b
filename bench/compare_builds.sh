#!/usr/bin/env bash
# Two builds of aiayn side by side, for a refactoring's "benchmarks within
# noise": the same decoding and training runs, interleaved (A B A B ...) so
# that a drift of the machine hits both, reported as medians and B/A.
#   bash bench/compare_builds.sh A_BIN B_BIN [CHECKPOINT] [RUNS]
#   (A_BIN, B_BIN: folders holding aiayn-translate and aiayn-train;
#    CHECKPOINT default runs/m30k-bf16-en-de/averaged; RUNS default 5)
# Decoding: Multi30k test_2016_flickr (1,000 lines), greedy and beam 4, one
# thread, sentences/s as aiayn-translate reports it. Training: 40 updates
# of configs/small.json on Multi30k train, target tokens/s of the last 20.
set -euo pipefail
cd "$(dirname "$0")/.."
a=${1:?usage: bench/compare_builds.sh A_BIN B_BIN [CHECKPOINT] [RUNS]}
b=${2:?usage: bench/compare_builds.sh A_BIN B_BIN [CHECKPOINT] [RUNS]}
ckpt=${3:-runs/m30k-bf16-en-de/averaged}
runs=${4:-5}
data=${AIAYN_MULTI30K:-../shared/data/multi30k}
for f in "$a/aiayn-translate" "$b/aiayn-translate" "$a/aiayn-train" "$b/aiayn-train" "$data/test_2016_flickr.en" "$ckpt/model.pt"; do
  [ -e "$f" ] || { echo "compare_builds.sh: $f not found" >&2; exit 2; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

decode() {  # BIN ARGS... -> sentences/s
  "$1/aiayn-translate" -c "$ckpt" -i "$data/test_2016_flickr.en" -o "$work/out" --threads 1 "${@:2}" 2>&1 |
    sed -n 's/.* s: \([0-9.]*\) sentences\/s.*/\1/p'
}
train() {  # BIN -> target tokens/s over updates 21-40
  rm -rf "$work/train"
  "$1/aiayn-train" --config configs/small.json --save-dir "$work/train" --threads 2 \
    --set data.train_src="$data/train.en" --set data.train_tgt="$data/train.de" \
    --set data.spm_model="$ckpt/spm.model" --set train.max_steps=40 --set train.log_every=20 \
    --set train.valid_every=1000 --set train.save_every=1000 --set train.max_minutes=0 > /dev/null 2>&1
  python3 -c 'import json,sys; print([r["tgt_tok_s"] for r in map(json.loads, open(sys.argv[1])) if r.get("kind") == "train"][-1])' \
    "$work/train/metrics.jsonl"
}
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

echo "compare_builds: $(date -u +%F), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' ') model $(grep -m1 '^model\s' /proc/cpuinfo | cut -d: -f2 | tr -d ' '), A=$a B=$b, $runs runs each, interleaved"
printf '%-22s %12s %12s %7s\n' case A B B/A
for case in greedy beam4 train; do
  : > "$work/a" ; : > "$work/b"
  for _ in $(seq "$runs"); do
    for side in a b; do
      bin=$a; [ "$side" = b ] && bin=$b
      case $case in
        greedy) decode "$bin" --greedy ;;
        beam4) decode "$bin" --beam 4 --alpha 0.6 ;;
        train) train "$bin" ;;
      esac >> "$work/$side"
    done
  done
  ma=$(median < "$work/a"); mb=$(median < "$work/b")
  printf '%-22s %12.1f %12.1f %7.3f\n' "$case ($( [ $case = train ] && echo tgt tok/s || echo sent/s))" "$ma" "$mb" \
    "$(awk -v x="$ma" -v y="$mb" 'BEGIN {print y / x}')"
done
