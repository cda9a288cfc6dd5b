#!/usr/bin/env python3
"""Translation speed: ours against the PyTorch references, one session.

Translates a test set with one of our checkpoints, greedy and beam 4, with
  ours           build/bin/aiayn-translate (incremental decoding; its default
                 --workers: one batch per thread, each thread single-threaded)
  ours-1worker   the same with --workers 1 (one batch at a time, every thread
                 splitting its matrix products, as the references do)
  ours-nopack    the same with --no-pack (the BLAS at every call, which
                 repacks each weight; without it each worker multiplies
                 by weights packed once, models/packed_linear.h)
  ours-nocache   the same with --no-cache (whole prefix every step)
  ours-int8      the same with --int8 (int8 linear layers)
  torch-cache    bench/decode_reference.py --mode cache    (reference b)
  torch-nocache  bench/decode_reference.py --mode nocache  (reference a)
  torch-cache-passive  reference b with OMP_WAIT_POLICY=PASSIVE (libgomp's
                 workers no longer spin against OpenBLAS's thread pool)
  torch-cache-tuned    reference b with every process setting ours gives
                 itself (also OPENBLAS_THREAD_TIMEOUT=4, glibc keeping freed
                 blocks): its fastest setting here
  torch2-cache-tuned   the same on the newest PyTorch from the index
                 (.venv-torch, scripts/setup.sh --torch pip)
all on the same weights and thread count, repeated, and prints medians
(sentences/s, target tokens/s, peak RSS), the ratios of ours to each, whether
greedy outputs agree token for token, and each beam-4 output's BLEU (sacreBLEU,
through .venv-tools: bench/sacrebleu_score.py).

    /usr/bin/python3 bench/translate_bench.py --checkpoint runs/multi30k-en-de/averaged \
        [--input ../shared/data/multi30k/test_2016_flickr.en] [--reference ...de] \
        [--repeat 3] [--slow-repeat 1] [--threads 2] [--json out.json]

Timings exclude process start and model loading: each side reports the time
of its own translation loop (ours includes tokenization and detokenization).
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from peak_rss import run_captured  # noqa: E402
from sacrebleu_score import score as sacrebleu_score  # noqa: E402


def peak_rss(cmd, env=None):
    """Runs cmd -> (stdout, stderr, the command's own peak RSS in MiB, bench/peak_rss.py)."""
    return run_captured(cmd, "translate_bench", env)


def ours(args, beam, output, no_cache, workers=0, extra=()):
    cmd = [os.path.join(ROOT, "build/bin/aiayn-translate"), "--checkpoint", args.checkpoint,
           "--input", args.input, "--output", output, "--beam", str(beam), "--threads", str(args.threads),
           "--output-format", "ids" if beam == 1 else "text"]
    if no_cache:
        cmd.append("--no-cache")
    if workers:
        cmd += ["--workers", str(workers)]
    cmd += list(extra)
    _, err, rss = peak_rss(cmd)
    m = re.search(r"translated (\d+) sentences \((\d+) tokens\) in ([0-9.e+-]+) s", err)
    if not m:
        sys.exit(f"translate_bench: no summary line from aiayn-translate:\n{err}")
    sentences, tokens, seconds = int(m.group(1)), int(m.group(2)), float(m.group(3))
    return dict(sentences=sentences, tokens=tokens, seconds=seconds, rss=rss)


# The newest PyTorch from the index: the pip flavour's venv (scripts/setup.sh --torch pip).
TORCH2_PYTHON = os.path.join(ROOT, ".venv-torch", "bin", "python")


def torch_side(args, beam, output, mode, env=None, python="/usr/bin/python3"):
    if not os.access(python, os.X_OK):
        sys.exit(f"translate_bench: {python} missing (bash scripts/setup.sh --torch pip makes it)")
    cmd = [python, os.path.join(HERE, "decode_reference.py"), "--checkpoint", args.checkpoint,
           "--input", args.input, "--output", output, "--beam", str(beam), "--mode", mode,
           "--threads", str(args.threads), "--output-format", "ids" if beam == 1 else "text"]
    out, _, rss = peak_rss(cmd, env)
    r = json.loads(out.strip().splitlines()[-1])
    return dict(sentences=r["sentences"], tokens=r["tokens"], seconds=r["seconds"], rss=rss)


TUNED = {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "4",
         "GLIBC_TUNABLES": "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=2147483647"}
SIDES = {
    "ours": (lambda a, b, o: ours(a, b, o, False), False),
    "ours-1worker": (lambda a, b, o: ours(a, b, o, False, workers=1), False),
    "ours-nopack": (lambda a, b, o: ours(a, b, o, False, extra=["--no-pack"]), False),
    "ours-nocache": (lambda a, b, o: ours(a, b, o, True), True),
    "ours-int8": (lambda a, b, o: ours(a, b, o, False, extra=["--int8"]), False),
    "torch-cache": (lambda a, b, o: torch_side(a, b, o, "cache"), False),
    "torch-nocache": (lambda a, b, o: torch_side(a, b, o, "nocache"), True),
    # Reference (b) at its best here: libgomp's workers sleep instead of
    # spinning against OpenBLAS's pool (see src/common/app.cpp).
    "torch-cache-passive": (lambda a, b, o: torch_side(a, b, o, "cache", {"OMP_WAIT_POLICY": "PASSIVE"}), False),
    "torch-cache-tuned": (lambda a, b, o: torch_side(a, b, o, "cache", TUNED), False),
    # Reference (b) on the index's torch (2.x, MKL), tuned likewise.
    "torch2-cache-tuned": (lambda a, b, o: torch_side(a, b, o, "cache", TUNED, TORCH2_PYTHON), False),
}


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read().split("\n")[:-1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--input", default=os.path.join(ROOT, "../shared/data/multi30k/test_2016_flickr.en"))
    ap.add_argument("--reference", default=os.path.join(ROOT, "../shared/data/multi30k/test_2016_flickr.de"))
    ap.add_argument("--repeat", type=int, default=3, help="runs of the fast sides (median reported)")
    ap.add_argument("--slow-repeat", type=int, default=1, help="runs of the no-cache sides")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--sides", default=",".join(SIDES))
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    for name in ("OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT", "GLIBC_TUNABLES", "AIAYN_TUNED", "AIAYN_NO_REEXEC"):
        os.environ.pop(name, None)  # each side sets its own

    work = tempfile.mkdtemp(prefix="translate_bench.")
    results = {}
    sides = args.sides.split(",")
    for beam in (1, 4):
        for side in sides:
            fn, slow = SIDES[side]
            runs = []
            for i in range(args.slow_repeat if slow else args.repeat):
                output = os.path.join(work, f"{side}.beam{beam}.txt")
                r = fn(args, beam, output)
                runs.append(r)
                print(f"  {side:19s} beam {beam} run {i + 1}: {r['sentences'] / r['seconds']:.2f} sent/s, "
                      f"{r['tokens'] / r['seconds']:.0f} tok/s, {r['rss']:.0f} MiB", flush=True)
            entry = dict(sent_s=statistics.median(r["sentences"] / r["seconds"] for r in runs),
                         tok_s=statistics.median(r["tokens"] / r["seconds"] for r in runs),
                         rss_mib=max(r["rss"] for r in runs), runs=len(runs), output=output)
            if beam == 4:
                entry["bleu"] = sacrebleu_score(output, args.reference)  # sacreBLEU itself
            results[f"{side}.beam{beam}"] = entry

    print(f"\n{'side':19s} {'beam':>4s} {'sent/s':>8s} {'tok/s':>8s} {'RSS MiB':>8s} {'BLEU':>6s} "
          f"{'ours/x':>7s}  runs")
    for key, e in results.items():
        side, beam = key.rsplit(".beam", 1)
        mine = results.get(f"ours.beam{beam}")
        ratio = f"{mine['sent_s'] / e['sent_s']:7.2f}" if mine else "      -"
        bleu = f"{e['bleu']:6.2f}" if "bleu" in e else "     -"
        print(f"{side:19s} {beam:>4s} {e['sent_s']:8.2f} {e['tok_s']:8.0f} {e['rss_mib']:8.0f} {bleu} {ratio}  {e['runs']}")
    for side in sides:
        if side == "ours" or f"ours.beam1" not in results:
            continue
        a, b = read(results["ours.beam1"]["output"]), read(results[f"{side}.beam1"]["output"])
        same = sum(x == y for x, y in zip(a, b))
        print(f"greedy, token for token: ours = {side} on {same} of {len(a)} sentences")
        results[f"{side}.beam1"]["greedy_identical"] = same
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(date=time.strftime("%Y-%m-%d"), threads=args.threads, results=results), f, indent=1)


if __name__ == "__main__":
    main()
