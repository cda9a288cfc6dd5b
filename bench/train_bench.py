#!/usr/bin/env python3
"""Training speed: ours against the PyTorch reference, one session.

Trains the `small` model (configs/small.json) on Multi30k for --steps updates
with aiayn-train and with bench/train_reference.py (torch.nn.Transformer, the
same tokens, batching, loss, optimizer and schedule, the same thread count),
alternating, --repeat times; no validation or checkpoints inside the timed
window. Reports the median over runs of the median steady-state target
tokens/s (logged windows after --warmup updates), peak RSS, the ratio, the
first losses of each side (the reference also with OMP_WAIT_POLICY=PASSIVE,
and with all the process settings ours gives itself), this machine's sgemm
peak through LibTorch, and model-FLOP utilisation: the model's matmul FLOPs per update (forward and
backward = 3x forward) times updates/s, over that peak.

    /usr/bin/python3 bench/train_bench.py --spm runs/multi30k-en-de/spm.model \
        [--data ../shared/data/multi30k] [--steps 120] [--repeat 2] [--threads 2]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from peak_rss import run as peak_rss_run  # noqa: E402


def run(cmd, env=None):
    """Runs cmd with env added -> its own peak RSS in MiB (bench/peak_rss.py); exits on failure."""
    with tempfile.TemporaryFile("w+") as log:
        code, mib = peak_rss_run(cmd, env, stdout=log, stderr=subprocess.STDOUT)
        if code != 0:
            log.seek(0)
            sys.exit(f"train_bench: {' '.join(cmd)} failed:\n{log.read()[-3000:]}")
    return mib


def train_records(path):
    with open(path, encoding="utf-8") as f:
        return [r for r in map(json.loads, f) if r["kind"] == "train"]


def ours(args, out, env=None):
    d = args.data
    cmd = [os.path.join(ROOT, "build/bin/aiayn-train"), "--config", os.path.join(ROOT, "configs/small.json"),
           "--save-dir", out, "--threads", str(args.threads),
           "--set", f"data.train_src={d}/train.{args.src}", "--set", f"data.train_tgt={d}/train.{args.tgt}",
           "--set", f"data.valid_src={d}/val.{args.src}", "--set", f"data.valid_tgt={d}/val.{args.tgt}",
           "--set", f"data.spm_model={os.path.abspath(args.spm)}", "--set", f"train.max_steps={args.steps}",
           "--set", "train.valid_every=1000000", "--set", "train.save_every=1000000",
           "--set", "train.max_minutes=0", "--set", "train.log_every=10"]
    if args.init:
        cmd += ["--init", args.init]
    record = args.same_init and args.replay is None
    if record:
        cmd.append("--record-batches")
    rss = run(cmd, env)
    if record:  # the first run of ours gives the references its batch order
        args.replay = os.path.join(args.work, "batches.jsonl")
        shutil.copy(os.path.join(out, "batches.jsonl"), args.replay)
    return train_records(os.path.join(out, "metrics.jsonl")), rss


# The newest PyTorch from the index: the pip flavour's venv (scripts/setup.sh --torch pip).
TORCH2_PYTHON = os.path.join(ROOT, ".venv-torch", "bin", "python")


def reference(args, out, env=None, extra=(), python="/usr/bin/python3"):
    if not os.access(python, os.X_OK):
        sys.exit(f"train_bench: {python} missing (bash scripts/setup.sh --torch pip makes it)")
    cmd = [python, os.path.join(HERE, "train_reference.py"), "--data", args.data, "--src", args.src,
           "--tgt", args.tgt, "--spm", args.spm, "--out", out, "--max-steps", str(args.steps),
           "--minutes", "1000", "--threads", str(args.threads), "--valid-every", "1000000",
           "--save-every", "1000000", "--log-every", "10", "--no-test", *extra]
    if args.init:
        cmd += ["--init", args.init]
    if args.replay:
        cmd += ["--replay-batches", args.replay]
    rss = run(cmd, env)
    return train_records(os.path.join(out, "metrics.jsonl")), rss


# Each side as it starts by default, and with the process settings that
# aiayn's executables give themselves (src/common/app.h: tune_environment,
# keep_freed_memory): libgomp's workers sleeping between regions instead of
# spinning against OpenBLAS's pool, OpenBLAS's idle threads sleeping soon,
# and glibc keeping freed blocks instead of mapping every large one afresh.
PASSIVE = {"OMP_WAIT_POLICY": "PASSIVE"}
TUNED = dict(PASSIVE, OPENBLAS_THREAD_TIMEOUT="4",
             GLIBC_TUNABLES="glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=2147483647")
SIDES = {
    "ours": lambda a, o: ours(a, o, {}),
    "ours-untuned": lambda a, o: ours(a, o, {"AIAYN_NO_REEXEC": "1"}),
    "torch": lambda a, o: reference(a, o, {}),
    "torch-passive": lambda a, o: reference(a, o, PASSIVE),
    "torch-tuned": lambda a, o: reference(a, o, TUNED),
    # The same script on the index's torch (MKL, its own OpenMP), with libgomp's
    # workers sleeping between regions as for the others.
    "torch2-tuned": lambda a, o: reference(a, o, TUNED, python=TORCH2_PYTHON),
    # Other dropout masks, same weights and batches: how far two runs of one
    # side drift apart by chance (the noise the loss comparison is held to).
    "torch-reseeded": lambda a, o: reference(a, o, TUNED, ["--dropout-seed", "2"]),
}


def compare_curves(figures):
    """Ours against the tuned reference, window by window, held to the noise:
    how far the reference drifts from itself with other dropout masks
    (torch-reseeded). -> the verdict, also printed."""
    base, noise_side = figures.get("torch-tuned"), figures.get("torch-reseeded")
    if base is None or noise_side is None:
        sys.exit("train_bench: --same-init compares against torch-tuned and torch-reseeded; include both")

    def diffs(fig):
        return [fig["curve"][s] - base["curve"][s] for s in base["curve"] if s in fig["curve"]]

    noise = statistics.mean(abs(d) for d in diffs(noise_side))
    verdict = dict(noise_mean_abs=noise, sides={})
    print("\nloss curves from the same initial weights and batches (windows of 10 updates), "
          "against torch-tuned:")
    for name, fig in figures.items():
        d = diffs(fig) if fig is not base else []
        if not d:
            continue
        mean_abs, signed = statistics.mean(abs(x) for x in d), statistics.mean(d)
        # Within noise: no further from the reference than the reference is
        # from itself (with 1.5x slack for two samples of it), and no bias
        # larger than that drift.
        within = mean_abs <= 1.5 * noise and abs(signed) <= noise
        verdict["sides"][name] = dict(mean_abs=mean_abs, mean_signed=signed, max_abs=max(map(abs, d)),
                                      windows=len(d), within_noise=within)
        print(f"  {name:14s}: mean |diff| {mean_abs:.4f}, mean diff {signed:+.4f}, max {max(map(abs, d)):.4f} "
              f"over {len(d)} windows" + ("" if name == "torch-reseeded" else
                                          f" -> {'within' if within else 'OUTSIDE'} the noise"))
    steps = sorted(base["curve"])
    print("  step " + " ".join(f"{n:>14s}" for n in figures))
    shown = steps[::max(1, len(steps) // 10)]
    for s in shown + [s for s in steps[-1:] if s not in shown]:
        print(f"  {s:4d} " + " ".join(f"{fig.get('curve', {}).get(s, float('nan')):14.4f}" for fig in figures.values()))
    for fig in figures.values():
        fig["curve"] = {str(k): v for k, v in fig.get("curve", {}).items()}
    return verdict


def sgemm_peak(threads):
    """Best GFLOP/s of a 2048^2 float32 matmul through LibTorch (python3-torch, same kernels)."""
    code = (f"import torch, time\ntorch.set_num_threads({threads})\n"
            "a = torch.randn(2048, 2048); b = torch.randn(2048, 2048); best = 0\n"
            "for _ in range(12):\n"
            "    t = time.perf_counter(); torch.mm(a, b); dt = time.perf_counter() - t\n"
            "    best = max(best, 2 * 2048 ** 3 / dt / 1e9)\n"
            "print(best)\n")
    return float(subprocess.check_output(["/usr/bin/python3", "-c", code], text=True))


def flops_per_update(src_tokens, tgt_tokens, config):
    """Matmul FLOPs of one update, forward x 3 (backward costs twice the forward)."""
    m = config["model"]
    d, ff, vocab = m["d_model"], m["d_ff"], 8000
    enc = src_tokens * m["encoder_layers"] * (4 * d * d + 2 * d * ff)
    dec = tgt_tokens * m["decoder_layers"] * (4 * d * d + 2 * d * d + 2 * d * ff)
    cross_kv = src_tokens * m["decoder_layers"] * 2 * d * d
    output = tgt_tokens * d * vocab
    return 3 * 2 * (enc + dec + cross_kv + output)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(ROOT, "../shared/data/multi30k"))
    ap.add_argument("--src", default="en")
    ap.add_argument("--tgt", default="de")
    ap.add_argument("--spm", required=True, help="a SentencePiece model both sides use")
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--warmup", type=int, default=20, help="updates left out of the throughput")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--sides", help="comma-separated, of: " + ", ".join(SIDES) +
                    " (default: all; torch-reseeded only with --same-init)")
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--same-init", action="store_true",
                    help="every side starts from the same weights (the reference's initialisation, "
                         "through aiayn-train --init) and the same batches (ours records them with "
                         "--record-batches, the references replay them), and the loss curves are "
                         "compared against the noise of two reference runs that differ in dropout seed")
    args = ap.parse_args()
    args.init = None
    for name in ("OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT", "GLIBC_TUNABLES", "AIAYN_TUNED", "AIAYN_NO_REEXEC"):
        os.environ.pop(name, None)  # each side sets its own
    with open(os.path.join(ROOT, "configs/small.json")) as f:
        config = json.load(f)

    work = tempfile.TemporaryDirectory(prefix="train_bench.")
    args.work, args.replay = work.name, None
    if args.same_init:
        init = os.path.join(work.name, "init.pt")
        steps, args.steps = args.steps, 1
        reference(args, os.path.join(work.name, "init-run"), {}, ["--save-init", init])
        args.steps, args.init = steps, init
    peak = sgemm_peak(args.threads)
    print(f"sgemm peak (2048^2, {args.threads} threads): {peak:.1f} GFLOP/s", flush=True)
    names = args.sides.split(",") if args.sides else [n for n in SIDES if n != "torch-reseeded" or args.same_init]
    if args.same_init:
        if "ours" not in names:
            sys.exit("train_bench: --same-init needs the side ours (it records the batches the others replay)")
        names.sort(key=lambda n: n != "ours")  # ours first: the references replay its batches
    sides = {name: SIDES[name] for name in names}
    figures = {name: dict(rates=[], rss=[], flops_s=[], loss=None) for name in sides}
    for i in range(args.repeat):
        for name, fn in sides.items():
            with tempfile.TemporaryDirectory(prefix="train_bench.") as out:
                records, rss = fn(args, os.path.join(out, "run"))
            steady = [r for r in records if r["step"] > args.warmup]
            if not steady:
                sys.exit(f"train_bench: {name} logged no update after the first {args.warmup} "
                         f"(--warmup); --steps {args.steps} is too few")
            rate = statistics.median(r["tgt_tok_s"] for r in steady)
            src_per_tgt = statistics.median(r["src_tok_s"] / r["tgt_tok_s"] for r in steady)
            # FLOPs per target token at this batch mix, times target tokens/s.
            per_tgt = flops_per_update(src_per_tgt, 1.0, config)
            fig = figures[name]
            fig["rates"].append(rate)
            fig["rss"].append(rss)
            fig["flops_s"].append(per_tgt * rate)
            fig["loss"] = [round(r["loss"], 3) for r in records[:12]]
            fig.setdefault("curve", {r["step"]: r["loss"] for r in records})
            print(f"  {name:13s} run {i + 1}: {rate:.0f} target tokens/s, {per_tgt * rate / 1e9:.1f} GFLOP/s, "
                  f"peak RSS {rss:.0f} MiB", flush=True)
    print()
    for name, fig in figures.items():
        rate, flops = statistics.median(fig["rates"]), statistics.median(fig["flops_s"])
        print(f"{name:13s}: {rate:7.0f} target tokens/s  MFU {100 * flops / 1e9 / peak:4.1f}%  "
              f"peak RSS {max(fig['rss']):.0f} MiB  losses {fig['loss']}")
    verdict = compare_curves(figures) if args.same_init else None
    ratios = {}
    for mine in (n for n in figures if n.startswith("ours")):
        for other in (n for n in figures if n.startswith("torch")):
            ratios[f"{mine}/{other}"] = r = (statistics.median(figures[mine]["rates"]) /
                                             statistics.median(figures[other]["rates"]))
            print(f"{mine} / {other}: {r:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(date=time.strftime("%Y-%m-%d"), threads=args.threads, sgemm_gflops=peak,
                           steps=args.steps, warmup=args.warmup, ratios=ratios, curves=verdict,
                           figures=figures), f, indent=1)


if __name__ == "__main__":
    main()
