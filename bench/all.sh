#!/usr/bin/env bash
# Every side-by-side benchmark, back to back, on a trained Multi30k `small`
# run directory (CONFIG=configs/small.json scripts/multi30k.sh makes one), then
# README's speed tables from this one run (OUT/tables.md, bench/tables.py):
#   translation  ours (default workers, --workers 1, --int8) and the cached
#                torch.nn reference (b) as it starts and tuned, greedy and beam 4
#   training     ours and the reference from the same initial weights and the
#                same batches, the reference twice (another dropout seed: the
#                noise), with the sgemm peak and model-FLOP utilisation
#   distributed  data-parallel training (docs/benchmarks.md; PARTS to skip)
#   scaling      decoding and training sweeps with a PNG (docs/benchmarks.md)
# Usage: bench/all.sh [RUN_DIR] [OUT_DIR]   (defaults: runs/multi30k-en-de runs/bench)
#   PARTS="translation training" runs only those (default: all four);
#   STEPS=120 training updates per side.
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-runs/multi30k-en-de}
out=${2:-runs/bench}
parts=${PARTS:-translation training distributed scaling}
steps=${STEPS:-120}
[ -d "$run/averaged" ] || { echo "bench/all.sh: $run/averaged missing (run scripts/multi30k.sh first)" >&2; exit 2; }
[ -x build/bin/aiayn-translate ] || { echo "bench/all.sh: build/bin missing (bash scripts/build.sh)" >&2; exit 2; }
mkdir -p "$out"
py=/usr/bin/python3
data=${DATA:-../shared/data/multi30k}
# The run's own language pair, from the corpus names it trained on (train.de -> de).
read -r src tgt < <($py -c 'import json, sys; d = json.load(open(sys.argv[1]))["data"]
print(d["train_src"].rsplit(".", 1)[-1], d["train_tgt"].rsplit(".", 1)[-1])' "$run/last/config.json")
for f in "$data/test_2016_flickr.$src" "$data/test_2016_flickr.$tgt" "$data/train.$src"; do
  [ -f "$f" ] || { echo "bench/all.sh: missing $f (DATA names the Multi30k directory)" >&2; exit 2; }
done
step() { echo "== $1 ($(date +%H:%M:%S))"; }
has() { [[ " $parts " == *" $1 "* ]]; }
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
family=$(lscpu | sed -n 's/^CPU family: *//p' | head -1)
model=$(lscpu | sed -n 's/^Model: *//p' | head -1)
commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!runs' 2>/dev/null || echo "+changes")
$py -c 'import json, sys; json.dump(dict(date=sys.argv[1], cpu=sys.argv[2], commit=sys.argv[3], run=sys.argv[4],
  pair=sys.argv[5]), open(sys.argv[6], "w"))' "$(date +%Y-%m-%d)" "$cpu family $family model $model" "$commit" "$run" \
  "$src-$tgt" "$out/meta.json"
if has translation; then
  step "translation"
  $py bench/translate_bench.py --checkpoint "$run/averaged" --json "$out/translate.json" \
    --input "$data/test_2016_flickr.$src" --reference "$data/test_2016_flickr.$tgt" \
    --sides ours,ours-1worker,ours-int8,torch-cache,torch-cache-tuned | tee "$out/translate.log"
fi
if has training; then
  step "training, same initial weights and batches"
  $py bench/train_bench.py --spm "$run/spm.model" --steps "$steps" --repeat 1 --same-init \
    --data "$data" --src "$src" --tgt "$tgt" \
    --sides ours,torch-tuned,torch-reseeded --json "$out/train.json" | tee "$out/train.log"
fi
if has distributed; then
  step "data-parallel"
  STEPS=60 ROUNDS=2 bash bench/distributed.sh "$data" | tee "$out/distributed.log"
fi
if has scaling; then
  step "scaling"
  $py bench/scaling.py --checkpoint "$run/averaged" --spm "$run/spm.model" --sentences 128 \
    --data "$data" --src "$src" --tgt "$tgt" \
    --png "$out/scaling.png" --json "$out/scaling.json" | tee "$out/scaling.log"
fi
if has translation && has training; then
  $py bench/tables.py "$out" > "$out/tables.md"
  step "done: README's tables in $out/tables.md"
else
  step "done: figures in $out (README's tables need the translation and training parts)"
fi
