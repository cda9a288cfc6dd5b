#!/usr/bin/env bash
# Every side-by-side benchmark, back to back, on a trained Multi30k `small`
# run directory (CONFIG=configs/small.json scripts/multi30k.sh makes one):
# translation (ours and the PyTorch references, 1.13 and the index's 2.x,
# greedy and beam 4), ours against CTranslate2 on the same model (fp32 and
# int8, 1 and 2 threads, and CTranslate2's own protocol), training
# (ours and the reference from the same initial weights and the same batches,
# with the sgemm peak and model-FLOP utilisation), data-parallel training,
# and the scaling sweeps (PNG). Ends with OUT/tables.md: README's speed
# tables from this one run, with date, CPU and commit (bench/tables.py).
# Usage: bench/all.sh [RUN_DIR] [OUT_DIR]   (defaults: runs/m30k-small-de-en runs/bench)
#   env: PARTS="translation ctranslate2 training distributed scaling" (a subset runs fewer),
#        DATA=../shared/data/multi30k, STEPS=120 (training updates per side)
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-runs/m30k-small-de-en}
out=${2:-runs/bench}
data=${DATA:-../shared/data/multi30k}
parts=${PARTS:-translation ctranslate2 training distributed scaling}
steps=${STEPS:-120}
py=/usr/bin/python3
fail() { echo "bench/all.sh: $*" >&2; exit 2; }
[ -d "$run/averaged" ] || fail "$run/averaged missing (train one: CONFIG=configs/small.json bash scripts/multi30k.sh $data de en $run)"
[ -f "$run/spm.model" ] || fail "$run/spm.model missing"
[ -x build/bin/aiayn-translate ] || fail "build/bin/aiayn-translate missing (bash scripts/build.sh)"
[ -x .venv-tools/bin/python ] || fail ".venv-tools missing (bash scripts/setup.sh installs ctranslate2 and sacrebleu there)"
[ -x .venv-torch/bin/python ] || fail ".venv-torch missing (bash scripts/setup.sh --torch pip: the newest PyTorch's references)"
for part in $parts; do
  case $part in translation|ctranslate2|training|distributed|scaling) ;; *) fail "PARTS: unknown part '$part'" ;; esac
done
# The language pair the run was trained on, from its config's file names.
read -r src tgt < <($py -c 'import json,sys; d=json.load(open(sys.argv[1]))["data"]
print(d["train_src"].rsplit(".",1)[1], d["train_tgt"].rsplit(".",1)[1])' "$run/last/config.json") \
  || fail "$run/last/config.json: cannot read data.train_src/train_tgt"
for f in "test_2016_flickr.$src" "test_2016_flickr.$tgt" "train.$src" "train.$tgt" "val.$src"; do
  [ -f "$data/$f" ] || fail "$data/$f missing (DATA)"
done
# Every side, ours and the references, runs the BLAS kernel our executables
# choose on this CPU: they replace OpenBLAS's fallback on CPUs it does not
# know, and the references would otherwise keep it and lose by the kernel
# alone. A user's OPENBLAS_CORETYPE is kept, by ours and here.
# (With another BLAS, MKL in an official LibTorch, each side keeps its own.)
blas_source=environment
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  kernel=$(build/bin/aiayn-translate --version | sed -n 's/^BLAS: OpenBLAS [^,]*, kernel \([^ (]*\).*/\1/p')
  blas_source=own
  if [ -n "$kernel" ]; then
    export OPENBLAS_CORETYPE=$kernel
    blas_source=aiayn
  fi
fi
mkdir -p "$out"
rm -f "$out"/{translate,train,scaling,ctranslate2}.json "$out/ctranslate2.md"
dirty=$(git diff --quiet HEAD -- . 2>/dev/null && echo "" || echo "+uncommitted")
$py - "$out/meta.json" "$run" "$src-$tgt" "$data/test_2016_flickr.$src" "$(git rev-parse --short HEAD)$dirty" "$blas_source" <<'EOF'
import json, os, subprocess, sys, time
path, run, pair, source, commit, blas_source = sys.argv[1:]
cpu = {}
for line in subprocess.check_output(["lscpu"], text=True).splitlines():
    key, _, value = line.partition(":")
    cpu[key.strip()] = value.strip()
name = f"{cpu.get('Model name', '?')} family {cpu.get('CPU family', '?')} model {cpu.get('Model', '?')}"
if blas_source == "own":
    blas = "each side's own BLAS (not OpenBLAS)"
else:
    blas = f"OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} for every side, " + (
        "as given in the environment" if blas_source == "environment" else "the kernel aiayn's executables choose here")
json.dump(dict(date=time.strftime("%Y-%m-%d %H:%M"), cpu=name, commit=commit, threads=os.cpu_count(), blas=blas,
               run=run, pair=pair.replace("-", "→"), input=os.path.basename(source)),
          open(path, "w"), indent=1)
EOF
step() { echo "== $1 ($(date +%H:%M:%S))"; }
for part in $parts; do
  case $part in
    translation)
      step "translation, $src→$tgt"
      $py bench/translate_bench.py --checkpoint "$run/averaged" --input "$data/test_2016_flickr.$src" \
        --reference "$data/test_2016_flickr.$tgt" --sides ours,ours-nopack,ours-1worker,ours-int8,torch-cache,torch-cache-tuned,torch2-cache-tuned \
        --json "$out/translate.json" | tee "$out/translate.log" ;;
    ctranslate2)
      step "CTranslate2, on the same model"
      .venv-tools/bin/python bench/ctranslate2_bench.py --checkpoint "$run/averaged" \
        --input "$data/test_2016_flickr.$src" --reference "$data/test_2016_flickr.$tgt" \
        --valid-input "$data/val.$src" --json "$out/ctranslate2.json" --markdown "$out/ctranslate2.md" \
        | tee "$out/ctranslate2.log" ;;
    training)
      step "training, same initial weights and batches"
      $py bench/train_bench.py --data "$data" --src "$src" --tgt "$tgt" --spm "$run/spm.model" \
        --steps "$steps" --repeat 1 --same-init --sides ours,torch-tuned,torch2-tuned,torch-reseeded \
        --json "$out/train.json" | tee "$out/train.log" ;;
    distributed)
      step "data-parallel"
      STEPS=60 ROUNDS=2 bash bench/distributed.sh "$data" "$src" "$tgt" | tee "$out/distributed.log" ;;
    scaling)
      step "scaling"
      $py bench/scaling.py --checkpoint "$run/averaged" --spm "$run/spm.model" --data "$data" \
        --src "$src" --tgt "$tgt" --sentences 128 \
        --png "$out/scaling.png" --json "$out/scaling.json" | tee "$out/scaling.log" ;;
  esac
done
$py bench/tables.py "$out" > "$out/tables.md"
step "done: figures in $out, README's tables in $out/tables.md"
cat "$out/tables.md"
