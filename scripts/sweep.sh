#!/usr/bin/env bash
# Trains the variants of a sweep file one after another, each with the same
# base arguments and budget, then writes a table and a plot of the results.
#
# Usage: scripts/sweep.sh SWEEP_FILE OUT_DIR -- AIAYN_TRAIN_ARGS...
#   SWEEP_FILE: one variant per line, "name [aiayn-train arguments...]";
#               '#' starts a comment. Names: letters, digits, . _ - only.
#   OUT_DIR:    OUT_DIR/<name> is each variant's save directory; a variant
#               whose directory already holds a finished run is not retrained,
#               one that failed (diverged, a bad --set) is marked and the sweep
#               goes on.
#   Then:       OUT_DIR/sweep.md (rank, updates against the warm-up, valid ppl,
#               valid BLEU, ...) and OUT_DIR/sweep.png (validation curves), by
#               tools/sweep_table.py. Only finished variants that ended past their
#               warm-up are ranked: choose a budget (or warm-up) that gets there.
#   SEEDS=N     trains every variant N times (train.seed 1..N) and adds each
#               variant's mean and standard deviation to the table.
# Example (30 minutes each on Multi30k en-de; docs/multi30k-sweep.md):
#   scripts/sweep.sh configs/sweeps/multi30k-hour.txt runs/sweep -- --config configs/multi30k.json \
#     --set train.max_minutes=30 --set train.precision=bf16 --set data.train_src=../shared/data/multi30k/train.en ...
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { echo "usage: scripts/sweep.sh SWEEP_FILE OUT_DIR -- AIAYN_TRAIN_ARGS..." >&2; exit 2; }
[ $# -ge 3 ] && [ "$3" = "--" ] || usage
sweep=$1 out=$2
shift 3
[ -f "$sweep" ] || { echo "sweep.sh: $sweep: no such file" >&2; exit 2; }
# Read and check every line before training anything.
names=() args=()
n=0
while IFS= read -r line || [ -n "$line" ]; do
  n=$((n + 1))
  line=${line%%#*}
  read -r name rest <<< "$line" || true
  [ -n "${name:-}" ] || continue
  if ! [[ $name =~ ^[A-Za-z0-9._-]+$ ]]; then
    echo "sweep.sh: $sweep:$n: variant name '$name' may hold only letters, digits, '.', '_' and '-'" >&2
    exit 2
  fi
  for seen in "${names[@]:-}"; do
    if [ "$seen" = "$name" ]; then echo "sweep.sh: $sweep:$n: variant '$name' appears twice" >&2; exit 2; fi
  done
  names+=("$name") args+=("${rest:-}")
done < "$sweep"
[ ${#names[@]} -gt 0 ] || { echo "sweep.sh: $sweep: no variants" >&2; exit 2; }
# SEEDS=N: every variant N times (train.seed 1..N, named NAME.seedK); the
# table then gives each variant's mean and spread over its seeds.
seeds=${SEEDS:-1}
[[ $seeds =~ ^[1-9][0-9]*$ ]] || { echo "sweep.sh: SEEDS=$seeds: use a whole number from 1" >&2; exit 2; }
if [ "$seeds" -gt 1 ]; then
  expanded_names=() expanded_args=()
  for i in "${!names[@]}"; do
    for k in $(seq 1 "$seeds"); do
      expanded_names+=("${names[$i]}.seed$k") expanded_args+=("${args[$i]} --set train.seed=$k")
    done
  done
  names=("${expanded_names[@]}") args=("${expanded_args[@]}")
fi

train=${AIAYN_TRAIN:-build/bin/aiayn-train}
[ -x "$train" ] || bash scripts/build.sh
mkdir -p "$out"
for i in "${!names[@]}"; do
  name=${names[$i]} dir=$out/${names[$i]}
  if [ -f "$dir/finished" ]; then
    echo "== $name: already trained ($dir), kept"
    continue
  fi
  # A run cut short (Ctrl-C, a crash) is started again from scratch.
  rm -rf "$dir"
  echo "== $name: ${args[$i]:-(base)}"
  # shellcheck disable=SC2086  # the variant's arguments are words on purpose
  if "$train" "$@" ${args[$i]} --save-dir "$dir"; then
    printf '%s\n' "${args[$i]}" > "$dir/arguments"
    touch "$dir/finished"
  else
    code=$?
    # One failed variant (diverged, a bad --set) does not end the sweep.
    mkdir -p "$dir"
    printf '%s\n' "${args[$i]}" > "$dir/arguments"
    printf 'exit %s\n' "$code" > "$dir/failed"
    echo "== $name: failed (exit $code); see $dir/train.log" >&2
  fi
done
/usr/bin/python3 tools/sweep_table.py "$out" "${names[@]}"
