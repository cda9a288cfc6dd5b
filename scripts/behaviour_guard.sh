#!/usr/bin/env bash
# The behaviour guard of a refactoring (issue 39): everything a user sees from
# a fixed checkpoint and a fixed seed, written to OUT so that two commits can
# be compared with `diff -r`:
#   translations (greedy, beam 4, 4-best with scores, int8, alignment, forced
#   scores) of the first 200 lines of Multi30k val with the recipe's averaged
#   checkpoint, and the training losses of 60 updates of a small model on
#   Multi30k train with seed 1 (metrics.jsonl without its times).
# Usage: scripts/behaviour_guard.sh OUT [CHECKPOINT]
#   (default CHECKPOINT runs/m30k-bf16-en-de/averaged; binaries from ${AIAYN_BIN:-build/bin})
# Needs ../shared/data/multi30k. Compare: diff -r OUT_BEFORE OUT_AFTER
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/behaviour_guard.sh OUT [CHECKPOINT]}
ckpt=${2:-runs/m30k-bf16-en-de/averaged}
bin=${AIAYN_BIN:-build/bin}
data=${AIAYN_MULTI30K:-../shared/data/multi30k}
[ -d "$data" ] || { echo "behaviour_guard.sh: no Multi30k at $data" >&2; exit 2; }
[ -d "$ckpt" ] || { echo "behaviour_guard.sh: no checkpoint at $ckpt" >&2; exit 2; }
mkdir -p "$out"
src="$out/val.en"
head -n 200 "$data/val.en" > "$src"
head -n 200 "$data/val.de" > "$out/val.de"

translate() {  # NAME ARGS...
  local name=$1; shift
  "$bin/aiayn-translate" -c "$ckpt" -i "$src" -o "$out/$name.txt" --threads 2 "$@" 2> "$out/$name.err"
  grep -v -e '[0-9.]* s' -e 'sentences/s' "$out/$name.err" > "$out/$name.log" || true
  rm "$out/$name.err"
}
translate greedy --greedy
translate beam4 --beam 4 --alpha 0.6
translate nbest --beam 4 --nbest 4
translate int8 --beam 4 --int8
translate alignment --beam 4 --alignment
translate forced --score-targets "$out/val.de"
translate reference --beam 4 -r "$out/val.de"

rm -rf "$out/train"
"$bin/aiayn-train" --config configs/small.json --save-dir "$out/train" --threads 2 \
  --set data.train_src="$data/train.en" --set data.train_tgt="$data/train.de" \
  --set data.valid_src="$out/val.en" --set data.valid_tgt="$out/val.de" \
  --set data.vocab_size=2000 --set train.max_steps=60 --set train.seed=1 \
  --set train.max_tokens=1500 --set train.log_every=10 --set train.valid_every=30 \
  --set train.save_every=30 --set train.max_minutes=0 \
  > /dev/null 2>&1
python3 - "$out/train/metrics.jsonl" > "$out/train_losses.txt" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("kind") in ("train", "valid"):  # speeds and the run's header vary
        print({k: v for k, v in sorted(r.items()) if not k.endswith("_s") and "time" not in k})
EOF
rm -rf "$out/train"
echo "behaviour_guard.sh: wrote $out"
