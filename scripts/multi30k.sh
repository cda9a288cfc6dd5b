#!/usr/bin/env bash
# The Multi30k recipe: train configs/multi30k.json (the small-data Transformer
# of Wu et al., 2021: 4+4 layers, d_model 128, d_ff 256, dropout 0.3, a 10k
# joint BPE) for up to 60 minutes, average the last 10 checkpoints, choose
# beam and length penalty on the validation set, then translate
# test_2016_flickr greedily and with the chosen beam, scored cased and lowercased.
# Usage: scripts/multi30k.sh [MULTI30K_DIR] [SRC] [TGT] [RUN_DIR] [extra aiayn-train args...]
#   defaults: ../shared/data/multi30k en de runs/multi30k-en-de
#   CONFIG=configs/small.json runs the earlier `small` recipe instead;
#   AVERAGE=best:5 averages the five best-validated checkpoints (needs train.keep_best).
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data/multi30k}
src=${2:-en}
tgt=${3:-de}
run=${4:-runs/multi30k-$src-$tgt}
config=${CONFIG:-configs/multi30k.json}
average=${AVERAGE:-last:10}
shift $(( $# < 4 ? $# : 4 ))
for f in train val test_2016_flickr; do
  for l in "$src" "$tgt"; do
    [ -f "$data/$f.$l" ] || { echo "multi30k.sh: missing $data/$f.$l" >&2; exit 2; }
  done
done
[ -f "$config" ] || { echo "multi30k.sh: missing config $config" >&2; exit 2; }
[ -x build/bin/aiayn-train ] || bash scripts/build.sh
build/bin/aiayn-train --config "$config" --save-dir "$run" \
  --set data.train_src="$data/train.$src" --set data.train_tgt="$data/train.$tgt" \
  --set data.valid_src="$data/val.$src" --set data.valid_tgt="$data/val.$tgt" "$@"
build/bin/aiayn-train --config "$config" --save-dir "$run" --average "$average"
# Beam and alpha by validation BLEU only; the test set is scored once, below.
build/bin/aiayn-translate --checkpoint "$run/averaged" --tune \
  --input "$data/val.$src" --reference "$data/val.$tgt"
for decoding in greedy chosen; do
  flags=$([ $decoding = greedy ] && echo --greedy || true)
  for case in cased lowercase; do
    lower=$([ $case = lowercase ] && echo --lowercase || true)
    echo "== $src-$tgt test_2016_flickr, averaged ($average), $decoding decoding, $case"
    build/bin/aiayn-translate --checkpoint "$run/averaged" $flags \
      --input "$data/test_2016_flickr.$src" --output "$run/test.$decoding.$tgt" \
      --reference "$data/test_2016_flickr.$tgt" $lower
  done
done
