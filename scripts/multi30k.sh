#!/usr/bin/env bash
# The Multi30k recipe: train configs/multi30k.json (the small-data Transformer
# of Wu et al., 2021: 4+4 layers, d_model 128, d_ff 256, dropout 0.3, a 10k
# joint BPE) for up to 60 minutes, average the last 10 checkpoints, choose
# beam and length penalty on the validation set, then translate
# test_2016_flickr greedily and with the chosen beam and score it.
# Usage: scripts/multi30k.sh [MULTI30K_DIR] [SRC] [TGT] [RUN_DIR] [extra aiayn-train args...]
#   defaults: ../shared/data/multi30k en de runs/multi30k-en-de
#   SETTING=ours (default): raw, cased text; scored with sacreBLEU (13a, cased
#     and lowercased, chrF2, with signatures) and in Wu et al.'s convention.
#   SETTING=literature: Wu et al.'s setting, trained on lowercased,
#     punctuation-normalised, Moses-tokenized text (tools/moses_text.py writes
#     it to RUN_DIR/data) and scored as they do: BLEU over those tokens.
#   SEEDS=N trains N runs (train.seed 1..N) into RUN_DIR/seed1..N and prints
#     every score's mean and standard deviation over them; default 1 (RUN_DIR).
#   PRECISION=auto (default): bf16 where the CPU has AVX512_BF16 or AMX (1.33x
#     the updates an hour, same perplexity at equal updates: docs/benchmarks.md),
#     fp32 elsewhere; PRECISION=fp32 or bf16 forces one.
#   CONFIG=configs/small.json runs the earlier `small` recipe instead;
#   AVERAGE=best:5 averages the five best-validated checkpoints (needs train.keep_best);
#   AIAYN_BIN=DIR takes the executables from DIR instead of build/bin.
# Each run's scores are also in <run>/scores.tsv.
set -euo pipefail
cd "$(dirname "$0")/.."

main() {
  local data=${1:-../shared/data/multi30k} src=${2:-en} tgt=${3:-de}
  local run=${4:-runs/multi30k-$src-$tgt}
  shift $(($# < 4 ? $# : 4))
  config=${CONFIG:-configs/multi30k.json} average=${AVERAGE:-last:10}
  setting=${SETTING:-ours} bin=${AIAYN_BIN:-build/bin} tools_python=.venv-tools/bin/python
  local seeds=${SEEDS:-1}
  case $setting in ours | literature) ;; *) fail "SETTING=$setting: use ours or literature" ;; esac
  [[ $seeds =~ ^[1-9][0-9]*$ ]] || fail "SEEDS=$seeds: use a whole number from 1"
  precision=$(choose_precision "${PRECISION:-auto}")
  for f in train val test_2016_flickr; do
    for l in "$src" "$tgt"; do
      [ -f "$data/$f.$l" ] || fail "missing $data/$f.$l"
    done
  done
  [ -f "$config" ] || fail "missing config $config"
  [ -x "$tools_python" ] || fail "missing $tools_python: run bash scripts/setup.sh"
  [ -x "$bin/aiayn-train" ] || bash scripts/build.sh
  mkdir -p "$run"
  if [ "$setting" = literature ]; then
    "$tools_python" tools/moses_text.py prepare "$data" "$run/data" "$src" "$tgt"
    data=$run/data
  fi
  if [ "$seeds" = 1 ]; then
    recipe "$data" "$src" "$tgt" "$run" "$@"
    return
  fi
  local seed
  for seed in $(seq 1 "$seeds"); do
    recipe "$data" "$src" "$tgt" "$run/seed$seed" --set train.seed="$seed" "$@"
  done
  echo "== $setting setting, $src-$tgt test_2016_flickr"
  "$tools_python" tools/recipe_scores.py summary "$run"
}

# One run: train, average, choose the decoding on val, score the test set once.
recipe() {
  local data=$1 src=$2 tgt=$3 run=$4
  shift 4
  echo "== $setting setting, $src-$tgt, $config, train.precision=$precision, data $data, into $run"
  "$bin/aiayn-train" --config "$config" --save-dir "$run" --set train.precision="$precision" \
    --set data.train_src="$data/train.$src" --set data.train_tgt="$data/train.$tgt" \
    --set data.valid_src="$data/val.$src" --set data.valid_tgt="$data/val.$tgt" "$@"
  "$bin/aiayn-train" --config "$config" --save-dir "$run" --average "$average"
  # Beam and alpha by validation BLEU only; the test set is scored once, below.
  "$bin/aiayn-translate" --checkpoint "$run/averaged" --tune \
    --input "$data/val.$src" --reference "$data/val.$tgt"
  rm -f "$run/scores.tsv"
  local decoding flags out
  for decoding in greedy chosen; do
    flags=$([ $decoding = greedy ] && echo --greedy || true)
    out=$run/test.$decoding.$tgt
    "$bin/aiayn-translate" --checkpoint "$run/averaged" $flags \
      --input "$data/test_2016_flickr.$src" --output "$out"
    echo "== $src-$tgt test_2016_flickr, averaged ($average), $decoding decoding, $setting setting"
    "$tools_python" tools/recipe_scores.py score "$out" "$data/test_2016_flickr.$tgt" \
      --setting "$setting" --lang "$tgt" --label "$decoding" --tsv "$run/scores.tsv"
  done
}

fail() {
  echo "multi30k.sh: $*" >&2
  exit 2
}

# bf16 pays on the CPU only with AVX512_BF16 or AMX; elsewhere oneDNN emulates it.
choose_precision() {
  case $1 in
    fp32 | bf16) echo "$1" ;;
    auto)
      if grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo 2>/dev/null; then echo bf16; else echo fp32; fi
      ;;
    *) fail "PRECISION=$1: use auto, fp32 or bf16" ;;
  esac
}

# On one line with main: bash reads a script as it runs, and an edit to this
# file while a recipe trains must not reach the running shell.
main "$@"; exit
