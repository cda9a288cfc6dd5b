#!/usr/bin/env bash
# Head importance (Michel et al., 2019; Voita et al., 2019): the validation
# BLEU of a checkpoint with each attention head masked alone, and per-head
# statistics of its attention maps, drawn as one heatmap PNG.
#
# Usage: scripts/head_importance.sh CHECKPOINT VALID_SRC VALID_REF OUT_DIR [MAX_SENTENCES]
#   Translates VALID_SRC greedily once unmasked and once per head
#   (aiayn-translate --mask-heads KIND:LAYER:HEAD), scoring cased BLEU
#   against VALID_REF; dumps the attention of the first MAX_SENTENCES
#   (default 200) source lines (aiayn-attention, greedy outputs); then
#   tools/head_importance.py writes OUT_DIR/heads.tsv, OUT_DIR/heads.md and
#   OUT_DIR/heads.png. Choose heads on validation data, never the test set.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 4 ] || { echo "usage: scripts/head_importance.sh CHECKPOINT VALID_SRC VALID_REF OUT_DIR [MAX_SENTENCES]" >&2; exit 2; }
checkpoint=$1 src=$2 ref=$3 out=$4 max=${5:-200}
for f in "$src" "$ref"; do [ -f "$f" ] || { echo "head_importance.sh: $f: no such file" >&2; exit 2; }; done
# AIAYN_BIN: the executables to use (the tests pass their own build's).
bin=${AIAYN_BIN:-build/bin}
[ -n "${AIAYN_BIN:-}" ] || [ -x "$bin/aiayn-translate" ] || bash scripts/build.sh
mkdir -p "$out"
# Layers and heads from the checkpoint's config.json (a save directory: its last).
dir=$checkpoint
[ -f "$dir/config.json" ] || dir=$checkpoint/last
[ -f "$dir/config.json" ] || { echo "head_importance.sh: $checkpoint: no config.json (give a checkpoint or save directory)" >&2; exit 2; }
read -r enc dec heads <<< "$(/usr/bin/python3 -c 'import json, sys; m = json.load(open(sys.argv[1]))["model"]; print(m["encoder_layers"], m["decoder_layers"], m["heads"])' "$dir/config.json")"
bleu_of() {  # translate with extra arguments, print the cased BLEU
  "$bin/aiayn-translate" --checkpoint "$checkpoint" --greedy --input "$src" --reference "$ref" \
    --output /dev/null "$@" 2>&1 | sed -n 's/^BLEU = \([0-9.]*\).*/\1/p'
}
table="$out/bleu.tsv"
printf 'kind\tlayer\thead\tbleu\n' > "$table.tmp"
printf 'none\t-\t-\t%s\n' "$(bleu_of)" >> "$table.tmp"
for kind in enc dec cross; do
  layers=$([ $kind = enc ] && echo "$enc" || echo "$dec")
  for ((layer = 0; layer < layers; layer++)); do
    for ((head = 0; head < heads; head++)); do
      printf '%s\t%d\t%d\t%s\n' $kind $layer $head "$(bleu_of --mask-heads $kind:$layer:$head)" >> "$table.tmp"
      echo "head_importance.sh: $kind:$layer:$head done" >&2
    done
  done
done
mv "$table.tmp" "$table"
head -n "$max" "$src" > "$out/dump-source.txt"
"$bin/aiayn-attention" --checkpoint "$checkpoint" --source "$out/dump-source.txt" --output "$out/attention.jsonl"
/usr/bin/python3 tools/head_importance.py "$table" "$out/attention.jsonl" "$out"
