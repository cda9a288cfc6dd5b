#!/usr/bin/env python3
"""What the BLAS kernel is worth: sgemm through LibTorch, training and
translation speed of our executables, per OpenBLAS kernel (and BLIS).

On a CPU that Debian's OpenBLAS 0.3.21 does not know, it runs its generic
`Prescott` kernels; our executables now re-execute with the kernel the CPU's
features allow (src/common/blas_kernel.h). On a CPU it does know, forcing
OPENBLAS_CORETYPE=Prescott (which our executables keep, as a user's setting)
reproduces the fallback, so "before" and "after" can be measured anywhere.

Sides, each a separate process with OPENBLAS_CORETYPE set (or not):
  - sgemm: 2048^2, and the `small` model's training shapes (4096 tokens x
    d_model 256 x d_ff 1024, and the 8k-vocabulary logits), through
    /usr/bin/python3's LibTorch (Debian's python3-torch, the same OpenBLAS);
    with --blis DIR also through BLIS (DIR holds BLIS's libblas.so.3, e.g.
    from `apt-get download libblis4-pthread` + `dpkg -x`);
  - training: median target tokens/s of aiayn-train on the demo's corpus
    (configs/demo.json) and on Multi30k (configs/small.json);
  - translation: sentences/s of aiayn-translate, greedy and beam 4, of a
    trained checkpoint (the demo's, by default) on its test split.

    /usr/bin/python3 bench/blas_kernels.py [--kernels default,Prescott,Haswell,SkylakeX]
        [--checkpoint runs/demo/model/best --test runs/demo/data/test.src]
        [--demo-data runs/demo/data] [--multi30k ../shared/data/multi30k] [--blis DIR]
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BIN = os.path.join(ROOT, "build", "bin")

SGEMM = r"""
import json, sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
out = {}
for name, (m, k, n) in {"2048^3": (2048, 2048, 2048), "ffn 4096x256x1024": (4096, 256, 1024),
                        "ffn-back 1024x4096x256": (1024, 4096, 256), "logits 4096x256x8000": (4096, 256, 8000)}.items():
    a, b = torch.randn(m, k), torch.randn(k, n)
    ref = (a.double() @ b.double())
    err = ((a @ b).double() - ref).abs().max().item() / ref.abs().max().item()
    for _ in range(2):
        a @ b
    times = []
    for _ in range(7):
        t = time.perf_counter(); a @ b; times.append(time.perf_counter() - t)
    out[name] = {"gflops": 2 * m * k * n / sorted(times)[3] / 1e9, "rel_err": err}
print(json.dumps(out))
"""


def env_for(kernel, extra=None):
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    if kernel not in ("default", "blis"):
        env["OPENBLAS_CORETYPE"] = kernel
    env.update(extra or {})
    return env


def sgemm(kernel, threads, blis):
    extra = {"LD_LIBRARY_PATH": blis, "BLIS_NUM_THREADS": str(threads)} if kernel == "blis" else {}
    r = subprocess.run(["/usr/bin/python3", "-c", SGEMM, str(threads)], env=env_for(kernel, extra),
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def train_rate(kernel, config, data, steps, spm, threads, keep):
    """Median target tokens/s over the logged windows after the first third,
    the run's BLAS line, and the SentencePiece model (trained by the first
    run, kept as `keep`, given to the next ones)."""
    with tempfile.TemporaryDirectory() as tmp:
        save = os.path.join(tmp, "run")
        cmd = [os.path.join(BIN, "aiayn-train"), "--config", config, "--save-dir", save,
               "--threads", str(threads),
               "--set", f"data.train_src={data[0]}", "--set", f"data.train_tgt={data[1]}",
               "--set", f"train.max_steps={steps}", "--set", "train.log_every=10",
               "--set", "train.save_every=100000", "--set", "train.valid_every=100000"]
        if spm:
            cmd += ["--set", f"data.spm_model={spm}"]
        r = subprocess.run(cmd, env=env_for(kernel), capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"blas_kernels: {' '.join(cmd)} failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
        kernel_line = re.search(r"BLAS: (.*)", r.stdout).group(1)
        records = [json.loads(line) for line in open(os.path.join(save, "metrics.jsonl"))]
        rates = [x["tgt_tok_s"] for x in records if x["kind"] == "train" and x["step"] > steps // 3]
        if not spm:
            shutil.copyfile(os.path.join(save, "spm.model"), keep)
        return statistics.median(rates), kernel_line, keep


def translate_rate(kernel, checkpoint, test, beam, threads):
    cmd = [os.path.join(BIN, "aiayn-translate"), "-c", checkpoint, "-i", test, "-o", "/dev/null",
           "--beam", str(beam), "--threads", str(threads)]
    rates = []
    for _ in range(3):
        r = subprocess.run(cmd, env=env_for(kernel), capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"blas_kernels: {' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
        rates.append(float(re.search(r"([0-9.]+) sentences/s", r.stderr).group(1)))
    return statistics.median(rates)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kernels", default="default,Prescott,Haswell,SkylakeX")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--blis", help="directory holding BLIS's libblas.so.3 (sgemm side only)")
    ap.add_argument("--demo-data", default=os.path.join(ROOT, "runs/demo/data"))
    ap.add_argument("--multi30k", default=os.path.join(ROOT, "../shared/data/multi30k"))
    ap.add_argument("--checkpoint", default=os.path.join(ROOT, "runs/demo/model/best"))
    ap.add_argument("--test", default=os.path.join(ROOT, "runs/demo/data/test.src"))
    ap.add_argument("--demo-steps", type=int, default=90)
    ap.add_argument("--small-steps", type=int, default=45)
    ap.add_argument("--json")
    args = ap.parse_args()
    kernels = args.kernels.split(",")
    cpu = subprocess.run([os.path.join(BIN, "aiayn-translate"), "--version"], capture_output=True,
                         text=True).stdout.strip().splitlines()[-1]
    print(cpu)
    results = {"cpu": cpu, "sgemm": {}, "train": {}, "translate": {}}
    for k in kernels + (["blis"] if args.blis else []):
        results["sgemm"][k] = sgemm(k, args.threads, args.blis)
        print(f"sgemm {k}: " + ", ".join(f"{n} {v['gflops']:.0f} GFLOP/s (err {v['rel_err']:.1e})"
                                         for n, v in results["sgemm"][k].items()), flush=True)
    demo = (os.path.join(args.demo_data, "train.src"), os.path.join(args.demo_data, "train.tgt"))
    m30k = (os.path.join(args.multi30k, "train.en"), os.path.join(args.multi30k, "train.de"))
    spm = {"demo": None, "small": None}
    keep = tempfile.mkdtemp(prefix="blas-kernels-")
    for k in kernels:
        row = {}
        for name, config, data, steps in (("demo", "configs/demo.json", demo, args.demo_steps),
                                          ("small", "configs/small.json", m30k, args.small_steps)):
            rate, line, spm[name] = train_rate(k, os.path.join(ROOT, config), data, steps, spm[name], args.threads,
                                                  os.path.join(keep, name + ".spm.model"))
            row[name] = rate
            row[name + "_blas"] = line
        results["train"][k] = row
        print(f"train {k}: demo {row['demo']:.0f} tgt tok/s, small {row['small']:.0f} ({row['small_blas']})", flush=True)
    for k in kernels:
        row = {f"beam{b}": translate_rate(k, args.checkpoint, args.test, b, args.threads) for b in (1, 4)}
        results["translate"][k] = row
        print(f"translate {k}: greedy {row['beam1']:.1f} sent/s, beam 4 {row['beam4']:.1f}", flush=True)
    shutil.rmtree(keep)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
