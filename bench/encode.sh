#!/usr/bin/env bash
# Corpus encoding benchmark: 1,000,000 synthetic pairs from Multi30k, encoded
# into the token cache by our encoder (2 threads, then 1) and, for reference,
# one side by SentencePiece's own single-threaded spm_encode.
# Usage: bench/encode.sh [MULTI30K_DIR] [PAIRS]
set -euo pipefail
cd "$(dirname "$0")/.."
m30k=${1:-../shared/data/multi30k}
pairs=${2:-1000000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
build/bin/bench_encode make-corpus "$m30k" "$work" "$pairs" > /dev/null 2>&1
build/bin/bench_encode encode "$work" 2
build/bin/bench_encode encode "$work" 1
TIMEFORMAT="reference: spm_encode (1 thread), one side (train.en): %R s"
time spm_encode --model "$work/joint.model" --output_format=id < "$work/train.en" > /dev/null
