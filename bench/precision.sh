#!/usr/bin/env bash
# Mixed precision on this CPU: the same config trained for STEPS updates in
# fp32 and in bf16 (train.precision), same seed, tokenizer and batches.
# Reports the median target tokens/s after warm-up, their ratio, and the
# validation perplexity and greedy BLEU each reached (Multi30k val; the test
# split is never read). bf16 pays only on CPUs with AVX512_BF16 or AMX.
# Usage: bench/precision.sh [MULTI30K_DIR [SRC TGT]]
#   env: STEPS=400 CONFIG=configs/small.json AIAYN_BIN=build/bin PRECISIONS="fp32 bf16"
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data/multi30k}
src=${2:-en}
tgt=${3:-de}
steps=${STEPS:-400}
config=${CONFIG:-configs/small.json}
bin=${AIAYN_BIN:-build/bin}
precisions=${PRECISIONS:-fp32 bf16}
work=${WORK:-$(mktemp -d)}
common=(--config "$config" --threads "$(nproc)" --set "data.train_src=$data/train.$src"
        --set "data.train_tgt=$data/train.$tgt" --set "data.valid_src=$data/val.$src"
        --set "data.valid_tgt=$data/val.$tgt" --set train.max_minutes=0
        --set "train.max_steps=$steps" --set train.log_every=20 --set train.save_every=100000
        --set train.valid_every=100000)
# One tokenizer for every run (trained once, by the first).
"$bin/aiayn-train" "${common[@]}" --set train.max_steps=1 --set data.valid_src= --set data.valid_tgt= \
  --save-dir "$work/spm" > /dev/null
common+=(--set "data.spm_model=$work/spm/spm.model")
for p in $precisions; do
  echo "precision $p: $steps updates of $config" >&2
  "$bin/aiayn-train" "${common[@]}" --set "train.precision=$p" --save-dir "$work/$p" > /dev/null
done
/usr/bin/python3 - "$work" "$precisions" "$config" "$steps" <<'PY'
import json, statistics, subprocess, sys
work, precisions, config, steps = sys.argv[1], sys.argv[2].split(), sys.argv[3], sys.argv[4]
cpu = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith(("model name", "cpu family", "model\t"))][:3]
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
rows = {}
for p in precisions:
    rates, valid = [], None
    for line in open(f"{work}/{p}/metrics.jsonl"):
        m = json.loads(line)
        if m.get("kind") == "train" and m["step"] > 40:  # after warm-up
            rates.append(m["tgt_tok_s"])
        if m.get("kind") == "valid":
            valid = m
        if m.get("kind") == "run":
            libtorch = m["libtorch"]
    rows[p] = (statistics.median(rates), valid["ppl"], valid.get("bleu"))
base = rows[precisions[0]]
print(f"{config}, {steps} updates, LibTorch {libtorch}, CPU {' / '.join(cpu)}, commit {commit}")
print("precision  tgt tok/s  ratio  valid ppl  ppl vs first  valid BLEU")
for p, (rate, ppl, bleu) in rows.items():
    print(f"{p:9}  {rate:9.0f}  {rate / base[0]:5.2f}  {ppl:9.2f}  {100 * (ppl / base[1] - 1):+11.2f}%  {bleu if bleu is None else round(bleu, 2)}")
PY
