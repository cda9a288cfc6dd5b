#!/usr/bin/env bash
# The main job: the whole toolkit, end to end, on data it makes itself.
#   1. installs what is missing and builds (scripts/build.sh);
#   2. writes a synthetic corpus of dates in many human forms and four
#      languages, paired with ISO 8601 (aiayn-dates; held-out test split);
#   3. trains a SentencePiece model and a small Transformer on it (aiayn-train);
#   4. translates the test split and prints BLEU and exact-match accuracy
#      (aiayn-translate);
#   5. dumps the attention of a few examples as JSON Lines and writes the
#      HTML viewer (aiayn-attention).
# About 3-3.5 minutes after the build on 2 cores (docs/timings.md, per CPU).
# Usage: scripts/demo.sh [OUT_DIR]  (default runs/demo)
# Environment: DEMO_SKIP_BUILD=1 uses the binaries in ${AIAYN_BIN:-build/bin} as
# they are; DEMO_STEPS=N trains N updates instead of configs/demo.json's
# 1,200 (any N >= 1: training validates its last update, so model/best exists).
# Progress shows as it happens: on a terminal aiayn-train draws its live bar;
# piped or logged, every line passes through as soon as it is written.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/demo}
bin=${AIAYN_BIN:-build/bin}
start=$SECONDS

# A re-run replaces an earlier demo, and nothing else.
if [ -e "$out" ]; then
  if [ ! -e "$out/.aiayn-demo" ]; then
    echo "demo.sh: $out exists and is not a demo directory; give another OUT_DIR" >&2
    exit 2
  fi
  rm -rf "$out"
fi
[ "${DEMO_SKIP_BUILD:-0}" = 1 ] || bash scripts/build.sh
mkdir -p "$out"
touch "$out/.aiayn-demo"

echo "== 1/4 corpus: dates in many forms -> ISO 8601"
"$bin/aiayn-dates" --out "$out/data" --train 40000 --valid 500 --test 1000
paste "$out/data/train.src" "$out/data/train.tgt" | awk 'NR <= 4' | sed 's/^/   /; s/\t/  ->  /'

echo "== 2/4 training (configs/demo.json)"
steps=()
[ -z "${DEMO_STEPS:-}" ] || steps=(--set "train.max_steps=$DEMO_STEPS")
train=("$bin/aiayn-train" --config configs/demo.json --save-dir "$out/model"
  --set data.train_src="$out/data/train.src" --set data.train_tgt="$out/data/train.tgt"
  --set data.valid_src="$out/data/valid.src" --set data.valid_tgt="$out/data/valid.tgt"
  "${steps[@]}")
if [ -t 1 ]; then
  "${train[@]}"  # unpiped, so that aiayn-train sees the terminal and draws its bar
else
  # Line-buffered filters: each progress line appears as it is written.
  "${train[@]}" 2>&1 | grep --line-buffered -v "config: {" | sed -u 's/^/   /'
fi
model="$out/model/best"
if [ ! -e "$model" ]; then
  echo "   (no validated checkpoint: translating $out/model/last instead)"
  model="$out/model/last"
fi

echo "== 3/4 translating the held-out test split (beam 4, best checkpoint by validation BLEU)"
"$bin/aiayn-translate" --checkpoint "$model" --beam 4 --input "$out/data/test.src" \
  --output "$out/test.hyp" --reference "$out/data/test.tgt" 2>&1 | tee "$out/test.score" | sed -u 's/^/   /'
paste "$out/data/test.src" "$out/test.hyp" | awk 'NR <= 5' | sed 's/^/   /; s/\t/  ->  /'

echo "== 4/4 attention of six test sentences"
# One sentence of each of six styles, so the viewer shows the variety.
awk 'NR <= 200' "$out/data/test.src" | awk '
  /^[A-Z][a-z]+day, / && !a++ || /^[0-9][0-9]\.[0-9][0-9]\./ && !b++ || /^le / && !c++ ||
  / de / && !d++ || /^[a-z]+\. / && !e++ || /^[0-9][0-9]\/[0-9][0-9]\/[0-9][0-9]$/ && !f++' \
  > "$out/examples.src"
"$bin/aiayn-attention" --checkpoint "$model" --source "$out/examples.src" \
  --output "$out/attention.jsonl" --html "$out/attention.html" 2>&1 | sed -u 's/^/   /'

echo
echo "demo finished in $(( SECONDS - start )) s; everything is in $out/:"
echo "   data/{train,valid,test}.{src,tgt}  the generated corpus"
echo "   model/                             checkpoints, spm.model, train.log, metrics.jsonl"
echo "   test.hyp, test.score               translations of data/test.src and their scores"
echo "   attention.jsonl, attention.html    attention maps (open the .html in a browser)"
grep -E "^(BLEU|exact match)" "$out/test.score" | sed 's/^/   /'
