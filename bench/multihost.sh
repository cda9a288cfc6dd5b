#!/usr/bin/env bash
# Data parallel across two hosts against one process, on this machine: each
# host a network namespace joined to the other through a bridge (veth links,
# as tests/netns_hosts.h makes them), one aiayn-train rank x 1 thread per
# host, against 1 process x 2 threads. Then the same two hosts with their
# links shaped to 1 Gbit/s (tc tbf). For the `small` and `base` configs on
# Multi30k en-de, with one tokenizer; each run STEPS updates (base: STEPS/2).
# Prints per run the median target tokens/s, gradient all-reduce ms and ms of
# waiting for the other rank per update after warm-up, the gradient bytes,
# and from them an estimate of the all-reduce at 8 and 64 GPUs over
# 100 Gbit/s. Needs root (ip netns) and iproute2.
# Usage: bench/multihost.sh [MULTI30K_DIR]   (env: STEPS=60, CONFIGS="small base")
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data/multi30k}
steps=${STEPS:-60}
configs=${CONFIGS:-small base}
train=${AIAYN_BIN:-build/bin}/aiayn-train
[ "$(id -u)" -eq 0 ] || { echo "bench/multihost.sh: needs root for ip netns" >&2; exit 2; }
[ -f "$data/train.en" ] || { echo "bench/multihost.sh: $data/train.en: no Multi30k there" >&2; exit 2; }
work=$(mktemp -d)
net=aiaynb$$
cleanup() {
  for ns in "$net-h0" "$net-h1" "$net-sw"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

# Two hosts, 10.78.0.1 and 10.78.0.2, on a bridge of their own.
ip netns add "$net-sw"
ip -n "$net-sw" link add br0 type bridge
ip -n "$net-sw" link set br0 up
for i in 0 1; do
  ip netns add "$net-h$i"
  ip link add eth0 netns "$net-h$i" type veth peer name "p$i" netns "$net-sw"
  ip -n "$net-sw" link set "p$i" master br0 up
  ip -n "$net-h$i" addr add "10.78.0.$((i + 1))/24" dev eth0
  ip -n "$net-h$i" link set eth0 up
  ip -n "$net-h$i" link set lo up
done
shape() {  # shape RATE|off: each host's sending side
  for i in 0 1; do
    ip netns exec "$net-h$i" tc qdisc del dev eth0 root 2>/dev/null || true
    [ "$1" = off ] || ip netns exec "$net-h$i" tc qdisc add dev eth0 root tbf rate "$1" burst 1mb latency 100ms
  done
}

common=(--set "data.train_src=$data/train.en" --set "data.train_tgt=$data/train.de"
        --set train.max_minutes=0 --set train.log_every=5 --set train.save_every=100000
        --set train.valid_every=100000)
"$train" --config configs/small.json "${common[@]}" --set train.max_steps=1 --save-dir "$work/spm" > /dev/null
common+=(--set "data.spm_model=$work/spm/spm.model")

pair() {  # pair CONFIG STEPS NAME
  local out=$work/$3
  for i in 1 0; do
    ip netns exec "$net-h$i" "$train" --config "configs/$1.json" "${common[@]}" --set "train.max_steps=$2" \
      --threads 1 --nnodes 2 --node-rank "$i" --master-addr 10.78.0.1 --master-port 29500 \
      --save-dir "$out" > "$work/$3.h$i.log" 2>&1 &
  done
  wait
}

for config in $configs; do
  n=$steps
  [ "$config" = base ] && n=$(( steps / 2 ))
  echo "== $config: 1 process x 2 threads ($n updates)" >&2
  "$train" --config "configs/$config.json" "${common[@]}" --set "train.max_steps=$n" --threads 2 \
    --save-dir "$work/$config-single" > /dev/null
  echo "== $config: 2 hosts x 1 rank over veth" >&2
  shape off
  pair "$config" "$n" "$config-veth"
  echo "== $config: 2 hosts x 1 rank over veth shaped to 1 Gbit/s (tbf)" >&2
  shape 1gbit
  pair "$config" "$n" "$config-1gbit"
  shape off
  params=$("$train" --summary --config "configs/$config.json" --vocab "$(wc -l < "$work/spm/spm.vocab")" |
           sed -n 's/^parameters: \([0-9,]*\).*/\1/p' | tr -d ,)
  echo "$config $params" >> "$work/params"
done

/usr/bin/python3 - "$work" "$configs" <<'EOF'
import json, statistics, sys
work, configs = sys.argv[1], sys.argv[2].split()
params = dict(line.split() for line in open(f"{work}/params"))
def figures(run):
    rows = [json.loads(l) for l in open(f"{work}/{run}/metrics.jsonl")]
    rows = [r for r in rows if r.get("kind") == "train"][1:]  # past the first interval
    med = lambda key: statistics.median(r[key] for r in rows) if key in rows[0] else None
    return med("tgt_tok_s"), med("allreduce_ms"), med("rank_wait_ms")
print("| config | gradient | run | target tok/s | vs 1 process | gradient all-reduce ms/update | waiting for the other rank ms/update |")
print("|---|---|---|---|---|---|---|")
estimates = []
for c in configs:
    grad = int(params[c]) * 4
    single = figures(f"{c}-single")[0]
    for run, name in ((f"{c}-single", "1 process x 2 threads"), (f"{c}-veth", "2 hosts x 1 rank, veth"),
                      (f"{c}-1gbit", "2 hosts x 1 rank, 1 Gbit/s")):
        tok, ms, wait = figures(run)
        show = lambda v: "-" if v is None else f"{v:.1f}"
        print(f"| {c} | {grad / 2**20:.1f} MiB | {name} | {tok:.0f} | {tok / single:.2f} | {show(ms)} | {show(wait)} |")
    # A ring all-reduce sends 2 (n-1)/n of the gradient per rank; at 2 ranks
    # that is the gradient once. The 1 Gbit/s run gives our protocol's
    # efficiency against the link rate; the estimate keeps it at 100 Gbit/s.
    ms_1g = figures(f"{c}-1gbit")[1]
    wire_ms = grad * 8 / 1e9 * 1e3
    efficiency = wire_ms / ms_1g
    for n in (8, 64):
        est = 2 * (n - 1) / n * grad * 8 / 100e9 / efficiency * 1e3
        estimates.append(f"{c}: {n} GPUs over 100 Gbit/s: gradient all-reduce ~{est:.1f} ms per update "
                         f"(ring, {efficiency:.0%} of the link as measured at 1 Gbit/s, latency not counted)")
print()
print("ESTIMATES, not measurements:")
for e in estimates:
    print("  " + e)
EOF
