#!/usr/bin/env bash
# The GPU check (issue 37): one command for a machine with one NVIDIA GPU and
# a Python with PyTorch 2.x, and no network. It
#   1. builds the toolkit against that PyTorch (build-gpu/);
#   2. runs the whole test suite with AIAYN_TEST_DEVICE=cuda, under which the
#      model, search, attention and training tests also run on the GPU and
#      compare with the CPU;
#   3. trains `base` (configs/base.json) on Multi30k en-de in bf16 for a few
#      minutes and reports target tokens/s and model-FLOP utilisation against
#      the GPU's dense bf16 peak;
#   4. translates test_2016_flickr with beam 4: sentences/s and BLEU;
#   5. dumps the attention of a few sentences;
# and writes everything to one report (Markdown).
#
# Usage: scripts/gpu_check.sh [--dry] [--report FILE] [--minutes M] [--data DIR]
#                              [--skip-build] [--tests all|device|none]
#   --dry       everything but the CUDA parts, on the CPU, to check the script
#               here: the pip build (build-pip/), the device tests only (the
#               full suite is scripts/test.sh's), a few updates of `base`, 20
#               test sentences, the same report.
#   --report    default: $OUT/gpu_check.md when OUT is set, else runs/gpu_check/report.md;
#               the runs, logs and dumps go to runs/gpu_check/work/ (not $OUT:
#               the device tool brings back a few small files only)
#   --skip-build  a second call on a warm machine: the build is there
#   --tests     all (default on a GPU; the configure checks, which test the
#               host's toolkit rather than the GPU, left out), device (the
#               device-comparison tests only; default with --dry), none
#   --minutes   training time of step 3 (default 3; 0: stop after the tests; --dry: 4 updates)
#   --data      Multi30k (default ../shared/data/multi30k, else .gpu-carry/multi30k)
# env: AIAYN_TORCH_PYTHON (default python3; --dry: .venv-torch/bin/python), JOBS.
# scripts/gpu_check.sh --pack (here, with network) puts the data into the
# ignored .gpu-carry/, for a device run that carries it.
set -uo pipefail
cd "$(dirname "$0")/.."
dry=0 report="" minutes=3 data="" skip_build=0 tests=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dry) dry=1; shift ;;
    --report) report=${2:?--report needs a file}; shift 2 ;;
    --minutes) minutes=${2:?--minutes needs a number}; shift 2 ;;
    --data) data=${2:?--data needs a directory}; shift 2 ;;
    --skip-build) skip_build=1; shift ;;
    --tests) tests=${2:?--tests needs all, device or none}; shift 2 ;;
    --pack)
      mkdir -p .gpu-carry/multi30k
      for f in train val test_2016_flickr; do
        for l in en de; do cp "../shared/data/multi30k/$f.$l" .gpu-carry/multi30k/ || exit 2; done
      done
      du -sh .gpu-carry; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $1 (see the header of scripts/gpu_check.sh)" >&2; exit 2 ;;
  esac
done
case "${tests:-all}" in all|device|none) ;; *) echo "gpu_check.sh: --tests must be all, device or none, got \"$tests\"" >&2; exit 2 ;; esac
case "$minutes" in ''|*[!0-9.]*) echo "gpu_check.sh: --minutes must be a number, got \"$minutes\"" >&2; exit 2 ;; esac
if [ -z "$data" ]; then
  data=../shared/data/multi30k
  [ -f "$data/train.en" ] || data=.gpu-carry/multi30k
fi
for f in train val test_2016_flickr; do
  for l in en de; do
    [ -f "$data/$f.$l" ] || { echo "gpu_check.sh: missing $data/$f.$l (give --data, or run --pack where the data is)" >&2; exit 2; }
  done
done
if [ -z "$report" ]; then
  if [ -n "${OUT:-}" ]; then report=$OUT/gpu_check.md; else report=runs/gpu_check/report.md; fi
fi
work=runs/gpu_check/work
mkdir -p "$work" "$(dirname "$report")"
: > "$report"
if [ $dry = 1 ]; then
  device=cpu
  tests=${tests:-device}
  export AIAYN_TORCH_PYTHON=${AIAYN_TORCH_PYTHON:-.venv-torch/bin/python}
  export AIAYN_BUILD_DIR=${AIAYN_BUILD_DIR:-build-pip}
else
  device=cuda
  tests=${tests:-all}
  export AIAYN_TORCH_PYTHON=${AIAYN_TORCH_PYTHON:-python3}
  export AIAYN_BUILD_DIR=${AIAYN_BUILD_DIR:-build-gpu}
  export AIAYN_OFFLINE=1
fi
bin=$AIAYN_BUILD_DIR/bin
jobs=${JOBS:-$(nproc)}
start=$SECONDS
say() { echo "$*" | tee -a "$report"; }
section() { say ""; say "## $*"; say ""; }
# Runs a step, its output to a log; the report gets its status and time.
step() {
  local name=$1; shift
  local log="$work/$name.log" t0=$SECONDS
  echo "gpu_check: $name ..." >&2
  if "$@" > "$log" 2>&1; then
    say "- $name: ok in $((SECONDS - t0)) s (log: $log)"
    return 0
  fi
  say "- $name: FAILED after $((SECONDS - t0)) s; the end of $log:"
  say '```'
  tail -n 15 "$log" | tee -a "$report"
  say '```'
  return 1
}

say "# aiayn GPU check$([ $dry = 1 ] && echo ' (dry run: CPU only)')"
say ""
say "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
say "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"
gpu=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)
say "- GPU: ${gpu:-none seen by nvidia-smi}"
say "- PyTorch: $("$AIAYN_TORCH_PYTHON" -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda, "devices", torch.cuda.device_count())' 2>&1 | tail -1) ($AIAYN_TORCH_PYTHON)"
for tool in cmake c++ nvcc; do
  say "- $tool: $(command -v $tool > /dev/null && $tool --version 2>/dev/null | head -1 || echo missing)"
done
if [ $dry = 0 ] && [ -z "$gpu" ]; then
  say ""; say "No GPU: nothing to check (run with --dry on a CPU machine)."; exit 2
fi

section "1. Build against this PyTorch"
if [ $skip_build = 1 ]; then
  [ -x "$bin/aiayn-train" ] || { say "- build: --skip-build, but $bin/aiayn-train is missing"; exit 1; }
  say "- build: skipped (--skip-build), using $AIAYN_BUILD_DIR"
else
  step build env JOBS="$jobs" bash scripts/build.sh --torch pip || { say ""; say "Stopped: no build."; exit 1; }
fi
grep -E "^-- (LibTorch|c10d|int8)" "$AIAYN_BUILD_DIR.configure.log" | sed 's/^/    /' | tee -a "$report"

section "2. Tests, AIAYN_TEST_DEVICE=$device"
case "$tests" in
  device) filter=(-R AIAYN_TEST_DEVICE) ;;  # the full suite on the CPU is scripts/test.sh's
  all) filter=(-LE configure) ;;
esac
if [ "$tests" = none ]; then
  say "- tests: skipped (--tests none)"
else
  step tests env AIAYN_TEST_DEVICE=$device ctest --test-dir "$AIAYN_BUILD_DIR" --output-on-failure \
    --timeout 900 -j "$jobs" "${filter[@]}"
  grep -E "tests passed|tests failed" "$work/tests.log" | sed 's/^/    /' | tee -a "$report"
fi

if [ $dry = 0 ] && [ "$(echo "$minutes" | tr -d '0.')" = "" ]; then
  say ""; say "Training, translation and the attention dump skipped (--minutes 0)."
  say "Total: $((SECONDS - start)) s."
  grep -q "FAILED" "$report" && exit 1
  exit 0
fi

section "3. Train base on Multi30k en-de, bf16"
run=$work/base
rm -rf "$run"
limits=(--set train.max_minutes="$minutes" --set train.max_steps=1000000 --set train.max_tokens=16384)
[ $dry = 1 ] && limits=(--set train.max_steps=4 --set train.max_tokens=1024)
step train "$bin/aiayn-train" --config configs/base.json --save-dir "$run" --device $device \
  --set train.precision=bf16 --set data.vocab_size=10000 --set data.max_length=128 \
  --set "data.train_src=$data/train.en" --set "data.train_tgt=$data/train.de" \
  --set "data.valid_src=$data/val.en" --set "data.valid_tgt=$data/val.de" \
  --set train.log_every=$([ $dry = 1 ] && echo 1 || echo 20) --set train.valid_every=1000000 \
  --set train.valid_bleu=false --set train.save_every=1000000 --set train.warmup_steps=4000 "${limits[@]}"
"$AIAYN_TORCH_PYTHON" - "$run" "$device" "$gpu" <<'PY' 2>&1 | tee -a "$report"
# Model FLOPs per second (6 x parameters x tokens, the encoder's over source
# tokens and the decoder's and output layer's over target tokens, plus the
# attention products) against the dense bf16 peak of the GPU.
import json, statistics, sys
run, device, gpu = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    records = [json.loads(l) for l in open(f"{run}/metrics.jsonl")]
except OSError:
    print("    no metrics: training did not run"); sys.exit(0)
train = [r for r in records if r.get("kind") == "train"]
if not train:
    print("    no training records"); sys.exit(0)
late = train[len(train) // 2:]  # after warm-up
src = statistics.median(r["src_tok_s"] for r in late)
tgt = statistics.median(r["tgt_tok_s"] for r in late)
d, ff, layers, V, L = 512, 2048, 6, 10000, 30  # configs/base.json, the vocabulary above, ~mean length
enc = layers * (4 * d * d + 2 * d * ff)
dec = layers * (8 * d * d + 2 * d * ff) + d * V
attn = 2 * 2 * d * L  # QK^T and AV per token and layer, forward
flops = 6 * (enc * src + dec * tgt) + 3 * attn * layers * (src + 2 * tgt)
peaks = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12}
peak = next((v for k, v in peaks.items() if k in gpu), None)
print(f"    target tokens/s (median of the second half): {tgt:,.0f}; source {src:,.0f}")
print(f"    model FLOP/s: {flops / 1e12:.1f} TFLOP/s" + (f"; MFU {100 * flops / peak:.1f}% of {peak / 1e12:.0f} TFLOP/s dense bf16" if peak and device == "cuda" else " (no GPU peak: MFU not computed)"))
print(f"    last loss {train[-1]['loss']:.3f} after {train[-1]['step']} updates")
PY

section "4. Translate test_2016_flickr, beam 4"
sentences=$([ $dry = 1 ] && echo 20 || echo 1000)
head -n "$sentences" "$data/test_2016_flickr.en" > "$work/test.en"
head -n "$sentences" "$data/test_2016_flickr.de" > "$work/test.de"
step translate "$bin/aiayn-translate" --checkpoint "$run" --device $device --beam 4 --precision bf16 \
  --input "$work/test.en" --reference "$work/test.de" --output "$work/test.hyp.de"
grep -E "^BLEU|sentences/s|sent/s" "$work/translate.log" | sed 's/^/    /' | tee -a "$report"

section "5. Attention dump"
head -n 3 "$data/val.en" > "$work/attention.en"
step attention "$bin/aiayn-attention" --checkpoint "$run" --device $device --source "$work/attention.en" \
  --output "$work/attention.jsonl" --html "$work/attention.html"
[ -f "$work/attention.jsonl" ] && say "    $(wc -l < "$work/attention.jsonl") sentences dumped to $work/attention.jsonl"

say ""
say "Total: $((SECONDS - start)) s."
echo "gpu_check: report in $report" >&2
grep -q "FAILED" "$report" && exit 1
exit 0
