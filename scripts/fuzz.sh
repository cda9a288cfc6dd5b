#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang (ASan+UBSan) into
# build-fuzz/ and runs each for a fixed time (docs/reliability.md):
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]   default 60 s each, all targets
# Each target starts from its seeds (fuzz/corpus/<target>/) and the inputs
# earlier runs found (build-fuzz/corpus/<target>/). A crash, a sanitizer
# report, a hang (-timeout) or running out of memory is written to
# build-fuzz/crashes/ and fails the script, after the other targets ran.
# Reproduce one with: build-fuzz/fuzz_<target> build-fuzz/crashes/<file>.
# Needs Debian's clang (clang-14, libclang-rt-14-dev) and the g++ build in
# build/ (scripts/build.sh), whose archives supply what the readers
# reference but no target calls.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
case "$seconds" in ''|*[!0-9]*) echo "fuzz.sh: usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2; exit 2 ;; esac
command -v clang++ > /dev/null || { echo "fuzz.sh: needs clang++ (apt-get install clang libclang-rt-14-dev)" >&2; exit 2; }
dir=build-fuzz
mkdir -p "$dir"
if [ -f build/CMakeCache.txt ]; then
  cmake --build build -j "${JOBS:-2}" --target aiayn_attention > "$dir/build.log" 2>&1 \
    || { tail -20 "$dir/build.log"; echo "fuzz.sh: building build/ failed ($dir/build.log)" >&2; exit 1; }
else
  bash scripts/build.sh
fi
cmake -S fuzz -B "$dir" -DCMAKE_CXX_COMPILER=clang++ -DAIAYN_BUILD="$PWD/build" > "$dir.configure.log" 2>&1 \
  || { cat "$dir.configure.log"; exit 1; }
cmake --build "$dir" -j "${JOBS:-2}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in fuzz/fuzz_*.cpp; do t=$(basename "$f" .cpp); targets+=("${t#fuzz_}"); done
fi
mkdir -p "$dir/crashes" "$dir/logs"
failed=()
printf '%-18s %12s %9s %8s %7s  %s\n' target executions exec/s seconds corpus result
for t in "${targets[@]}"; do
  mkdir -p "$dir/corpus/$t"
  log="$dir/logs/$t.log"
  start=$SECONDS
  result=ok
  # -timeout: an input that takes 10 s is a hang; -rss_limit_mb: 2 GB an oom.
  "$dir/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$dir/crashes/$t-" "$dir/corpus/$t" "fuzz/corpus/$t" > "$log" 2>&1 || result=FAILED
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  corpus=$(find "$dir/corpus/$t" -type f | wc -l)
  if [ "$result" != ok ]; then
    failed+=("$t")
    result="FAILED: $(grep -m1 -E 'ERROR|runtime error|deadly signal|uncaught|timeout|out-of-memory' "$log" || echo "see $log")"
  fi
  printf '%-18s %12s %9s %8s %7s  %s\n' "$t" "${executions:-?}" "${rate:-?}" $(( SECONDS - start )) "$corpus" "$result"
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: ${failed[*]} failed; inputs in $dir/crashes/, logs in $dir/logs/" >&2
  exit 1
fi
