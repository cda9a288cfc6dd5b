#!/usr/bin/env python3
"""Scaling of our executables on this machine, as a table and a PNG:

  decoding   seconds per sentence against source length (10 to 200 pieces),
             greedy and beam 4, with a trained checkpoint: sources of each
             length are built from test_2016_flickr sentences, joined and
             cut at word boundaries;
  training   target tokens/s and model-FLOP utilisation against batch tokens
             (the `small` model) and against model size (tiny, small, base
             at 4,096-token batches), a few dozen updates each on Multi30k.

    /usr/bin/python3 bench/scaling.py --checkpoint runs/multi30k-en-de/averaged \\
        --spm runs/multi30k-en-de/spm.model [--png docs/scaling.png] [--json runs/scaling.json]

Needs Debian's python3-sentencepiece and python3-matplotlib (/usr/bin/python3).
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

import sentencepiece as spm

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import train_bench  # noqa: E402  (sgemm_peak, flops_per_update, train_records)

LENGTHS = (10, 25, 50, 100, 150, 200)
BATCH_TOKENS = (1024, 2048, 4096, 8192)
MODELS = ("tiny", "small", "base")


def sources_of_length(sp, sentences, length, count):
    """`count` sources of about `length` pieces: consecutive sentences joined, cut at a word."""
    out, i = [], 0
    while len(out) < count:
        words = []
        while len(sp.encode(" ".join(words))) < length:
            words += sentences[i % len(sentences)].split()
            i += 1
        while len(sp.encode(" ".join(words))) > length:
            words.pop()
        out.append(" ".join(words))
    return out


def decode_point(args, path, beam):
    cmd = [os.path.join(ROOT, "build/bin/aiayn-translate"), "-c", args.checkpoint, "-i", path,
           "-o", os.devnull, "--beam", str(beam), "--threads", str(args.threads)]
    err = subprocess.run(cmd, capture_output=True, text=True, check=True).stderr
    m = re.search(r"translated (\d+) sentences \((\d+) tokens\) in ([0-9.e+-]+) s", err)
    if not m:
        sys.exit(f"scaling: no summary line from aiayn-translate:\n{err}")
    return float(m.group(3)) / int(m.group(1))


def train_point(args, work, config, max_tokens, steps, warmup):
    d = args.data
    out = os.path.join(tempfile.mkdtemp(prefix=f"{config}-{max_tokens}.", dir=work), "run")
    cmd = [os.path.join(ROOT, "build/bin/aiayn-train"), "--config", os.path.join(ROOT, f"configs/{config}.json"),
           "--save-dir", out, "--threads", str(args.threads),
           "--set", f"data.train_src={d}/train.{args.src}", "--set", f"data.train_tgt={d}/train.{args.tgt}",
           "--set", f"data.spm_model={os.path.abspath(args.spm)}", "--set", "data.max_length=100",
           "--set", f"train.max_tokens={max_tokens}", "--set", f"train.max_steps={steps}",
           "--set", "train.valid_every=1000000", "--set", "train.save_every=1000000",
           "--set", "train.max_minutes=0", "--set", "train.log_every=5"]
    train_bench.run(cmd)
    steady = [r for r in train_bench.train_records(os.path.join(out, "metrics.jsonl")) if r["step"] > warmup]
    rate = statistics.median(r["tgt_tok_s"] for r in steady)
    src_per_tgt = statistics.median(r["src_tok_s"] / r["tgt_tok_s"] for r in steady)
    with open(os.path.join(ROOT, f"configs/{config}.json"), encoding="utf-8") as f:
        model = json.load(f)
    flops = train_bench.flops_per_update(src_per_tgt, 1.0, model) * rate
    return rate, flops


def plot(results, peak, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(14, 4))
    for beam in ("greedy", "beam 4"):
        pts = results["decode"][beam]
        a.plot([p["length"] for p in pts], [1000 * p["seconds"] for p in pts], "o-", label=beam)
    a.set_xlabel("source length (pieces)")
    a.set_ylabel("ms per sentence (batched)")
    a.set_title("decoding, small model")
    a.legend()
    pts = results["train_batch"]
    b.plot([p["max_tokens"] for p in pts], [p["tok_s"] for p in pts], "o-")
    b.set_xscale("log", base=2)
    b.set_xlabel("batch tokens")
    b.set_ylabel("target tokens/s")
    b.set_title("training, small model")
    pts = results["train_model"]
    c.bar([p["config"] for p in pts], [100 * p["flops"] / (peak * 1e9) for p in pts])
    c.set_ylabel(f"model-FLOP utilisation, % of {peak:.0f} GFLOP/s")
    c.set_title("training at 4,096-token batches")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="a trained `small` checkpoint (decoding)")
    ap.add_argument("--spm", required=True, help="the SentencePiece model of that checkpoint")
    ap.add_argument("--data", default=os.path.join(ROOT, "../shared/data/multi30k"))
    ap.add_argument("--src", default="en", help="the checkpoint's source language")
    ap.add_argument("--tgt", default="de", help="its target language (training points)")
    ap.add_argument("--sentences", type=int, default=40, help="sources per length")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--png", default=os.path.join(ROOT, "docs/scaling.png"))
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()

    sp = spm.SentencePieceProcessor(model_file=args.spm)
    with open(os.path.join(args.data, f"test_2016_flickr.{args.src}"), encoding="utf-8") as f:
        sentences = [line.strip() for line in f if line.strip()]
    peak = train_bench.sgemm_peak(args.threads)
    print(f"sgemm peak (2048^2, {args.threads} threads): {peak:.1f} GFLOP/s", flush=True)
    results = {"decode": {"greedy": [], "beam 4": []}, "train_batch": [], "train_model": []}
    with tempfile.TemporaryDirectory(prefix="scaling.") as work:
        for length in LENGTHS:
            path = os.path.join(work, f"len{length}.{args.src}")
            with open(path, "w", encoding="utf-8") as f:
                f.write("\n".join(sources_of_length(sp, sentences, length, args.sentences)) + "\n")
            for beam, name in ((1, "greedy"), (4, "beam 4")):
                seconds = decode_point(args, path, beam)
                results["decode"][name].append(dict(length=length, seconds=seconds))
                print(f"  decode {name:6s} length {length:3d}: {1000 * seconds:7.2f} ms/sentence", flush=True)
        for max_tokens in BATCH_TOKENS:
            rate, flops = train_point(args, work, "small", max_tokens, 40, 10)
            results["train_batch"].append(dict(max_tokens=max_tokens, tok_s=rate, flops=flops))
            print(f"  train small {max_tokens:5d} tokens: {rate:6.0f} tgt tok/s, MFU {100 * flops / (peak * 1e9):.1f}%",
                  flush=True)
        for config in MODELS:
            steps, warmup = (15, 5) if config == "base" else (40, 10)
            rate, flops = train_point(args, work, config, 4096, steps, warmup)
            results["train_model"].append(dict(config=config, tok_s=rate, flops=flops))
            print(f"  train {config:5s} 4096 tokens: {rate:6.0f} tgt tok/s, MFU {100 * flops / (peak * 1e9):.1f}%",
                  flush=True)
    results["peak_gflops"] = peak
    plot(results, peak, args.png)
    print(f"wrote {args.png}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
