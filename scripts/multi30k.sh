#!/usr/bin/env bash
# The Multi30k recipe: train the `small` model, average the last checkpoints,
# translate test_2016_flickr with beam 4, and score it (cased and lowercased).
# Usage: scripts/multi30k.sh [MULTI30K_DIR] [SRC] [TGT] [RUN_DIR] [extra aiayn-train args...]
#   defaults: ../shared/data/multi30k en de runs/multi30k-en-de
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data/multi30k}
src=${2:-en}
tgt=${3:-de}
run=${4:-runs/multi30k-$src-$tgt}
shift $(( $# < 4 ? $# : 4 ))
for f in train val test_2016_flickr; do
  for l in "$src" "$tgt"; do
    [ -f "$data/$f.$l" ] || { echo "multi30k.sh: missing $data/$f.$l" >&2; exit 2; }
  done
done
[ -x build/bin/aiayn-train ] || bash scripts/build.sh
build/bin/aiayn-train --config configs/small.json --save-dir "$run" \
  --set data.train_src="$data/train.$src" --set data.train_tgt="$data/train.$tgt" \
  --set data.valid_src="$data/val.$src" --set data.valid_tgt="$data/val.$tgt" "$@"
build/bin/aiayn-train --config configs/small.json --save-dir "$run" --average 5
for beam in 1 4; do
  for case in cased lowercase; do
    flag=$([ $case = lowercase ] && echo --lowercase || true)
    echo "== $src-$tgt test_2016_flickr, averaged, beam $beam, $case"
    build/bin/aiayn-translate --checkpoint "$run/averaged" --beam $beam \
      --input "$data/test_2016_flickr.$src" --output "$run/test.beam$beam.$tgt" \
      --reference "$data/test_2016_flickr.$tgt" $flag
  done
done
